--[[
  worker_common.lua: the claim transition (BullMQ's "moveToActive"), shared by claim.lua and finish.lua
  so that finishing a batch can claim the next batch in the same call.

  KEYS (same order for claim.lua and finish.lua):
    1 wait  2 active  3 prioritized  4 delayed  5 meta  6 marker  7 events  8 limiter  9 pc
    10 completed  11 failed  12 stalled
]]
local K = {
  wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], delayed = KEYS[4], meta = KEYS[5],
  marker = KEYS[6], events = KEYS[7], limiter = KEYS[8], pc = KEYS[9], completed = KEYS[10],
  failed = KEYS[11], stalled = KEYS[12],
}

-- Moves due delayed jobs (score <= (now+1)*4096-1) to wait or prioritized, up to 1000 per call.
local function promoteDueDelayed(prefix, now, maxLen)
  local due = rcall('ZRANGEBYSCORE', K.delayed, 0, (now + 1) * 4096 - 1, 'LIMIT', 0, 1000)
  if #due == 0 then return 0 end
  for i = 1, #due, 500 do
    rcall('ZREM', K.delayed, unpack(due, i, math.min(i + 499, #due)))
  end
  for _, id in ipairs(due) do
    local jobKey = prefix .. id
    local prio = tonumber(rcall('HGET', jobKey, 'priority')) or 0
    if prio > 0 then
      addPrioritized(K.prioritized, K.pc, id, prio)
    else
      rcall('LPUSH', K.wait, id)
    end
    rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
    rcall('HSET', jobKey, 'delay', 0)
  end
  return #due
end

--[[
  Claims up to n jobs: wait (from the right, FIFO) first, then prioritized (lowest score first).
  Each claimed job gets its own lock token tokenBase..":"..seq (so completions are fenced per job), a lock
  with PX lockMs, processedOn = now, ats + 1, and an "active" event.
  The rate limiter (meta max/duration, else the worker's wmax/wdur) and global concurrency bound n.
  Returns { rateLimitTtl, nextDelayedMs, state (0 ok, 1 paused, 2 maxed), {id, token, hgetall}... }.
]]
local function claimJobs(prefix, now, n, tokenBase, seq, lockMs, wmax, wdur, maxLen)
  local nowText = ARGV[2]
  promoteDueDelayed(prefix, now, maxLen)
  local out = { 0, 0, 0 }
  local meta = rcall('HMGET', K.meta, 'paused', 'concurrency', 'max', 'duration')
  if meta[1] then
    out[2] = nextDelayedMs(K.delayed)
    out[3] = 1
    return out
  end
  if n <= 0 then
    out[2] = nextDelayedMs(K.delayed)
    return out
  end
  if meta[2] then
    local room = tonumber(meta[2]) - rcall('LLEN', K.active)
    if room <= 0 then
      out[3] = 2
      return out
    end
    if room < n then n = room end
  end
  local max = tonumber(meta[3]) or wmax
  local dur = tonumber(meta[4]) or wdur
  local limited = max > 0 and dur > 0
  if limited then
    local used = tonumber(rcall('GET', K.limiter)) or 0
    if used >= max then
      local ttl = rcall('PTTL', K.limiter)
      if ttl > 0 then
        out[1] = ttl
        return out
      end
      -- A counter without expiry would block forever; start a fresh window.
      rcall('DEL', K.limiter)
      used = 0
    end
    if max - used < n then n = max - used end
  end
  local claimed = 0
  local fromWait = true
  while claimed < n do
    local id = nil
    if fromWait then
      id = rcall('RPOPLPUSH', K.wait, K.active)
      if not id then
        fromWait = false
      elseif string.sub(id, 1, 2) == '0:' then
        -- Legacy v4 marker entry: drop it, it is not a job.
        rcall('LREM', K.active, 1, id)
        id = nil
      end
    end
    if (not id) and (not fromWait) then
      local p = rcall('ZPOPMIN', K.prioritized)
      if #p == 0 then
        rcall('DEL', K.pc)
        break
      end
      id = p[1]
      rcall('LPUSH', K.active, id)
    end
    if id then
      claimed = claimed + 1
      local jobKey = prefix .. id
      local token = tokenBase .. ':' .. (seq + claimed - 1)
      rcall('SET', jobKey .. ':lock', token, 'PX', lockMs)
      rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'active', 'jobId', id, 'prev', 'waiting')
      -- Read the hash once, then write processedOn and ats+1 in one HSET and patch the reply.
      local hash = rcall('HGETALL', jobKey)
      local ats, atsAt, pAt = 1, nil, nil
      for i = 1, #hash, 2 do
        if hash[i] == 'ats' then
          atsAt = i + 1
          ats = (tonumber(hash[i + 1]) or 0) + 1
        elseif hash[i] == 'processedOn' then
          pAt = i + 1
        end
      end
      rcall('HSET', jobKey, 'processedOn', now, 'ats', ats)
      if atsAt then hash[atsAt] = tostring(ats) else hash[#hash + 1] = 'ats'; hash[#hash + 1] = tostring(ats) end
      if pAt then hash[pAt] = nowText else hash[#hash + 1] = 'processedOn'; hash[#hash + 1] = nowText end
      out[#out + 1] = { id, token, hash }
    end
  end
  if limited and claimed > 0 then
    local v = rcall('INCRBY', K.limiter, claimed)
    if v == claimed or rcall('PTTL', K.limiter) < 0 then rcall('PEXPIRE', K.limiter, dur) end
  end
  if claimed > 0 and (rcall('LLEN', K.wait) > 0 or rcall('ZCARD', K.prioritized) > 0) then
    -- Work remains: wake the next blocked worker (Node or ours).
    rcall('ZADD', K.marker, 0, '0')
  end
  out[2] = nextDelayedMs(K.delayed)
  return out
end

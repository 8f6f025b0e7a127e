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
    rcall('XADD', K.events, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
    rcall('HSET', jobKey, 'delay', 0)
  end
  return #due
end

--[[
  Claims up to n jobs: wait (from the right, FIFO) first, then prioritized (lowest score first).
  Each claimed job gets its own lock token tokenBase..":"..seq (so completions are fenced per job), a lock
  with PX lockMs, processedOn = now, ats + 1, and an "active" event. Events are added without MAXLEN:
  the calling script runs one XTRIM (trimEvents) after its last XADD.
  The rate limiter (meta max/duration, else the worker's wmax/wdur) and global concurrency bound n.
  Returns { rateLimitTtl, nextDelayedMs, state (0 ok, 1 paused, 2 maxed), {id, hgetall}... }; the i-th
  job's token is tokenBase..":"..(seq+i-1).
]]
local function claimJobs(prefix, now, n, tokenBase, seq, lockMsNum, wmax, wdur, maxLen)
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
  -- Pop the whole batch with one command per source (wait from the right = FIFO, then prioritized
  -- lowest score first) and push it to active with one LPUSH: the list ends up exactly as one
  -- RPOPLPUSH per job would leave it (the first claimed deepest), for a fraction of the commands.
  local ids = {}
  while #ids < n do
    local asked = n - #ids
    local popped = rcall('RPOP', K.wait, asked)
    if not popped then break end
    for _, id in ipairs(popped) do
      -- Legacy v4 marker entries ("0:...") are not jobs: dropped from wait, never claimed.
      if string.sub(id, 1, 2) ~= '0:' then ids[#ids + 1] = id end
    end
    if #popped < asked then break end
  end
  if #ids < n then
    local want = n - #ids
    local p = rcall('ZPOPMIN', K.prioritized, want)
    for i = 1, #p, 2 do ids[#ids + 1] = p[i] end
    if #p < want * 2 then rcall('DEL', K.pc) end
  end
  local claimed = #ids
  for i = 1, claimed, 500 do
    rcall('LPUSH', K.active, unpack(ids, i, math.min(i + 499, claimed)))
  end
  -- Numbers are passed to Redis as the strings we were given: Lua formats numbers with sprintf("%.14g"),
  -- a visible cost in a profile of this loop.
  local nowText, lockMs = ARGV[2], tostring(lockMsNum)
  for i = 1, claimed do
    local id = ids[i]
    local jobKey = prefix .. id
    rcall('SET', jobKey .. ':lock', tokenBase .. ':' .. string.format('%d', seq + i - 1), 'PX', lockMs)
    -- No MAXLEN here: the calling script trims the stream once, after its last XADD.
    rcall('XADD', K.events, '*', 'event', 'active', 'jobId', id, 'prev', 'waiting')
    rcall('HSET', jobKey, 'processedOn', nowText)
    rcall('HINCRBY', jobKey, 'ats', '1')
    -- The hash is read after the writes, so the reply is the job as stored (nothing to patch). The
    -- token is not sent back: the client derives it (tokenBase:seq+i-1). (Reading the hashes
    -- with pipelined HGETALLs instead cost Redis about as much, and the client one write syscall
    -- per job: fred flushes every command of a pipeline.)
    out[#out + 1] = { id, rcall('HGETALL', jobKey) }
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

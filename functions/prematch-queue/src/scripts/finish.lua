--[[
  finish.lua: finish a batch of claimed jobs, each fenced by its own lock token, then optionally claim
  the next batch in the same call (BullMQ's moveToFinished / moveToDelayed / retryJob /
  moveJobFromActiveToWait, batched). Prepended with common.lua and worker_common.lua.

  KEYS: 1 wait  2 active  3 prioritized  4 delayed  5 meta  6 marker  7 events  8 limiter  9 pc
        10 completed  11 failed  12 stalled
  ARGV: 1 key prefix  2 now ms  3 entry count  4 claim n  5 token base  6 first token seq  7 lock ms
        8 worker limiter max  9 worker limiter duration ms, then 11 fields per entry:
        id, token, kind, value, stacktrace JSON, keep count, keep age s, keep limit, attempts, extra,
        atm after this attempt (the job's atm at claim + 1; used by c/f)
    kind "c" completed: value = returnvalue JSON; keep* = removeOnComplete (count -1 keeps all, 0 deletes)
    kind "f" failed (final): value = failedReason; keep* = removeOnFail; attempts = opts.attempts
    (c/f: extra = "p" when the job is a flow child: its parent's `:dependencies`, `:processed`,
     `:failed`, `:unsuccessful`, `defa` and state structures - waiting-children, wait, prioritized,
     delayed, marker, events of the parent's queue - are updated; the parent must share the slot)
    kind "d" retry later: value = failedReason; extra = backoff delay ms (job -> delayed)
    kind "r" retry now: value = failedReason; extra = "1" for lifo (job -> wait/prioritized)
    kind "w" release unstarted job to the front of wait (no attempt counted)
  Per entry, the job's lock must hold this token (-2 missing, -6 other token; -1 if the job itself is
  gone) and it must be in active (-3); a rejected entry changes nothing. Accepted entries:
    c/f: atm+1, finishedOn, returnvalue|failedReason(+stacktrace, defa removed), completed|failed ZSET
         scored by finishedOn (or deleted by retention), events completed | failed (+retries-exhausted)
    d:   atm+1, failedReason, stacktrace, delay, delayed ZSET, "delayed" event, delay marker
    r:   atm+1, failedReason, stacktrace, wait/prioritized, "waiting" event (prev active), marker
  Retention trims (age/count) run once per distinct spec after the entries. "drained" is emitted when
  wait, active and prioritized are all empty at the end.
  Reply: { {code per entry}, claimReply (see claim.lua) or 0 }
]]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local maxLen = eventsMaxLen(K.meta)
rcall('XTRIM', K.events, 'MAXLEN', '~', maxLen)

local function releaseLock(jobKey, id, token)
  if token == '0' then return 0 end
  local cur = rcall('GET', jobKey .. ':lock')
  if cur == token then
    rcall('DEL', jobKey .. ':lock')
    rcall('SREM', K.stalled, id)
    return 0
  end
  if cur then return -6 end
  return -2
end

-- Moves a flow parent out of waiting-children once it may run (BullMQ: delayed if it has a delay,
-- prioritized if it has a priority, else the front of wait), on the parent's own queue.
local function releaseParent(pq, pid, pkey)
  local wc = pq .. ':waiting-children'
  if not rcall('ZSCORE', wc, pid) then return end
  rcall('ZREM', wc, pid)
  local pmeta = pq .. ':meta'
  local pMaxLen = tonumber(rcall('HGET', pmeta, 'opts.maxLenEvents')) or 10000
  local f = rcall('HMGET', pkey, 'delay', 'priority')
  local delay, prio = tonumber(f[1]) or 0, tonumber(f[2]) or 0
  if delay > 0 then
    local due = now + delay
    rcall('ZADD', pq .. ':delayed', delayedScore(pq .. ':delayed', due), pid)
    rcall('XADD', pq .. ':events', 'MAXLEN', '~', pMaxLen, '*', 'event', 'delayed', 'jobId', pid, 'delay', due)
    addDelayMarker(pq .. ':marker', pq .. ':delayed')
  else
    if prio > 0 then
      addPrioritized(pq .. ':prioritized', pq .. ':pc', pid, prio)
    else
      rcall('RPUSH', pq .. ':wait', pid)
    end
    rcall('XADD', pq .. ':events', 'MAXLEN', '~', pMaxLen, '*', 'event', 'waiting', 'jobId', pid,
      'prev', 'waiting-children')
    if not pausedOrMaxed(pmeta, pq .. ':active') then rcall('ZADD', pq .. ':marker', 0, '0') end
  end
end

-- Flow child finished: record it on the parent (the `parent` field names the parent and its
-- failure policy: fpof fails the parent, cpof/idof record the failure and go on, rdof drops it).
local function updateParent(jobKey, kind, value)
  local raw = rcall('HGET', jobKey, 'parent')
  if not raw then return end
  local ok, parent = pcall(cjson.decode, raw)
  if not ok or type(parent) ~= 'table' or not parent.queueKey or not parent.id then return end
  local pq, pid = parent.queueKey, tostring(parent.id)
  local pkey = pq .. ':' .. pid
  local deps = pkey .. ':dependencies'
  if kind == 'c' then
    rcall('SREM', deps, jobKey)
    rcall('HSET', pkey .. ':processed', jobKey, value)
    if rcall('SCARD', deps) == 0 then releaseParent(pq, pid, pkey) end
  elseif parent.fpof then
    rcall('SREM', deps, jobKey)
    rcall('ZADD', pkey .. ':unsuccessful', now, jobKey)
    rcall('HSET', pkey, 'defa', 'child ' .. jobKey .. ' failed')
    releaseParent(pq, pid, pkey)
  elseif parent.cpof then
    rcall('SREM', deps, jobKey)
    rcall('HSET', pkey .. ':failed', jobKey, value)
    releaseParent(pq, pid, pkey)
  elseif parent.idof or parent.rdof then
    rcall('SREM', deps, jobKey)
    if parent.idof then rcall('HSET', pkey .. ':failed', jobKey, value) end
    if rcall('SCARD', deps) == 0 then releaseParent(pq, pid, pkey) end
  end
  -- No flag: the child stays a pending dependency and the parent waits (BullMQ's design).
end

local codes = {}
local trims = {}
local trimOrder = {}
local readyAdded = false
local delayedAdded = false

for e = 0, count - 1 do
  local b = 10 + e * 11
  local id, token, kind, value = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local jobKey = prefix .. id
  -- A lock holding our token implies the job exists (claims set it; removals refuse locked jobs),
  -- so EXISTS is only asked when the lock check fails.
  local code = releaseLock(jobKey, id, token)
  if (code == -2 or token == '0') and rcall('EXISTS', jobKey) == 0 then code = -1 end
  if code == 0 and rcall('LREM', K.active, -1, id) == 0 then code = -3 end
  if code == 0 then
    if kind == 'c' or kind == 'f' then
      local keepCount = tonumber(ARGV[b + 5])
      local target = K.completed
      if kind == 'f' then
        target = K.failed
        rcall('HSET', jobKey, 'failedReason', value, 'stacktrace', ARGV[b + 4])
        rcall('HDEL', jobKey, 'defa')
      end
      -- atm while we hold the lock cannot change, so the client sends atm+1 (saves a HINCRBY).
      -- ("" when unknown, e.g. an unreadable job: then it is incremented here).
      local atm = tonumber(ARGV[b + 10])
      if not atm then atm = rcall('HINCRBY', jobKey, 'atm', 1) end
      if ARGV[b + 9] == 'p' then updateParent(jobKey, kind, value) end
      if keepCount == 0 then
        removeJobKeys(jobKey)
      else
        rcall('ZADD', target, now, id)
        if kind == 'c' then
          rcall('HSET', jobKey, 'returnvalue', value, 'finishedOn', now, 'atm', atm)
        else
          rcall('HSET', jobKey, 'finishedOn', now, 'atm', atm)
        end
        local age = tonumber(ARGV[b + 6])
        if keepCount > 0 or age > 0 then
          local spec = target .. '|' .. ARGV[b + 5] .. '|' .. ARGV[b + 6] .. '|' .. ARGV[b + 7]
          if not trims[spec] then
            trims[spec] = { target, keepCount, age, tonumber(ARGV[b + 7]) }
            trimOrder[#trimOrder + 1] = spec
          end
        end
      end
      if kind == 'c' then
        rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'completed', 'jobId', id,
          'returnvalue', value, 'prev', 'active')
      else
        rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'failed', 'jobId', id,
          'failedReason', value, 'prev', 'active')
        if atm >= tonumber(ARGV[b + 8]) then
          rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'retries-exhausted', 'jobId', id,
            'attemptsMade', atm)
        end
      end
    elseif kind == 'd' then
      local delay = tonumber(ARGV[b + 9])
      rcall('HSET', jobKey, 'failedReason', value, 'stacktrace', ARGV[b + 4], 'delay', delay)
      rcall('HINCRBY', jobKey, 'atm', 1)
      local due = now + delay
      rcall('ZADD', K.delayed, delayedScore(K.delayed, due), id)
      rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'delayed', 'jobId', id, 'delay', due)
      delayedAdded = true
    elseif kind == 'r' or kind == 'w' then
      if kind == 'r' then
        rcall('HSET', jobKey, 'failedReason', value, 'stacktrace', ARGV[b + 4])
        rcall('HINCRBY', jobKey, 'atm', 1)
      end
      local prio = tonumber(rcall('HGET', jobKey, 'priority')) or 0
      if prio > 0 then
        if kind == 'w' then
          rcall('ZADD', K.prioritized, prio * 4294967296, id)
        else
          addPrioritized(K.prioritized, K.pc, id, prio)
        end
      elseif kind == 'w' or ARGV[b + 9] == '1' then
        rcall('RPUSH', K.wait, id)
      else
        rcall('LPUSH', K.wait, id)
      end
      rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
      readyAdded = true
    end
  end
  codes[#codes + 1] = code
end

-- Retention: each distinct (set, count, age, limit) once for the whole batch.
for _, spec in ipairs(trimOrder) do
  local t = trims[spec]
  local target, keepCount, age, limit = t[1], t[2], t[3], t[4]
  if age > 0 then
    if limit <= 0 then limit = 1000 end
    local old = rcall('ZRANGEBYSCORE', target, 0, now - age * 1000, 'LIMIT', 0, limit)
    for _, oid in ipairs(old) do
      removeJobKeys(prefix .. oid)
      rcall('ZREM', target, oid)
    end
  end
  if keepCount > 0 then
    local excess = rcall('ZCARD', target) - keepCount
    if excess > 0 then
      local old = rcall('ZRANGE', target, 0, excess - 1)
      for _, oid in ipairs(old) do removeJobKeys(prefix .. oid) end
      rcall('ZREMRANGEBYRANK', target, 0, excess - 1)
    end
  end
end

if delayedAdded then addDelayMarker(K.marker, K.delayed) end
if readyAdded and not pausedOrMaxed(K.meta, K.active) then rcall('ZADD', K.marker, 0, '0') end

local claimReply = 0
local n = tonumber(ARGV[4])
if n > 0 then
  claimReply = claimJobs(prefix, now, n, ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]),
    tonumber(ARGV[8]), tonumber(ARGV[9]), maxLen)
end
if count > 0 and rcall('LLEN', K.wait) == 0 and rcall('LLEN', K.active) == 0
    and rcall('ZCARD', K.prioritized) == 0 then
  rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'drained')
end
return { codes, claimReply }

--[[
  finish.lua: finish a batch of claimed jobs, each fenced by its own lock token, then optionally claim
  the next batch in the same call (BullMQ's moveToFinished / moveToDelayed / retryJob /
  moveJobFromActiveToWait, batched). Prepended with common.lua and worker_common.lua.

  KEYS: 1 wait  2 active  3 prioritized  4 delayed  5 meta  6 marker  7 events  8 limiter  9 pc
        10 completed  11 failed  12 stalled
  ARGV: 1 key prefix  2 now ms  3 entry count  4 claim n  5 token base  6 first token seq  7 lock ms
        8 worker limiter max  9 worker limiter duration ms, then per entry (variable length):
        kind, id, token, value, then by kind
    "C" completed, keep all, no parent: atm                                            (5 fields)
    "c" completed: atm, keep count, keep age s, keep limit, parent flag                (9 fields)
    "f" failed (final): atm, stacktrace JSON, keep count, keep age s, keep limit, attempts,
        parent flag                                                                    (11 fields)
    "d" retry later: stacktrace JSON, backoff delay ms (job -> delayed)                (6 fields)
    "r" retry now: stacktrace JSON, "1" for lifo (job -> wait/prioritized)             (6 fields)
    "w" release unstarted job to the front of wait, no attempt counted; value ""       (4 fields)
    value: returnvalue JSON (c), failedReason (f, d, r). atm: the job's atm after this attempt (its
    atm at claim + 1), "" when unknown. keep* = removeOnComplete (c) / removeOnFail (f): count -1 keeps
    all, 0 deletes. parent flag "p" when the job is a flow child: its parent's `:dependencies`,
    `:processed`, `:failed`, `:unsuccessful`, `defa` and state structures - waiting-children, wait,
    prioritized, delayed, marker, events of the parent's queue - are updated; the parent must share
    the slot.
  Per entry, the job's lock must hold this token (-2 missing, -6 other token; -1 if the job itself is
  gone) and it must be in active (-3); a rejected entry changes nothing. Accepted entries:
    c/f: atm+1, finishedOn, returnvalue|failedReason(+stacktrace, defa removed), completed|failed ZSET
         scored by finishedOn (or deleted by retention), events completed | failed (+retries-exhausted)
    d:   atm+1, failedReason, stacktrace, delay, delayed ZSET, "delayed" event, delay marker
    r:   atm+1, failedReason, stacktrace, wait/prioritized, "waiting" event (prev active), marker
  Retention trims (age/count) run once per distinct spec after the entries. "drained" is emitted when
  wait, active and prioritized are all empty at the end.
  Commands per batch, not per job: one MGET of the locks, one DEL + SREM for the released ones, one
  LRANGE + LTRIM of active when the batch is its tail (else LREM per job), one ZADD per target set,
  one XTRIM. Per job: HSET and XADD (and the claim's SET, XADD, HSET, HINCRBY, HGETALL).
  Reply: { {code per entry}, claimReply (see claim.lua) or 0 }
]]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local nowText = ARGV[2]
local count = tonumber(ARGV[3])
local maxLen = eventsMaxLen(K.meta)

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
-- Finished jobs to add to completed / failed, flushed with one variadic ZADD each before retention.
local toCompleted, toFailed = {}, {}

-- Entries have a variable number of fields (see the header); at[e] is where entry e starts.
local at = {}
do
  local b = 10
  for e = 1, count do
    at[e] = b
    local kind = ARGV[b]
    if kind == 'C' then b = b + 5
    elseif kind == 'c' then b = b + 9
    elseif kind == 'f' then b = b + 11
    elseif kind == 'w' then b = b + 4
    else b = b + 6 end
  end
end

-- Fencing, batched: read every entry's lock with one MGET; a lock holding the entry's token is
-- released (one DEL, one SREM from stalled for the batch). Same outcome per entry as GET, DEL, SREM
-- per job: scripts are atomic, and no entry's transition below touches another entry's lock.
local lockKeys = {}
for e = 1, count do
  lockKeys[e] = prefix .. ARGV[at[e] + 1] .. ':lock'
end
local locks = {}
for i = 1, count, 500 do
  local part = rcall('MGET', unpack(lockKeys, i, math.min(i + 499, count)))
  for j = 1, #part do locks[i + j - 1] = part[j] end
end
local released, releasedIds, seen = {}, {}, {}
for e = 1, count do
  local b = at[e]
  local id, token = ARGV[b + 1], ARGV[b + 2]
  local code
  if seen[id] then
    -- The same job twice in one batch: only the first entry can hold the lock.
    code = -2
  elseif token == '0' then
    code = 0
  elseif locks[e] == token then
    code = 0
    released[#released + 1] = lockKeys[e]
    releasedIds[#releasedIds + 1] = id
  elseif locks[e] then
    code = -6
  else
    code = -2
  end
  -- A lock holding our token implies the job exists (claims set it; removals refuse locked jobs),
  -- so EXISTS is only asked when the lock check fails.
  if (code == -2 or token == '0') and rcall('EXISTS', prefix .. id) == 0 then code = -1 end
  seen[id] = true
  codes[e] = code
end
for i = 1, #released, 500 do
  local j = math.min(i + 499, #released)
  rcall('DEL', unpack(released, i, j))
  rcall('SREM', K.stalled, unpack(releasedIds, i, j))
end

-- Out of active, batched: the accepted jobs are usually exactly the oldest claims, i.e. the tail of
-- active (claims LPUSH). Then one LRANGE + one LTRIM replace one LREM per job. Otherwise (another
-- worker's jobs interleaved, out-of-order finishes) one LREM per job from the tail, as before.
-- Either way each accepted job loses one occurrence, and a job not in active gets -3.
do
  local want, nAccepted = {}, 0
  for e = 1, count do
    if codes[e] == 0 then
      local id = ARGV[at[e] + 1]
      want[id] = (want[id] or 0) + 1
      nAccepted = nAccepted + 1
    end
  end
  local fast = false
  if nAccepted > 0 then
    local tail = rcall('LRANGE', K.active, -nAccepted, -1)
    if #tail == nAccepted then
      fast = true
      for _, id in ipairs(tail) do
        local w = want[id]
        if not w or w == 0 then fast = false; break end
        want[id] = w - 1
      end
    end
    if fast then
      rcall('LTRIM', K.active, 0, -nAccepted - 1)
    else
      for e = 1, count do
        if codes[e] == 0 and rcall('LREM', K.active, '-1', ARGV[at[e] + 1]) == 0 then codes[e] = -3 end
      end
    end
  end
end

for e = 1, count do
  local b = at[e]
  local kind, id, token, value = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local jobKey = prefix .. id
  if codes[e] == 0 then
    if kind == 'C' or kind == 'c' or kind == 'f' then
      -- Keep specs are compared as strings on the common path ("-1" keep all, "0" delete): fewer
      -- number conversions per job. "C" = completed, keep all, no parent.
      local keepText, ageText, limitText, parentFlag = '-1', '0', '0', ''
      local stack, attempts = nil, nil
      if kind == 'c' then
        keepText, ageText, limitText, parentFlag = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
      elseif kind == 'f' then
        stack, keepText, ageText, limitText = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
        attempts, parentFlag = ARGV[b + 9], ARGV[b + 10]
      end
      local target = K.completed
      if kind == 'f' then target = K.failed end
      -- atm while we hold the lock cannot change, so the client sends atm+1 (saves a HINCRBY).
      -- ("" when unknown, e.g. an unreadable job: then it is incremented here).
      local atm = ARGV[b + 4]
      if atm == '' then atm = rcall('HINCRBY', jobKey, 'atm', '1') end
      if kind == 'f' and keepText == '0' then
        -- The parent update below may read the child's failure; the job is deleted right after.
        rcall('HSET', jobKey, 'failedReason', value, 'stacktrace', stack)
      end
      if parentFlag == 'p' then updateParent(jobKey, kind == 'f' and 'f' or 'c', value) end
      if keepText == '0' then
        removeJobKeys(jobKey)
      else
        if kind == 'f' then
          toFailed[#toFailed + 1] = nowText
          toFailed[#toFailed + 1] = id
          rcall('HSET', jobKey, 'failedReason', value, 'stacktrace', stack, 'finishedOn', nowText,
            'atm', atm)
          rcall('HDEL', jobKey, 'defa')
        else
          toCompleted[#toCompleted + 1] = nowText
          toCompleted[#toCompleted + 1] = id
          rcall('HSET', jobKey, 'returnvalue', value, 'finishedOn', nowText, 'atm', atm)
        end
        if keepText ~= '-1' or ageText ~= '0' then
          local keepCount, age = tonumber(keepText), tonumber(ageText)
          if keepCount > 0 or age > 0 then
            local spec = target .. '|' .. keepText .. '|' .. ageText .. '|' .. limitText
            if not trims[spec] then
              trims[spec] = { target, keepCount, age, tonumber(limitText) }
              trimOrder[#trimOrder + 1] = spec
            end
          end
        end
      end
      -- Events are added without MAXLEN; the stream is trimmed once at the end of the script.
      if kind == 'f' then
        rcall('XADD', K.events, '*', 'event', 'failed', 'jobId', id, 'failedReason', value,
          'prev', 'active')
        if tonumber(atm) >= tonumber(attempts) then
          rcall('XADD', K.events, '*', 'event', 'retries-exhausted', 'jobId', id, 'attemptsMade', atm)
        end
      else
        rcall('XADD', K.events, '*', 'event', 'completed', 'jobId', id, 'returnvalue', value,
          'prev', 'active')
      end
    elseif kind == 'd' then
      local delay = tonumber(ARGV[b + 5])
      rcall('HSET', jobKey, 'failedReason', value, 'stacktrace', ARGV[b + 4], 'delay', delay)
      rcall('HINCRBY', jobKey, 'atm', 1)
      local due = now + delay
      rcall('ZADD', K.delayed, delayedScore(K.delayed, due), id)
      rcall('XADD', K.events, '*', 'event', 'delayed', 'jobId', id, 'delay', due)
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
      elseif kind == 'w' or ARGV[b + 5] == '1' then
        rcall('RPUSH', K.wait, id)
      else
        rcall('LPUSH', K.wait, id)
      end
      rcall('XADD', K.events, '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
      readyAdded = true
    end
  end
end

for i = 1, #toCompleted, 1000 do
  rcall('ZADD', K.completed, unpack(toCompleted, i, math.min(i + 999, #toCompleted)))
end
for i = 1, #toFailed, 1000 do
  rcall('ZADD', K.failed, unpack(toFailed, i, math.min(i + 999, #toFailed)))
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
  rcall('XADD', K.events, '*', 'event', 'drained')
end
trimEvents(K.events, maxLen)
return { codes, claimReply }

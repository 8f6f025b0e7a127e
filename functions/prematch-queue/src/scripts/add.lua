--[[
  add.lua: add a batch of jobs in one call (BullMQ's addStandardJob / addDelayedJob / addPrioritizedJob).
  Prepended at build time with common.lua.

  KEYS: 1 wait  2 meta  3 id  4 delayed  5 prioritized  6 pc  7 marker  8 events  9 active
  ARGV: 1 key prefix ("{prefix}:{queue}:")  2 job count, then 8 fields per job:
        custom id ("" = use the counter), name, data JSON, opts JSON, timestamp ms, delay ms, priority,
        lifo ("1"/"0")
  Reads: meta (opts.maxLenEvents, paused, concurrency), the job hash (duplicate check for custom ids).
  Writes per job: INCR id (every add, as BullMQ does); the job hash (name, data, opts, timestamp, delay,
    priority) and an "added" event; then
      delay > 0    -> delayed ZSET (score dueMs*4096+seq) and a "delayed" event (delay = due ms)
      priority > 0 -> prioritized ZSET (priority*2^32 + pc) and a "waiting" event
      otherwise    -> LPUSH wait (RPUSH when lifo) and a "waiting" event
    An existing custom id is never overwritten: a "duplicated" event, and the reply says not created.
  Markers once per batch: "0" if a job became ready (unless paused or maxed), "1" = earliest due time.
  Reply: { id1, created1, id2, created2, ... } with created 1/0.
]]
local K = { wait = KEYS[1], meta = KEYS[2], id = KEYS[3], delayed = KEYS[4], prioritized = KEYS[5],
  pc = KEYS[6], marker = KEYS[7], events = KEYS[8], active = KEYS[9] }
local prefix = ARGV[1]
local count = tonumber(ARGV[2])
local maxLen = eventsMaxLen(K.meta)
local out = {}
local readyAdded = false
local delayedAdded = false
for j = 0, count - 1 do
  local b = 3 + j * 8
  local customId, name, data, opts = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local timestamp, delay, priority = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local counter = rcall('INCR', K.id)
  local id = customId
  if id == '' then id = tostring(counter) end
  local jobKey = prefix .. id
  if customId ~= '' and rcall('EXISTS', jobKey) == 1 then
    rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'duplicated', 'jobId', id)
    out[#out + 1] = id
    out[#out + 1] = 0
  else
    rcall('HSET', jobKey, 'name', name, 'data', data, 'opts', opts, 'timestamp', ARGV[b + 4],
      'delay', delay, 'priority', priority)
    rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'added', 'jobId', id, 'name', name)
    if delay > 0 then
      local due = timestamp + delay
      rcall('ZADD', K.delayed, delayedScore(K.delayed, due), id)
      rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'delayed', 'jobId', id, 'delay', due)
      delayedAdded = true
    else
      if priority > 0 then
        addPrioritized(K.prioritized, K.pc, id, priority)
      elseif ARGV[b + 7] == '1' then
        rcall('RPUSH', K.wait, id)
      else
        rcall('LPUSH', K.wait, id)
      end
      rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'waiting', 'jobId', id)
      readyAdded = true
    end
    out[#out + 1] = id
    out[#out + 1] = 1
  end
end
if readyAdded and not pausedOrMaxed(K.meta, K.active) then rcall('ZADD', K.marker, 0, '0') end
if delayedAdded then addDelayMarker(K.marker, K.delayed) end
return out

--[[
  common.lua: helpers shared by the worker-side scripts (claim, finish) and add. It is prepended to those
  scripts at build time (see src/scripts.rs), so every script stays one atomic EVALSHA.

  The data these helpers write is BullMQ v6's layout (see shared/reference/bullmq-v6-protocol.md):
  - delayed ZSET score   = dueMs * 4096 + seq (seq keeps FIFO order for up to 4096 jobs per ms)
  - prioritized ZSET score = priority * 2^32 + (pc mod 2^32)
  - marker ZSET: member "0" score 0 = "a job is ready", member "1" score T = "a delayed job is due at T"
  Note: never concatenate big numbers with `..` (Lua prints them with 14 digits); pass them to redis.call.
]]
local rcall = redis.call

-- Max length of the events stream; written to meta when missing, as BullMQ's Queue does.
local function eventsMaxLen(metaKey)
  local m = rcall('HGET', metaKey, 'opts.maxLenEvents')
  if not m then
    rcall('HSET', metaKey, 'opts.maxLenEvents', 10000)
    return 10000
  end
  return tonumber(m)
end

-- One approximate trim of the events stream per script call, after its last XADD: cheaper than a
-- MAXLEN on every XADD, and no client can see the stream between the two (scripts are atomic).
local function trimEvents(eventsKey, maxLen)
  rcall('XTRIM', eventsKey, 'MAXLEN', '~', maxLen)
end

-- True when the queue is paused or at its global concurrency: then no "job ready" marker is added.
local function pausedOrMaxed(metaKey, activeKey)
  local v = rcall('HMGET', metaKey, 'paused', 'concurrency')
  if v[1] then return true end
  if v[2] then return rcall('LLEN', activeKey) >= tonumber(v[2]) end
  return false
end

local function delayedScore(delayedKey, dueMs)
  local base = dueMs * 4096
  local top = base + 4095
  local r = rcall('ZREVRANGEBYSCORE', delayedKey, top, base, 'WITHSCORES', 'LIMIT', 0, 1)
  if #r > 0 then
    local s = tonumber(r[2]) + 1
    if s > top then s = top end
    return s
  end
  return base
end

local function addPrioritized(prioKey, pcKey, id, priority)
  local pc = rcall('INCR', pcKey)
  rcall('ZADD', prioKey, priority * 4294967296 + (pc % 4294967296), id)
end

-- Earliest delayed due time in ms, or 0 when nothing is delayed.
local function nextDelayedMs(delayedKey)
  local r = rcall('ZRANGE', delayedKey, 0, 0, 'WITHSCORES')
  if #r == 0 then return 0 end
  return math.floor(tonumber(r[2]) / 4096)
end

local function addDelayMarker(markerKey, delayedKey)
  local t = nextDelayedMs(delayedKey)
  if t > 0 then rcall('ZADD', markerKey, t, '1') end
end

-- Deletes a job and its sub-keys (retention, removeOnComplete/removeOnFail).
local function removeJobKeys(jobKey)
  rcall('DEL', jobKey, jobKey .. ':logs', jobKey .. ':dependencies', jobKey .. ':processed',
    jobKey .. ':failed', jobKey .. ':unsuccessful', jobKey .. ':lock')
end

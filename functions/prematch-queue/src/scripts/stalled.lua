--[[
  stalled.lua: recover jobs whose worker died (BullMQ's moveStalledJobsToWait, v6 semantics).

  KEYS: 1 stalled  2 wait  3 active  4 stalled-check  5 meta  6 marker  7 events
  ARGV: 1 key prefix  2 now ms  3 maxStalledCount  4 stalledInterval ms  5 "1" to ignore the throttle
  Throttle: if stalled-check exists (someone checked within stalledInterval) and ARGV[5] ~= "1", return {}.
  Otherwise SET stalled-check now PX interval and trim the events stream.
  Candidates: the ids in `stalled` (active at the previous check, lock not renewed since), plus - our
  addition for Lambda, where no process outlives an invocation - any id in `active` whose lock key is
  gone: every claim sets the lock atomically, so an active job without a lock has lost its worker.
  For each candidate whose lock does not exist and that LREM removes from active:
    stc + 1; if stc > maxStalledCount (and it is not a live scheduler job): defa = "job stalled more
    than allowable limit" (the next worker that fetches it fails it at once); RPUSH to the front of
    wait; events "waiting" (prev active) and "stalled".
  Then every id still in active becomes a suspect (SADD stalled) for the next check.
  Reply: the recovered ids.
]]
local rcall = redis.call
local K = { stalled = KEYS[1], wait = KEYS[2], active = KEYS[3], check = KEYS[4], meta = KEYS[5],
  marker = KEYS[6], events = KEYS[7] }
local prefix = ARGV[1]
local now = ARGV[2]
local maxStalled = tonumber(ARGV[3])
if ARGV[5] ~= '1' and rcall('EXISTS', K.check) == 1 then return {} end
rcall('SET', K.check, now, 'PX', ARGV[4])
local maxLen = tonumber(rcall('HGET', K.meta, 'opts.maxLenEvents')) or 10000
rcall('XTRIM', K.events, 'MAXLEN', '~', maxLen)

local seen = {}
local candidates = {}
for _, id in ipairs(rcall('SMEMBERS', K.stalled)) do
  if not seen[id] then seen[id] = true; candidates[#candidates + 1] = id end
end
rcall('DEL', K.stalled)
for _, id in ipairs(rcall('LRANGE', K.active, 0, -1)) do
  if not seen[id] then seen[id] = true; candidates[#candidates + 1] = id end
end

local recovered = {}
for _, id in ipairs(candidates) do
  local jobKey = prefix .. id
  if rcall('EXISTS', jobKey .. ':lock') == 0 and rcall('LREM', K.active, 1, id) > 0 then
    local stc = rcall('HINCRBY', jobKey, 'stc', 1)
    if stc > maxStalled then
      local rjk = rcall('HGET', jobKey, 'rjk')
      if not (rjk and rcall('EXISTS', prefix .. 'repeat:' .. rjk) == 1) then
        rcall('HSET', jobKey, 'defa', 'job stalled more than allowable limit')
      end
    end
    rcall('RPUSH', K.wait, id)
    rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
    rcall('XADD', K.events, 'MAXLEN', '~', maxLen, '*', 'event', 'stalled', 'jobId', id)
    recovered[#recovered + 1] = id
  end
end
if #recovered > 0 then
  local v = rcall('HMGET', K.meta, 'paused', 'concurrency')
  if not v[1] and not (v[2] and rcall('LLEN', K.active) >= tonumber(v[2])) then
    rcall('ZADD', K.marker, 0, '0')
  end
end
local still = rcall('LRANGE', K.active, 0, -1)
for i = 1, #still, 500 do
  rcall('SADD', K.stalled, unpack(still, i, math.min(i + 499, #still)))
end
return recovered

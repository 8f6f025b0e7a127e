--[[
  pause.lua: pause or resume a queue with BullMQ v6 semantics.

  KEYS: 1 meta  2 marker  3 events  4 wait  5 paused (legacy v5 list)  6 prioritized  7 delayed
  ARGV: 1 "paused" or "resumed"
  Pause:  HSET meta paused 1, DEL marker (workers stop waking), event "paused". Jobs stay in wait and
          prioritized (v6 never moves them to the legacy `paused` list).
  Resume: HDEL meta paused; a legacy `paused` list (written by v5 tools) is moved back into wait (RENAME
          when wait is absent, else in chunks); marker "0" if work is ready, else the delay marker;
          event "resumed".
  Reply: 1
]]
local rcall = redis.call
if ARGV[1] == 'paused' then
  rcall('HSET', KEYS[1], 'paused', 1)
  rcall('DEL', KEYS[2])
else
  rcall('HDEL', KEYS[1], 'paused')
  if rcall('EXISTS', KEYS[5]) == 1 then
    if rcall('EXISTS', KEYS[4]) == 0 then
      rcall('RENAME', KEYS[5], KEYS[4])
    else
      while true do
        local chunk = rcall('LRANGE', KEYS[5], 0, 6999)
        if #chunk == 0 then break end
        for i = 1, #chunk, 500 do
          rcall('RPUSH', KEYS[4], unpack(chunk, i, math.min(i + 499, #chunk)))
        end
        rcall('LTRIM', KEYS[5], #chunk, -1)
      end
    end
  end
  if rcall('LLEN', KEYS[4]) > 0 or rcall('ZCARD', KEYS[6]) > 0 then
    rcall('ZADD', KEYS[2], 0, '0')
  else
    local r = rcall('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
    if #r > 0 then rcall('ZADD', KEYS[2], math.floor(tonumber(r[2]) / 4096), '1') end
  end
end
local maxLen = tonumber(rcall('HGET', KEYS[1], 'opts.maxLenEvents')) or 10000
rcall('XADD', KEYS[3], 'MAXLEN', '~', maxLen, '*', 'event', ARGV[1])
return 1

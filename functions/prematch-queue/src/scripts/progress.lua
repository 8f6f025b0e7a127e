--[[
  progress.lua: record a running job's progress (BullMQ's updateProgress).

  KEYS: 1 job hash  2 events  3 meta
  ARGV: 1 job id  2 progress JSON
  Writes: HSET progress (JSON text) and a "progress" event (jobId, data). Reply: 1, or -1 if the job
  no longer exists.
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 0 then return -1 end
rcall('HSET', KEYS[1], 'progress', ARGV[2])
local maxLen = tonumber(rcall('HGET', KEYS[3], 'opts.maxLenEvents')) or 10000
rcall('XADD', KEYS[2], 'MAXLEN', '~', maxLen, '*', 'event', 'progress', 'jobId', ARGV[1], 'data', ARGV[2])
return 1

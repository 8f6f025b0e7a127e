--[[
  reprocess.lua: put a failed job back to wait with its attempts reset (replay of a dead letter; the
  same data change as BullMQ's Job.retry('failed') with resetAttemptsMade/Started).

  KEYS: 1 failed  2 wait  3 meta  4 marker  5 events  6 prioritized  7 pc  8 active
  ARGV: 1 key prefix  2 job id
  Reads: the job hash, its score in `failed`.
  Writes: ZREM failed; HDEL finishedOn, processedOn, failedReason, returnvalue, atm, ats, stc, defa;
          LPUSH wait (or prioritized by priority); marker "0" unless paused or maxed; event "waiting"
          (prev failed).
  Reply: 1 done, -1 the job does not exist, -3 the job is not in `failed`.
]]
local rcall = redis.call
local prefix, id = ARGV[1], ARGV[2]
local jobKey = prefix .. id
if rcall('EXISTS', jobKey) == 0 then return -1 end
if not rcall('ZSCORE', KEYS[1], id) then return -3 end
rcall('ZREM', KEYS[1], id)
rcall('HDEL', jobKey, 'finishedOn', 'processedOn', 'failedReason', 'returnvalue', 'atm', 'ats', 'stc', 'defa')
local prio = tonumber(rcall('HGET', jobKey, 'priority')) or 0
if prio > 0 then
  local pc = rcall('INCR', KEYS[7])
  rcall('ZADD', KEYS[6], prio * 4294967296 + (pc % 4294967296), id)
else
  rcall('LPUSH', KEYS[2], id)
end
local v = rcall('HMGET', KEYS[3], 'paused', 'concurrency')
if not v[1] and not (v[2] and rcall('LLEN', KEYS[8]) >= tonumber(v[2])) then
  rcall('ZADD', KEYS[4], 0, '0')
end
local maxLen = tonumber(rcall('HGET', KEYS[3], 'opts.maxLenEvents')) or 10000
rcall('XADD', KEYS[5], 'MAXLEN', '~', maxLen, '*', 'event', 'waiting', 'jobId', id, 'prev', 'failed')
return 1

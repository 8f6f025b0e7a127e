--[[
  extend_locks.lua: renew the locks of jobs a worker still holds (BullMQ's extendLocks).

  KEYS: 1 stalled
  ARGV: 1 key prefix  2 lock ms, then pairs: job id, token
  For each job whose {id}:lock still holds the token: SET it again with PX lock ms and SREM the id from
  `stalled` (no longer a suspect). A lock that expired or belongs to another token is NOT re-acquired.
  Reply: the ids whose lock could not be renewed (the worker has lost them).
]]
local rcall = redis.call
local prefix = ARGV[1]
local lockMs = ARGV[2]
local lost = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lockKey = prefix .. id .. ':lock'
  if rcall('GET', lockKey) == token then
    rcall('SET', lockKey, token, 'PX', lockMs)
    rcall('SREM', KEYS[1], id)
  else
    lost[#lost + 1] = id
  end
end
return lost

--[[
  claim.lua: claim up to N jobs for one worker (BullMQ's moveToActive, batched).
  Prepended at build time with common.lua and worker_common.lua.

  KEYS: 1 wait  2 active  3 prioritized  4 delayed  5 meta  6 marker  7 events  8 limiter  9 pc
        10 completed  11 failed  12 stalled   (only 1-9 are touched here)
  Job keys are built from ARGV[1] (the "{prefix}:{queue}:" key prefix); with a hash-tag prefix they
  share the queue's cluster slot.
  ARGV: 1 key prefix  2 now ms  3 n  4 token base  5 first token seq  6 lock ms
        7 worker limiter max (0 = none)  8 worker limiter duration ms
  Reads: meta (paused, concurrency, max, duration), limiter, wait, prioritized, delayed.
  Writes: due delayed jobs -> wait/prioritized (+ "waiting" events, delay=0); claimed ids -> active;
          {id}:lock = token PX lock; processedOn, ats+1 and an "active" event per job; limiter counter;
          marker "0" when work remains.
  Reply: { rateLimitTtl, nextDelayedMs, state (0 ok, 1 paused, 2 maxed), {id, hash}... }; the i-th
         job's token is ARGV[4]..":"..(ARGV[5]+i-1)
]]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local maxLen = eventsMaxLen(K.meta)
local reply = claimJobs(prefix, now, tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7]), tonumber(ARGV[8]), maxLen)
trimEvents(K.events, maxLen)
return reply

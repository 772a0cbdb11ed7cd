-- schedule.lua: schedules one delayed message (SPEC P8): it waits in <ns>:{q}:d until due
-- (see promote() in lib.lua), then is appended like a push. Not refused as full: maxsize
-- counts it once promoted. Creates the queue like a push when it vanished; notifies watchers
-- so that idle consumers learn the new earliest due time. The placeholder id is 's' for a
-- message scheduled with a level or an ordering key (promoted among the side entries, see
-- lib.lua), else '0'.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the caller's generation
-- ARGV[2..6] spec for creation (see attach.lua)
-- ARGV[7] '1' when the queue may be created on this instance
-- ARGV[8] the queue's notification channel
-- ARGV[9] the delay in ms (on this server's clock)
-- ARGV[10] the entry '<placeholder id>:<deliveries>:<attr length>:<attrs><payload>'
-- Returns {'ok', generation, sequence number, due time in ms} | {'closed'} | {'missing'}
--       | {'retained'} (a level or key, and the live queue has retention)
if closed_generation(ARGV[1]) then return {'closed'} end
local now_ms, now_us = clock()
local q = load()
if not q then
  if ARGV[7] ~= '1' then return {'missing'} end
  q = create(now_ms, now_us, 2)
end
-- A routed message ('s' placeholder) and a live queue with retention: refused, as by push.lua.
if string.sub(ARGV[10], 1, 1) == 's' and (q.rlen or q.rage) then return {'retained'} end
local seq = redis.call('HINCRBY', M, 'dseq', 1)
local due = now_ms + tonumber(ARGV[9])
local member = seq_prefix(seq) .. ARGV[10]
redis.call('ZADD', DELAYED, I(due), member)
adopt(DELAYED)
notify(ARGV[8], 'a')
-- The earliest due time moved earlier: consumers blocked in BLMPOP learn it through the wake
-- list (see lib.lua), as waiters do through the notice.
if redis.call('ZRANGE', DELAYED, 0, 0)[1] == member then wake(nil, 1) end
return {'ok', I(q.gen), I(seq), I(due)}

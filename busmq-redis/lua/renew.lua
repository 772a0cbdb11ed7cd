-- renew.lua: keeps an attachment alive; adopts or recreates the queue when the caller's
-- incarnation vanished without being closed.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the caller's generation
-- ARGV[2..6] spec for creation (see attach.lua)
-- ARGV[7] '1' when the queue may be created on this instance
-- Returns {'alive'} | {'closed'} | {'recreated', generation, ttl, maxsize, max_len, max_age}
--       | {'missing'}
local now_ms, now_us = clock()
local q = load()
local gen = tonumber(ARGV[1])
if q and q.gen == gen then
  expire_all(q, now_ms)
  return {'alive'}
end
if closed_generation(ARGV[1]) then return {'closed'} end
if q then
  expire_all(q, now_ms)
  return {'recreated', unpack(spec_reply(q))}
end
if ARGV[7] ~= '1' then return {'missing'} end
q = create(now_ms, now_us, 2)
return {'recreated', unpack(spec_reply(q))}

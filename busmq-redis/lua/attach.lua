-- attach.lua: creates the queue if needed (atomically: one of two racing creators sees
-- existed = 0), else adopts the stored spec; pushes every key's expiry to now + stored ttl.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1..5] spec for creation: ttl ms, maxsize, retention max_len, retention max_age ms
--            ('' = none), page size
-- ARGV[6] '1' when the queue may be created on this instance, '0' on a legacy instance
-- Returns {'ok', existed (0|1), generation, ttl, maxsize, max_len, max_age} | {'missing'}
local now_ms, now_us = clock()
local q = load()
if q then
  expire_all(q, now_ms)
  return {'ok', 1, unpack(spec_reply(q))}
end
if ARGV[6] ~= '1' then return {'missing'} end
q = create(now_ms, now_us, 1)
return {'ok', 0, unpack(spec_reply(q))}

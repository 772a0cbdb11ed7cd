-- detach.lua: ends one attachment: the queue's keys expire ttl from now, unless the queue is
-- gone or has another generation.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the caller's generation
-- Returns {'ok', 1 (expiry set) | 0 (other generation)} | {'missing'}
local q = load()
if not q then return {'missing'} end
if q.gen ~= tonumber(ARGV[1]) then return {'ok', 0} end
local now_ms = clock()
expire_all(q, now_ms)
return {'ok', 1}

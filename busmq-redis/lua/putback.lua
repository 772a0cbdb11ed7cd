-- putback.lua: puts entries back at the head exactly as a fast take popped them, in the given
-- order, when one of them is not a busmq entry: the take then hands nothing out, reports the
-- foreign data, and loses nothing (as take.lua, which checks before removing).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1..] the entries, as popped
-- Returns {'ok'} | {'missing'}
local q = load()
if not q then return {'missing'} end
push_head(q, ARGV, 1)
redis.call('HSET', M, 'head', I(q.head))
return {'ok'}

-- putback.lua: puts entries back at the head exactly as a fast take popped them, in the given
-- order, when one of them is not a busmq entry: the take then hands nothing out, reports the
-- foreign data, and loses nothing (as take.lua, which checks before removing).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1..] the entries, as popped
-- Returns {'ok'} | {'missing'}
local q = load()
if not q then return {'missing'} end
if q.n == 0 then q.head = math.floor(q.tail / q.size) end
local key = page(q.head)
local i = #ARGV
while i >= 1 do
  local stop = math.max(1, i - CHUNK + 1)
  local batch = {}
  for j = i, stop, -1 do batch[#batch + 1] = ARGV[j] end
  redis.call('LPUSH', key, unpack(batch))
  i = stop - 1
end
adopt(key)
redis.call('HSET', M, 'head', I(q.head))
return {'ok'}

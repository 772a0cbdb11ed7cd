-- unclaim.lua: undoes a reliable take (claim.lua) in which the client found an entry busmq did
-- not write: the returned entries of segment 0 go back to the returned zset, the entries of
-- the page segments back to the head of the pages in their order, and the batches are deleted;
-- the take then hands nothing out, reports the foreign data, and loses nothing (as take.lua,
-- which checks before removing).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the batch name prefix of the take
-- ARGV[2] K, as given to claim.lua
-- Returns {'ok'} | {'missing'}
local q = load()
if not q then return {'missing'} end
local prefix, K = ARGV[1], tonumber(ARGV[2])
local items = {}
for s = 0, K + 1 do
  local name = prefix .. '.' .. I(s)
  local list = PFX .. 'b:' .. name
  local got = redis.call('LRANGE', list, 0, -1)
  if s == 0 then
    local zs = {}
    for j = 1, #got do
      zs[#zs + 1] = I(idof(got[j]))
      zs[#zs + 1] = got[j]
    end
    if #zs > 0 then
      chunked('ZADD', R, zs)
      adopt(R)
    end
  else
    for j = 1, #got do items[#items + 1] = got[j] end
  end
  redis.call('UNLINK', list, PFX .. 'a:' .. name, PFX .. 'e:' .. name)
  redis.call('HDEL', X, 'n:' .. name)
  redis.call('ZREM', Z, name)
end
if #items > 0 then
  if q.n == 0 then q.head = math.floor(q.tail / q.size) end
  local key = page(q.head)
  -- LPUSH inserts one value at a time at the head, so push the entries last to first.
  local i = #items
  while i >= 1 do
    local stop = math.max(1, i - CHUNK + 1)
    local batch = {}
    for j = i, stop, -1 do batch[#batch + 1] = items[j] end
    redis.call('LPUSH', key, unpack(batch))
    i = stop - 1
  end
  adopt(key)
  q.n = q.n + #items
  save(q)
end
return {'ok'}

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
  push_head(q, items, 1)
  q.n = q.n + #items
  save(q)
end
return {'ok'}

-- metadata.lua: reads or writes the queue's string metadata, kept in the meta hash under
-- 'u:<key>' fields (so it shares the queue's expiry).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] 'g' (get key ARGV[2]) | 'a' (get all) | 's' (set pairs ARGV[2], ARGV[3], ...)
-- Returns {'ok'} | {'ok', value} (get) | {'ok', k1, v1, ...} (all) | {'missing'}
local q = load()
if not q then return {'missing'} end
local op = ARGV[1]
if op == 'g' then
  local v = redis.call('HGET', M, 'u:' .. ARGV[2])
  if v then return {'ok', v} end
  return {'ok'}
elseif op == 'a' then
  local all = redis.call('HGETALL', M)
  local out = {'ok'}
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'u:' then
      out[#out + 1] = string.sub(all[i], 3)
      out[#out + 1] = all[i + 1]
    end
  end
  return out
end
local pairs_ = {}
for i = 2, #ARGV, 2 do
  pairs_[#pairs_ + 1] = 'u:' .. ARGV[i]
  pairs_[#pairs_ + 1] = ARGV[i + 1]
end
if #pairs_ > 0 then chunked('HSET', M, pairs_) end
return {'ok'}

-- settle.lua: settles reliable deliveries atomically (ack, release, return, extend). A
-- settlement whose delivery number does not match the pending entry is stale and changes
-- nothing. Released/returned entries go to the returned zset (taken first, in id order); an
-- extended entry moves to a batch of its own with the new deadline. A batch whose entries
-- have all left is deleted at once.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the queue's notification channel
-- ARGV[2..] one settlement each: '<kind>:<id>:<delivery>' with kind 'a' (ack), 'l' (release),
--           'r' (return), or 'e:<id>:<delivery>:<extension ms>' (extend)
-- Returns {'ok', o1..on} with 1 (done) or 0 (stale) per settlement | {'missing'}
if not load() then return {'missing'} end
local n = #ARGV - 1
local kinds, ids, dels, exts, states = {}, {}, {}, {}, {}
for i = 1, n do
  local kind, id, d, ms = string.match(ARGV[i + 1], '^(%a):(%d+):(%d+):?(%d*)$')
  kinds[i], ids[i], dels[i], exts[i] = kind, id or '', tonumber(d), tonumber(ms)
  states[i] = 's:' .. ids[i]
end
local cur = {}
local i = 1
while i <= n do
  local j = math.min(i + CHUNK - 1, n)
  local part = redis.call('HMGET', X, unpack(states, i, j))
  for k = 1, #part do
    if part[k] then cur[ids[i + k - 1]] = part[k] end
  end
  i = j + 1
end
local now_ms
local out = {'ok'}
local del, back, left = {}, {}, {}
for i = 1, n do
  local id = ids[i]
  local b, d = string.match(cur[id] or '', '^([^:]+):(%d+)$')
  local done = 0
  if b and tonumber(d) == dels[i] then
    done = 1
    left[b] = (left[b] or 0) + 1
    if kinds[i] == 'e' then
      now_ms = now_ms or clock()
      local nb = new_batch()
      cur[id] = nb .. ':' .. d
      redis.call('HSET', X, states[i], cur[id], 'b:' .. nb, id, 'n:' .. nb, 1)
      redis.call('ZADD', Z, I(now_ms + (exts[i] or 0)), nb)
    else
      cur[id] = nil
      del[#del + 1] = id
      del[#del + 1] = states[i]
      if kinds[i] == 'l' then
        back[#back + 1] = {id, dels[i]}
      elseif kinds[i] == 'r' then
        back[#back + 1] = {id, math.max(dels[i] - 1, 0)}
      end
    end
  end
  out[#out + 1] = done
end
if #back > 0 then
  local want = {}
  for j = 1, #back do want[j] = back[j][1] end
  local encs = redis.call('HMGET', X, unpack(want))
  local zs = {}
  for j = 1, #back do
    if encs[j] then
      zs[#zs + 1] = back[j][1]
      zs[#zs + 1] = with_delivery(encs[j], back[j][2])
    end
  end
  if #zs > 0 then
    chunked('ZADD', R, zs)
    adopt(R)
  end
end
if #del > 0 then chunked('HDEL', X, del) end
for b, count in pairs(left) do
  if redis.call('HINCRBY', X, 'n:' .. b, -count) <= 0 then
    redis.call('HDEL', X, 'b:' .. b, 'n:' .. b)
    redis.call('ZREM', Z, b)
  end
end
if #back > 0 then notify(ARGV[1], 'a') end
return out

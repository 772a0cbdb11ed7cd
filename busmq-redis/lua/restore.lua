-- restore.lua: puts entries taken in at-most-once mode back at the head, in the given order,
-- before every other ready entry (SPEC Q12); ignores maxsize (they were counted already).
-- When released entries are waiting at the head (the returned zset), the restored ones join
-- them in id order instead.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1..5] spec for creation (see attach.lua)
-- ARGV[6] '1' when the queue may be created on this instance
-- ARGV[7] the queue's notification channel
-- ARGV[8..] complete entries: '<id>:<deliveries>:<attr length>:<attrs><payload>'
-- Returns {'ok'} | {'missing'}
local now_ms, now_us = clock()
local q = load()
if not q then
  if ARGV[6] ~= '1' then return {'missing'} end
  q = create(now_ms, now_us, 1)
end
local count = #ARGV - 7
if count <= 0 then return {'ok'} end
if redis.call('ZCARD', R) > 0 then
  local zs = {}
  for j = 8, #ARGV do
    check(ARGV[j])
    zs[#zs + 1] = I(idof(ARGV[j]))
    zs[#zs + 1] = ARGV[j]
  end
  chunked('ZADD', R, zs)
else
  push_head(q, ARGV, 8, check)
  q.n = q.n + count
  save(q)
end
notify(ARGV[7], 'a')
return {'ok'}

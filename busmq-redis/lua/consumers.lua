-- consumers.lua: registers, renews or removes a consumer lease, enforcing the mixing rule
-- (SPEC Q15): removing and replaying consumers never hold unexpired leases together.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] 'r' (register) | 'n' (renew) | 'u' (unregister)
-- ARGV[2] consumer id
-- ARGV[3] kind: 'r' (removing) | 'p' (replaying)
-- ARGV[4] lease ms
-- Returns {'ok'} | {'mixed', existing kind} | {'missing'}
if not load() then return {'missing'} end
local op, id, kind = ARGV[1], ARGV[2], ARGV[3]
if op == 'u' then
  redis.call('ZREM', C, 'r:' .. id, 'p:' .. id)
  return {'ok'}
end
local now_ms = clock()
redis.call('ZREMRANGEBYSCORE', C, '-inf', now_ms)
local mine = kind .. ':' .. id
if op == 'r' or not redis.call('ZSCORE', C, mine) then
  local other = 'p:'
  if kind == 'p' then other = 'r:' end
  for _, m in ipairs(redis.call('ZRANGE', C, 0, -1)) do
    if string.sub(m, 1, 2) == other then return {'mixed', string.sub(other, 1, 1)} end
  end
end
redis.call('ZADD', C, I(now_ms + tonumber(ARGV[4])), mine)
adopt(C)
return {'ok'}

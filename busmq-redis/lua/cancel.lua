-- cancel.lua: withdraws a delayed message that is not due yet (SPEC P8), found by its due time
-- and sequence number in O(log n + messages due in the same ms).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the generation it was scheduled in
-- ARGV[2] its sequence number
-- ARGV[3] its due time in ms
-- Returns {'ok', 1 (withdrawn) | 0 (promoted, cancelled, or another incarnation)}
local q = load()
if not q or I(q.gen) ~= ARGV[1] then return {'ok', 0} end
-- A message past its due time counts as delivered, whether or not a take promoted it yet (a
-- promotion moves at most PROMOTE_MAX, so the due time itself is compared with the clock).
promote(q)
if tonumber(ARGV[3]) <= clock() then return {'ok', 0} end
local prefix = seq_prefix(tonumber(ARGV[2]))
for _, m in ipairs(redis.call('ZRANGEBYSCORE', DELAYED, ARGV[3], ARGV[3])) do
  if string.sub(m, 1, #prefix) == prefix then
    redis.call('ZREM', DELAYED, m)
    return {'ok', 1}
  end
end
return {'ok', 0}

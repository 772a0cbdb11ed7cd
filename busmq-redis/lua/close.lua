-- close.lua: destroys the queue now, whatever generation the caller names (SPEC Q4), and
-- tombstones the generation it names and the one it destroyed: each is recorded in the
-- tombstone hash with the last id given, which lives for max(2 * ttl, 10 s) and at least until
-- the clock passes that last id. Watchers are notified with 'c:<generation>' for each.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the generation to close ('' = the current one)
-- ARGV[2] the queue's notification channel
-- Returns {'ok', 1 (destroyed) | 0} | {'missing'} (nothing to close, no generation given)
local now_ms = clock()
local q = load()

-- Records that generation gen (a number) was closed.
local function tomb(gen, last, ttl)
  local newest = num(redis.call('HGET', T, 'closed'))
  if not newest or gen > newest then newest = gen end
  redis.call('HSET', T, 'g:' .. I(gen), '1', 'closed', I(newest), 'last', I(last))
  keep_tomb(now_ms + math.max(2 * ttl, 10000))
  keep_tomb(math.floor(last / 1000) + 1)
  notify(ARGV[2], 'c:' .. I(gen))
end

local named = num(ARGV[1])
if q then
  local keys = batch_keys({M, R, Z, X, C, QUARANTINE, DELAYED, H, HI, KG, KW, WAKE})
  for k = q.head, last_page(q) do keys[#keys + 1] = page(k) end
  unlink(keys)
  local last = math.max(q.last, q.base)
  tomb(q.gen, last, q.ttl)
  if named and named ~= q.gen then tomb(named, last, q.ttl) end
  return {'ok', 1}
end
if not named then return {'missing'} end
-- The caller's incarnation expired: still record that it was closed, so that its other
-- clients learn it instead of recreating a headless queue.
if not closed_generation(ARGV[1]) then
  tomb(named, num(redis.call('HGET', T, 'last')) or 0, 0)
end
return {'ok', 0}

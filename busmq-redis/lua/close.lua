-- close.lua: destroys the queue now, leaves a tombstone with the closed generation and the
-- last id (for max(2 * ttl, 10 s), and at least until the clock passes the last id), and
-- notifies watchers with 'c:<generation>'. Another live incarnation is left alone.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the generation to close ('' = the current one)
-- ARGV[2] the queue's notification channel
-- Returns {'ok', 1 (destroyed) | 0} | {'missing'} (nothing to close, no generation given)
local now_ms = clock()
local q = load()

local function tomb(gen, last, ttl)
  redis.call('HSET', T, 'closed', I(gen), 'last', I(last))
  keep_tomb(now_ms + math.max(2 * ttl, 10000))
  keep_tomb(math.floor(last / 1000) + 1)
end

if q and (ARGV[1] == '' or q.gen == tonumber(ARGV[1])) then
  local keys = batch_keys({M, R, Z, X, C, QUARANTINE})
  for k = q.head, last_page(q) do keys[#keys + 1] = page(k) end
  unlink(keys)
  tomb(q.gen, math.max(q.last, q.base), q.ttl)
  notify(ARGV[2], 'c:' .. I(q.gen))
  return {'ok', 1}
end
if q then return {'ok', 0} end
if ARGV[1] == '' then return {'missing'} end
-- The caller's incarnation expired: still record that it was closed, so that its other
-- clients learn it instead of recreating a headless queue.
local t = redis.call('HMGET', T, 'closed', 'last')
if t[1] ~= ARGV[1] then
  tomb(tonumber(ARGV[1]), num(t[2]) or 0, 0)
  notify(ARGV[2], 'c:' .. ARGV[1])
end
return {'ok', 0}

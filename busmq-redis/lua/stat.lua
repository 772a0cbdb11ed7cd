-- stat.lua: reports on the queue without changing it. Entries older than the retention age
-- are not counted (they are never returned either).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV: none
-- Returns {'ok', ready, pending, generation, ttl, maxsize, max_len, max_age, last id,
--         entries kept in the quarantine (see lib.lua), consumers whose lease has not lapsed,
--         delayed messages, ms until the earliest is due or '-1'}
--       | {'missing'}
local q = load()
if not q then return {'missing'} end
promote(q)
local rc = redis.call('ZCARD', R)
-- Side entries (see lib.lua) count whether takeable or waiting behind their key.
local ready = q.n + rc + redis.call('ZCARD', HI)
local now_ms, now_us = clock()
if q.rage then
  local cutoff = now_us - q.rage * 1000
  ready = ready - redis.call('ZCOUNT', R, '-inf', '(' .. I(cutoff))
  if q.n > 0 then
    local pg, off = first_at_least(q, cutoff)
    if pg then ready = ready - position(q, pg, off) else ready = ready - q.n end
  end
end
-- The pending hash counts the unsettled entries of each batch.
local pending = 0
for _, v in ipairs(redis.call('HVALS', X)) do pending = pending + (tonumber(v) or 0) end
local reply = {'ok', I(ready), I(pending)}
for _, s in ipairs(spec_reply(q)) do reply[#reply + 1] = s end
reply[#reply + 1] = I(q.last)
reply[#reply + 1] = redis.call('LLEN', QUARANTINE)
-- Lapsed leases are pruned only when consumers register, so they are skipped here.
reply[#reply + 1] = redis.call('ZCOUNT', C, '(' .. I(now_ms), '+inf')
reply[#reply + 1] = redis.call('ZCARD', DELAYED)
reply[#reply + 1] = due_reply()
return reply

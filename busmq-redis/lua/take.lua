-- take.lua: takes up to `max` ready entries from the head (returned entries first, in id
-- order, then the pages). Reliable mode first returns expired pending entries to the head,
-- then moves what it takes to pending with a visibility deadline and deliveries + 1; entries
-- past max deliveries are claimed the same way but reported apart, as dead.
-- Entries are checked before anything is removed, so a foreign entry fails the call without
-- losing the entries before it. At-most-once takes return the lists as Redis gave them
-- (nested), without touching each entry in Lua.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] max entries
-- ARGV[2] 'a' (at most once: remove) | 'r' (reliable: move to pending)
-- ARGV[3] visibility ms (reliable)
-- ARGV[4] max deliveries (reliable)
-- ARGV[5] 'w' when the caller will wait for entries (at most once): an empty take then also
--         names the page list the next push appends to, so the caller can block on it
--         (BLMPOP); load() counts entries from the lists, so such pops keep the meta valid.
-- Returns {'ok', k, group1, group2, ...}: groups are arrays of entries, the first k entries
-- (across groups) are to be handed out, the rest are dead claims
--       | {'ok', 0, page key} (nothing ready, ARGV[5] = 'w')
--       | {'ok', k, entries, deliveries} (reliable: the stored headers keep the previous
--         delivery count, `deliveries` has the current one per entry) | {'missing'}
local q = load()
if not q then return {'missing'} end
local want = tonumber(ARGV[1])
local reliable = ARGV[2] == 'r'
local now_ms, now_us = 0, 0
if reliable or q.rage then now_ms, now_us = clock() end
trim_age(q, now_us)

if reliable then requeue_expired(now_ms, 100) end

local groups = {}
local got = 0
local rs = redis.call('ZRANGE', R, 0, want - 1)
if #rs > 0 then
  groups[1] = rs
  got = #rs
end
local peeks = {}
local pg, last = q.head, last_page(q)
while got < want and q.n > 0 and pg <= last do
  local key = page(pg)
  local items = redis.call('LRANGE', key, 0, want - got - 1)
  if #items > 0 then
    groups[#groups + 1] = items
    got = got + #items
  end
  peeks[#peeks + 1] = {key, #items}
  pg = pg + 1
end
local hs, batch, taken, deliveries
local live = 0
if reliable and got > 0 then
  local maxd = tonumber(ARGV[4])
  batch = new_batch()
  hs, taken, deliveries = {}, {}, {}
  local ids, dead, dead_d = {}, {}, {}
  -- Formatting numbers is the costliest thing a script does; most entries of a take share
  -- their delivery count, so format each count once.
  local state = {}
  for _, g in ipairs(groups) do
    for j = 1, #g do
      local id, d = string.match(g[j], '^(%d+):(%d+):')
      if not id then foreign('an entry does not start with a busmq header') end
      local n = tonumber(d) + 1
      local st = state[n]
      if not st then
        st = batch .. ':' .. I(n)
        state[n] = st
      end
      ids[#ids + 1] = id
      hs[#hs + 1] = id
      hs[#hs + 1] = g[j]
      hs[#hs + 1] = 's:' .. id
      hs[#hs + 1] = st
      if n > maxd then
        dead[#dead + 1] = g[j]
        dead_d[#dead_d + 1] = n
      else
        taken[#taken + 1] = g[j]
        deliveries[#deliveries + 1] = n
      end
    end
  end
  live = #taken
  for j = 1, #dead do
    taken[#taken + 1] = dead[j]
    deliveries[#deliveries + 1] = dead_d[j]
  end
  hs[#hs + 1] = 'b:' .. batch
  hs[#hs + 1] = table.concat(ids, ' ')
  hs[#hs + 1] = 'n:' .. batch
  hs[#hs + 1] = #ids
else
  -- The cheap check (a header starts with a digit) stops text and JSON written by other
  -- tools before anything is removed; the client checks the rest of the header.
  for _, g in ipairs(groups) do
    for j = 1, #g do
      local b = string.byte(g[j], 1)
      if not b or b < 48 or b > 57 then
        foreign('an entry does not start with a busmq header')
      end
    end
  end
end
if #rs > 0 then redis.call('ZREMRANGEBYRANK', R, 0, #rs - 1) end
local from_pages = 0
for _, p in ipairs(peeks) do
  if p[2] > 0 then redis.call('LTRIM', p[1], p[2], -1) end
  from_pages = from_pages + p[2]
end
if from_pages > 0 or q.rage then
  q.n = q.n - from_pages
  if got < want then q.n = 0 end
  normalize(q)
  redis.call('HSET', M, 'n', I(q.n), 'head', I(q.head))
end

if batch then
  chunked('HSET', X, hs)
  redis.call('ZADD', Z, I(now_ms + tonumber(ARGV[3])), batch)
  adopt(Z)
  adopt(X)
  return {'ok', live, taken, deliveries}
end
if got == 0 and ARGV[5] == 'w' then return {'ok', 0, page(math.floor(q.tail / q.size))} end
local out = {'ok', got}
for _, g in ipairs(groups) do out[#out + 1] = g end
return out

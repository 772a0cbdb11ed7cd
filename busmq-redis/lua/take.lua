-- take.lua: takes up to `max` ready entries from the head (returned entries first, in id
-- order, then the pages), at most once. (Reliable takes are claim.lua.)
-- Entries are checked before anything is removed, so a foreign entry fails the call without
-- losing the entries before it. At-most-once takes return the lists as Redis gave them
-- (nested), without touching each entry in Lua.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] max entries
-- ARGV[2..4] unused ('a', 0, 0: the reliable mode that had them is claim.lua)
-- ARGV[5] 'w' when the caller will wait for entries (at most once): an empty take then also
--         names the page list the next push appends to, so the caller can block on it
--         (BLMPOP); load() counts entries from the lists, so such pops keep the meta valid.
-- Returns {'ok', k, group1, group2, ...}: groups are arrays of entries, the first k entries
-- (across groups) are to be handed out, the rest are dead claims
--       | {'ok', 0, page key} (nothing ready, ARGV[5] = 'w') | {'missing'}
local q = load()
if not q then return {'missing'} end
local want = tonumber(ARGV[1])
local now_us = 0
if q.rage then now_us = select(2, clock()) end
trim_age(q, now_us)

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
-- The cheap check (a header starts with a digit) stops text and JSON written by other tools
-- before anything is removed; the client checks the rest of the header.
for _, g in ipairs(groups) do
  for j = 1, #g do
    local b = string.byte(g[j], 1)
    if not b or b < 48 or b > 57 then
      foreign('an entry does not start with a busmq header')
    end
  end
end
if #rs > 0 then redis.call('ZREMRANGEBYRANK', R, 0, #rs - 1) end
local from_pages = 0
for _, p in ipairs(peeks) do
  if p[2] > 0 then redis.call('LTRIM', p[1], p[2], -1) end
  from_pages = from_pages + p[2]
end
took_from_pages(q, from_pages, got < want)

if got == 0 and ARGV[5] == 'w' then return {'ok', 0, page(math.floor(q.tail / q.size))} end
local out = {'ok', got}
for _, g in ipairs(groups) do out[#out + 1] = g end
return out

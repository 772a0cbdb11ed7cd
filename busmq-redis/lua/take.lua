-- take.lua: takes up to `max` ready entries from the head (returned entries first, in id
-- order, then the pages), at most once. (Reliable takes are claim.lua.)
-- Entries that fail the cheap check (a header starts with a digit: it stops text and JSON
-- written by other tools) are taken like the others but moved to the quarantine (see lib.lua)
-- instead of being handed out, so that they never block the entries after them; the client
-- checks the rest of each header and moves aside what fails there (quarantine.lua).
-- At-most-once takes return the lists as Redis gave them (nested), without copying each
-- entry in Lua unless a group held a foreign one.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] max entries
-- ARGV[2], ARGV[4] unused ('a', 0: the reliable mode that had them is claim.lua)
-- ARGV[3] the queue's notification channel: a take that passes a key's gate tells waiters
-- Side entries (priorities, ordering keys; see lib.lua) are taken after the returned ones
-- when H exists; taking a keyed entry at most once passes its key's gate.
-- ARGV[5] 'w' when the caller will wait for entries (at most once): an empty take then also
--         names the page list the next push appends to, so the caller can block on it
--         (BLMPOP); load() counts entries from the lists, so such pops keep the meta valid.
-- A take that comes back short takes the notice lease (see lib.lua), unless the caller blocks
-- (ARGV[5] = 'w') instead of waiting for a notice.
-- Returns {'ok', k, foreign, group1, group2, ...}: k entries to hand out, in groups (arrays
--         of entries, in order); foreign: the entries moved aside, as a flat array of length
--         and first bytes (see previews() in lib.lua)
--       | {'ok', 0, page key} (nothing ready or moved aside, ARGV[5] = 'w') | {'missing'}
--       Each 'ok' reply ends with one more element: ms until the earliest delayed message is
--       due, '-1' when none waits (see promote() in lib.lua).
local blocks = ARGV[5] == 'w'
local q = load()
if not q then
  if not blocks then want_notices() end
  return {'missing'}
end
promote(q)
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
local sk = side_keys()
-- At most once: the gates of the keyed entries taken pass at the take, so a key's next entry
-- may be taken by the same call, at the place a take of one entry at a time would give it:
-- side_take passes each gate as it takes, and stops its run before the first candidate such
-- an entry goes before; the next run starts from there (see lib.lua).
local passed = 0
if sk then passed = pass_gates(rs) end
local sided = sk and got < want and redis.call('EXISTS', H) == 1
if sided then
  local items = {}
  while got < want do
    local batch, _, made = side_take(q, want - got, true)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do items[#items + 1] = e end
    got = got + #batch
    passed = passed + made
  end
  if #items > 0 then groups[#groups + 1] = items end
end
local pg, last = q.head, last_page(q)
while not sided and got < want and q.n > 0 and pg <= last do
  local key = page(pg)
  local items = redis.call('LRANGE', key, 0, want - got - 1)
  if #items > 0 then
    groups[#groups + 1] = items
    got = got + #items
  end
  peeks[#peeks + 1] = {key, #items}
  pg = pg + 1
end
local bad = {}
for i, g in ipairs(groups) do
  local kept = nil
  for j = 1, #g do
    local b = string.byte(g[j], 1)
    if not b or b < 48 or b > 57 then
      if not kept then
        kept = {}
        for m = 1, j - 1 do kept[m] = g[m] end
      end
      bad[#bad + 1] = g[j]
    elseif kept then
      kept[#kept + 1] = g[j]
    end
  end
  if kept then groups[i] = kept end
end
if #rs > 0 then redis.call('ZREMRANGEBYRANK', R, 0, #rs - 1) end
local from_pages = 0
for _, p in ipairs(peeks) do
  if p[2] > 0 then redis.call('LTRIM', p[1], p[2], -1) end
  from_pages = from_pages + p[2]
end
if not sided then took_from_pages(q, from_pages, got < want) end
quarantine(bad)
local channel = ARGV[3]
if channel == '0' or channel == '' then channel = nil end
wake(channel, passed)
-- Takeable side entries left: wake the next blocked consumer too (a token wakes one).
if sided and redis.call('EXISTS', H) == 1 then wake(nil, 1) end
if got < want and not blocks then want_notices() end

if got == 0 and ARGV[5] == 'w' then
  return {'ok', 0, page(math.floor(q.tail / q.size)), due_reply()}
end
local out = {'ok', got - #bad, previews(bad, {})}
for _, g in ipairs(groups) do out[#out + 1] = g end
out[#out + 1] = due_reply()
return out

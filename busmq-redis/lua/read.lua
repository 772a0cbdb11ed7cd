-- read.lua: reads up to `max` ready entries from a position without removing anything
-- (replay, SPEC Q14), in O(log n + max): positions map to pages by arithmetic and ids are
-- found by binary search. Returned entries (if any) come before the pages.
-- Side entries (priorities, ordering keys; see lib.lua), takeable or waiting, are read at
-- their ids' places: merged by id with the pages, and so are the returned entries then (a
-- read by index walks from the head, O(index), on a queue that has any side entry).
-- A read cannot move entries busmq did not write aside (it removes nothing), so it steps over
-- them without counting them (at most SKIP_LIMIT per call) and names only those before the
-- last entry it returns: a reader that continues after that entry reports each once, and a
-- run of them never stops it.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] 'i' (index ARGV[2]) | 'f' (first id >= ARGV[2]) | 'a' (first id > ARGV[2])
--         | 'e' (nothing: just the last id)
-- ARGV[2] index or id
-- ARGV[3] max entries
-- A read that returns fewer than `max` (the reader is at the end and will wait for a notice)
-- takes the notice lease (see lib.lua).
-- Returns {'ok', newest id or nil when empty, foreign, e1..ek}: foreign, the entries stepped
--         over, as a flat array of length and first bytes (see previews() in lib.lua)
--         and last, ms until the earliest delayed message is due ('-1': none; see promote())
--       | {'missing'}
local q = load()
if not q then
  want_notices()
  return {'missing'}
end
promote(q)
local now_ms, now_us = clock()
if q.rage then
  trim_age(q, now_us)
  save(q)
end
local want = tonumber(ARGV[3])
local out = {'ok', false, {}}
local SKIP_LIMIT = 1000
local rc = redis.call('ZCARD', R)
local hc = redis.call('ZCARD', HI)

local newest = nil
if q.n > 0 then
  local e = redis.call('LINDEX', page(last_page(q)), -1)
  newest = e and entry_id(e)
  -- A foreign entry at the tail: entries leave from the head, so the last id given is there.
  if not newest and q.last > 0 then newest = q.last end
end
if rc > 0 then
  local top = redis.call('ZRANGE', R, -1, -1, 'WITHSCORES')
  local s = tonumber(top[2])
  if not newest or s > newest then newest = s end
end
if hc > 0 then
  local top = redis.call('ZRANGE', HI, -1, -1, 'WITHSCORES')
  local s = tonumber(top[2])
  if not newest or s > newest then newest = s end
end
if newest then out[2] = I(newest) end

local held = {}   -- foreign entries since the last entry added
local skipped = 0
-- The header and the attributes' length, as the client will decode them: an entry the client
-- rejects would otherwise count as read, and a reader asking for one would never get past it.
local function whole(e)
  local id, alen, rest = string.match(e, '^(%d+):%d+:(%d+):()')
  return id and #e - rest + 1 >= tonumber(alen)
end
-- Adds an entry unless it is foreign or (with x) has an id below x, which a search that met
-- foreign entries may start at.
local function add(e, x)
  if not whole(e) then
    held[#held + 1] = e
    skipped = skipped + 1
  elseif x and entry_id(e) < x then
    skipped = skipped + 1
  else
    previews(held, out[3])
    held = {}
    out[#out + 1] = e
  end
end
local function count() return #out - 3 end

-- Adds page entries from page pg, offset off, until `want` are added.
local function read_on(pg, off, x)
  local last = last_page(q)
  while count() < want and skipped < SKIP_LIMIT and pg <= last do
    local n = want - count()
    local items = redis.call('LRANGE', page(pg), off, off + n - 1)
    for j = 1, #items do add(items[j], x) end
    if #items < n then
      pg = pg + 1
      off = 0
    else
      off = off + n
    end
  end
end

-- The side entries and the returned ones with scores from `from` on (a score, '-inf', or
-- '(' .. score for "after"), at most n of each zset, merged by score: {member, score} pairs.
-- Also whether a zset had more than was fetched.
local function side_from(from, n)
  local hs = redis.call('ZRANGEBYSCORE', HI, from, '+inf', 'WITHSCORES', 'LIMIT', 0, n)
  local rs = redis.call('ZRANGEBYSCORE', R, from, '+inf', 'WITHSCORES', 'LIMIT', 0, n)
  local side = {}
  local a, b = 1, 1
  while a <= #hs or b <= #rs do
    if b > #rs or (a <= #hs and tonumber(hs[a + 1]) < tonumber(rs[b + 1])) then
      side[#side + 1] = {hs[a], hs[a + 1]}
      a = a + 2
    else
      side[#side + 1] = {rs[b], rs[b + 1]}
      b = b + 2
    end
  end
  return side, #hs >= 2 * n or #rs >= 2 * n
end

-- Adds page entries from page pg, offset off (none when pg is nil) merged by id with the
-- side entries and the returned ones from id x on, after skipping `skip` of them, until
-- `want` are added. Each round fetches what is still wanted from both sides and merges until
-- one side that has more than it fetched runs out (an entry not fetched there may come
-- first), then goes on from where each side stopped: foreign entries and entries below x use
-- up fetched items without being added, and a reader must still get past them (up to
-- SKIP_LIMIT per call, as read_on).
local function read_merged(pg, off, x, skip)
  local last = last_page(q)
  local from = x and I(x) or '-inf'
  while count() < want and skipped < SKIP_LIMIT do
    local n = want - count() + skip
    local side, side_more = side_from(from, n)
    -- Page items with where each was, so that the next round resumes at the first unused.
    local items, at = {}, {}
    local p, o = pg, off
    while p and #items < n and p <= last do
      local got = redis.call('LRANGE', page(p), o, o + n - #items - 1)
      for k, e in ipairs(got) do
        items[#items + 1] = e
        at[#items] = {p, o + k - 1}
      end
      if #items < n then
        p = p + 1
        o = 0
      else
        o = o + #got
      end
    end
    local pages_more = p ~= nil and p <= last and #items >= n
    local i, j = 1, 1
    while count() < want and skipped < SKIP_LIMIT do
      local a, b = items[i], side[j]
      if (a == nil and pages_more) or (b == nil and side_more) or (a == nil and b == nil) then
        break
      end
      local e
      if b == nil or (a and (entry_id(a) or -1) < tonumber(b[2])) then
        e = a
        i = i + 1
      else
        e = b[1]
        from = '(' .. b[2]
        j = j + 1
      end
      if skip > 0 then skip = skip - 1 else add(e, x) end
    end
    if i <= #items then
      pg, off = at[i][1], at[i][2]
    else
      pg, off = p, o
    end
    local stuck = (i > #items and not pages_more) and (j > #side and not side_more)
    if stuck or (i <= #items and j <= #side) then break end
  end
end

local kind, v = ARGV[1], tonumber(ARGV[2])
local pg, off, x
if hc > 0 and kind ~= 'e' then
  -- With side entries, returned ones are read at their ids' places too (see above).
  local skip = 0
  if kind == 'i' then
    skip = v
    if q.n > 0 then pg, off = q.head, 0 end
  else
    x = v
    if kind == 'a' then x = v + 1 end
    pg, off = first_at_least(q, x)
  end
  read_merged(pg, off, x, skip)
  pg = nil
elseif kind == 'i' then
  if v < rc then
    local rs = redis.call('ZRANGE', R, v, v + want - 1)
    for j = 1, #rs do add(rs[j]) end
    v = 0
  else
    v = v - rc
  end
  if count() < want then pg, off = locate(q, v) end
elseif kind == 'f' or kind == 'a' then
  x = v
  if kind == 'a' then x = v + 1 end
  if rc > 0 then
    local rs = redis.call('ZRANGEBYSCORE', R, I(x), '+inf', 'LIMIT', 0, want)
    for j = 1, #rs do add(rs[j], x) end
  end
  if count() < want then pg, off = first_at_least(q, x) end
end
if pg then read_on(pg, off, x) end
if kind ~= 'e' and count() < want then want_notices() end
out[#out + 1] = due_reply()
return out

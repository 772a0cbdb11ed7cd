-- claim.lua: the reliable take. First returns the unsettled entries of expired batches to the
-- head (see requeue_expired), then moves up to `max` ready entries to pending batches named
-- '<prefix>.<segment>' with a visibility deadline: segment 0 holds the returned entries (they
-- pass through Lua: there are few), segments 1..K each take from one page without passing
-- values through Lua (RENAME of a whole page, or SORT .. BY nosort LIMIT .. STORE and LTRIM
-- for a part of one), and segment K+1 takes what is left from later pages through Lua. It runs
-- in one MULTI followed by `LRANGE <ns>:{q}:b:<prefix>.<s> 0 -1` for s = 0..K+1, which hand
-- the claimed entries to the client; the index of an entry in its segment is its index in
-- the batch, which the client sends back to settle it (settle.lua). The stored headers keep
-- the previous delivery count: the current one is that + 1, and the client tells apart the
-- entries past max deliveries (claimed the same way, to be dead-lettered). Page segments are
-- not looked at here: the client moves the foreign entries it finds in them aside
-- (quarantine.lua 'b'); foreign entries of returned or expired entries, which pass through
-- Lua anyway, are moved aside here and reported in the reply.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] max entries (0: nothing happens; the client runs that to load the script)
-- ARGV[2] batch name prefix, unique per call (the client's random id and a counter)
-- ARGV[3] visibility ms
-- ARGV[4] K: how many page segments are moved in Redis (the client sends K + 2 LRANGEs)
-- A take that comes back short takes the notice lease (see lib.lua).
-- Returns {'ok', n0, n1, .., n(K+1), foreign} (entries per segment; foreign: the entries moved
--         aside, as a flat array of length and first bytes, see previews() in lib.lua)
--         then ms until the earliest delayed message is due ('-1': none; see promote()),
--         then ms until the earliest pending batch's deadline ('-1': none pending)
--       | {'ok'} (max 0) | {'missing'}
local q = load()
local want = tonumber(ARGV[1])
if not q then
  if want > 0 then want_notices() end
  return {'missing'}
end
if want <= 0 then return {'ok'} end
promote(q)
local now_ms, now_us = clock()
trim_age(q, now_us)
local bad = requeue_expired(now_ms, 100)

local prefix, K = ARGV[2], tonumber(ARGV[4])
local deadline = I(now_ms + tonumber(ARGV[3]))
local counts = {}
for s = 0, K + 1 do counts[s + 1] = 0 end
local got = 0

local function batch_key(s) return PFX .. 'b:' .. prefix .. '.' .. I(s) end

-- Registers segment s as a pending batch of n entries.
local function claim(s, n)
  local name = prefix .. '.' .. I(s)
  if redis.call('HSETNX', X, 'n:' .. name, n) == 0 then
    foreign('the batch name ' .. name .. ' is taken')
  end
  redis.call('ZADD', Z, deadline, name)
  adopt(PFX .. 'b:' .. name)
  counts[s + 1] = n
  got = got + n
end

-- Before anything is removed: a side key of another type fails here (see side_keys()).
local sk = side_keys()
local rs = redis.call('ZRANGE', R, 0, want - 1)
if #rs > 0 then redis.call('ZREMRANGEBYRANK', R, 0, #rs - 1) end
-- Side entries (priorities, ordering keys; see lib.lua): taken after the returned ones, merged
-- with the pages, all through Lua in segment 0. A reliable take keeps the keys' gates.
local sided = sk and #rs < want and redis.call('EXISTS', H) == 1
if sided then
  local items = side_take(q, want - #rs)
  for _, e in ipairs(items) do rs[#rs + 1] = e end
end
if #rs > 0 then
  local good, moved = {}, {}
  for j = 1, #rs do
    if entry_id(rs[j]) then good[#good + 1] = rs[j] else moved[#moved + 1] = rs[j] end
  end
  quarantine(moved)
  for _, e in ipairs(moved) do bad[#bad + 1] = e end
  if #good > 0 then
    chunked('RPUSH', batch_key(0), good)
    claim(0, #good)
  end
end

local from_pages = 0
local s = 1
local pg, last = q.head, last_page(q)
while not sided and got < want and q.n > 0 and pg <= last do
  local key = page(pg)
  local len = redis.call('LLEN', key)
  local n = math.min(want - got, len)
  if n > 0 then
    local dst = batch_key(s)
    if s <= K then
      if n == len then
        redis.call('RENAME', key, dst)
      else
        redis.call('SORT', key, 'BY', 'nosort', 'LIMIT', 0, n, 'STORE', dst)
        redis.call('LTRIM', key, n, -1)
      end
      claim(s, n)
      s = s + 1
    else
      -- Past K pages (small pages or a large take): one more segment, built through Lua.
      chunked('RPUSH', dst, redis.call('LRANGE', key, 0, n - 1))
      redis.call('LTRIM', key, n, -1)
      local before = counts[s + 1]
      counts[s + 1] = before + n
      got = got + n
    end
    from_pages = from_pages + n
  end
  if n < len then break end
  pg = pg + 1
end
if counts[K + 2] > 0 then
  -- The overflow segment was counted as it grew; register it once.
  local n = counts[K + 2]
  got = got - n
  claim(K + 1, n)
end
if not sided then took_from_pages(q, from_pages, got < want) end
-- Takeable side entries left: wake a consumer blocked in BLMPOP (see lib.lua).
if sided and redis.call('EXISTS', H) == 1 then wake(nil, 1) end
if got < want then want_notices() end
if got > 0 then
  adopt(Z)
  adopt(X)
end
local out = {'ok'}
for j = 1, K + 2 do out[j + 1] = counts[j] end
out[K + 4] = previews(bad, {})
out[K + 5] = due_reply()
-- The earliest batch deadline: an idle consumer takes again then, to give back what a dead
-- consumer held. A batch's score is its earliest unsettled deadline as of its last extension
-- (settle.lua) or take; an ack of the entry that set it does not move it, so this may be
-- early, never late.
local first = redis.call('ZRANGE', Z, 0, 0, 'WITHSCORES')
out[K + 6] = '-1'
if first[2] then out[K + 6] = I(math.max(0, tonumber(first[2]) - now_ms)) end
return out

-- lib.lua: helpers shared by every busmq queue script. Each script gets the definitions below
-- that it uses (directly or through another one), in this order (src/script/assemble.rs): keep
-- every top-level statement a `local` definition starting at column 0, with only its closing
-- `end` (and comments) also at column 0.
--
-- KEYS (the same six for every queue script; all carry the queue's hash tag, so a script
-- touches one Redis Cluster slot):
--   KEYS[1] <ns>:{q}:m  meta hash: layout version, generation, spec, counters, the queue's
--                       expiry ('exp', as set by expire_all), the mark of the last linked push
--                       ('lw', set by append_fast.lua only), user metadata
--   KEYS[2] <ns>:{q}:t  tombstone hash (outlives the queue): 'g:<generation>' for every
--                       generation closed in its life, 'closed' the newest of them, 'last' the
--                       last id given
--   KEYS[3] <ns>:{q}:r  zset of returned entries (released/expired), score = id
--   KEYS[4] <ns>:{q}:z  zset of pending batches (one per segment of a reliable take), member
--                       = batch name, score = visibility deadline (ms)
--   KEYS[5] <ns>:{q}:x  hash 'n:<batch>' -> how many entries of the batch are still pending
--   KEYS[6] <ns>:{q}:c  zset of consumer leases, member = '<kind>:<id>', score = deadline (ms)
-- Derived from KEYS[1] like the keys below (same hash tag): <ns>:{q}:f, the quarantine, a list
-- of raw values busmq did not write that takes moved aside (see "Entry encoding"), and
-- <ns>:{q}:k:<key>, producer dedupe keys with their own expiry (see push_once.lua), and
-- <ns>:{q}:d, the delayed messages (see promote() at the end), and the side entries of
-- priorities and ordering keys (<ns>:{q}:h, hi, kg, kw and the wake list wk; see "Side
-- entries" below).
-- A pending batch <b> is two more keys: <ns>:{q}:b:<b>, the list of its entries exactly as they
-- were taken (so an entry's current delivery count is its stored count + 1), and
-- <ns>:{q}:a:<b>, a bitmap with bit i set once entry i was settled (acked, released or
-- returned), and once an entry was extended <ns>:{q}:e:<b>, a hash of the extended entries'
-- deadlines by index ('d': the batch's own deadline; the batch's score in KEYS[4] is the
-- earliest deadline of its unsettled entries). Batch names are chosen by the
-- client (unique per client and call, never reused), which knows the batch and index of each
-- delivery, so a settlement is one bit per entry and takes never pass values through Lua.
-- Ready entries live in page lists <ns>:{q}:p:<k> derived from KEYS[1]: the entry with push
-- ordinal o goes to page floor(o / size). Pops and restores touch only the head page, so every
-- page after the head holds exactly `size` entries (the last one up to `size`), which makes
-- "position -> page" arithmetic and keeps every list operation bounded by the page size.
-- The ready count is derived from that (see load()), not trusted from the meta hash, because
-- at-most-once takes also pop the head page outside scripts: LMPOP on <ns>:{q}:loan (the head
-- page renamed for the length of one MULTI, see lend.lua) and BLMPOP by idle consumers.
-- Large pushes append to the tail page outside scripts too: RPUSHX on <ns>:{q}:in (the tail
-- page renamed for the length of one MULTI, see append.lua).
--
-- Entry encoding: '<id>:<deliveries>:<attr length>:<attrs><payload>' (attrs: empty for most
-- messages, else one JSON object with the dead-letter information and the headers, see
-- script/entry.rs). Scripts read only the numbers before the attrs and keep everything from the
-- attr length on when they rewrite an entry (a new id in push.lua, a delivery count in
-- with_delivery), so attrs and payload pass through Lua unchanged; only the client decodes the
-- attrs. Anything else is foreign data (SPEC E3): takes move it aside into
-- <ns>:{q}:f, the quarantine list, which keeps the newest QUARANTINE_KEEP raw values for
-- inspection, so that one foreign entry never blocks the entries after it. Reads (replay)
-- cannot remove anything and step over it.
--
-- Every key of a queue shares the meta hash's absolute expiry (PEXPIREAT), so they all vanish
-- at the same instant and a new incarnation never sees leftovers of an old one.

-- The layout version stored in every meta hash ('v'). A layout this script does not know was
-- written by another version of busmq: every script refuses the queue (BUSMQLAYOUT <found>)
-- before reading or writing anything else of it. '2': page lists, pending batches, the loan
-- and in keys, the quarantine list ('1' was the layout before those).
local LAYOUT = '2'

local M, T, R, Z, X, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local PFX = string.sub(M, 1, -2)
local QUARANTINE = PFX .. 'f'
local DELAYED = PFX .. 'd'
-- Side entries (SPEC P11, P12; see "Side entries" near the end).
local H, HI, KG, KW, WAKE = PFX .. 'h', PFX .. 'hi', PFX .. 'kg', PFX .. 'kw', PFX .. 'wk'
-- Defined at the end (it needs the helpers below); push_target() calls it.
local promote
-- Enough to inspect what went wrong; a tool that keeps writing garbage cannot grow it forever.
local QUARANTINE_KEEP = 1000
-- Lua's unpack() is limited to about 8000 values.
local CHUNK = 7000

-- '%d' is exact for integers below 2^53 (ids are microseconds: until year 2255) and much
-- cheaper than '%.0f'.
local function I(x) return string.format('%d', x) end
local function page(k) return PFX .. 'p:' .. I(k) end
local function foreign(detail) error({err = 'BUSMQFOREIGN ' .. detail}) end
local function unknown_layout(found) error({err = 'BUSMQLAYOUT ' .. found}) end
local function num(v)
  if v == false or v == nil or v == '' then return nil end
  return tonumber(v)
end

-- Redis 7 replicates script effects, so reading the clock inside a script is safe.
local function clock()
  local t = redis.call('TIME')
  local s, us = tonumber(t[1]), tonumber(t[2])
  return s * 1000 + math.floor(us / 1000), s * 1000000 + us
end

-- Publishes a notice. Channels of the Redis Cluster layout end in ':s' and are shard channels
-- in the queue's slot: SPUBLISH reaches only that slot's node, PUBLISH would go to every node.
local function notify(channel, message)
  if string.sub(channel, -2) == ':s' then
    redis.call('SPUBLISH', channel, message)
  else
    redis.call('PUBLISH', channel, message)
  end
end

-- The notice lease <ns>:{q}:n: pushes publish their notice only while it exists. A consumer
-- that waits for notices (reliable, replay, and at-most-once without a blocking pop) waits
-- only after a take or read that came back short, and that script sets the lease in the same
-- atomic step, so every push after it publishes; consumers blocked in BLMPOP, and queues
-- nobody waits on, cost no PUBLISH and no pub/sub traffic. Idle consumers take again at
-- least every 5 s (busmq-core's MAX_IDLE and reliable heartbeats), which renews it; the
-- lease outlives that many times over. Closes, releases, returns and restores still always
-- publish: they are rare, and restore.lua is not conditional.
local NOTICE_LEASE_MS = 30000
local function want_notices() redis.call('SET', PFX .. 'n', '1', 'PX', NOTICE_LEASE_MS) end
local function notify_waiters(channel)
  if redis.call('EXISTS', PFX .. 'n') == 1 then notify(channel, 'a') end
end

-- Calls redis.call(cmd, key, <head...>, <items...>) in chunks that unpack() can handle.
local function chunked(cmd, key, items, head)
  local i, n = 1, #items
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    if head then
      redis.call(cmd, key, head, unpack(items, i, j))
    else
      redis.call(cmd, key, unpack(items, i, j))
    end
    i = j + 1
  end
end

-- The last page that may hold entries (the head page when the queue is empty).
local function last_page(q)
  if q.tail == 0 then return q.head end
  local lp = math.floor((q.tail - 1) / q.size)
  if lp < q.head then return q.head end
  return lp
end

local FIELDS = {'v', 'gen', 'ttl', 'max', 'rlen', 'rage', 'size', 'last', 'base', 'n', 'head', 'tail'}

-- The queue's meta data, or nil when the queue does not exist.
local function load()
  local v = redis.call('HMGET', M, unpack(FIELDS))
  if not v[1] then
    if redis.call('EXISTS', M) == 1 then foreign('its meta hash has no busmq layout version') end
    return nil
  end
  if v[1] ~= LAYOUT then unknown_layout(v[1]) end
  local q = {gen = num(v[2]), ttl = num(v[3]), max = num(v[4]), rlen = num(v[5]),
             rage = num(v[6]), size = num(v[7]), last = num(v[8]), base = num(v[9]),
             n = num(v[10]), head = num(v[11]), tail = num(v[12])}
  if not (q.gen and q.ttl and q.size and q.last and q.base and q.n and q.head and q.tail)
      or q.size < 1 then
    foreign('its meta hash is incomplete')
  end
  -- The stored count is not trusted: idle at-most-once consumers pop the head page directly
  -- (BLMPOP, see take.lua), which no script sees. Every page after the head holds exactly the
  -- entries of its ordinals, so the count is the head page's length plus the ordinals after
  -- it; a head page emptied that way is skipped (the page after it is full).
  local hl = redis.call('LLEN', page(q.head))
  local stored = q.head
  local walked = 0
  while hl == 0 and q.head < last_page(q) do
    -- busmq leaves a page or two to skip; counts far past the pages a queue holds are not
    -- busmq's (a tail of 10^15 made this walk hold the server), so refuse them before writing.
    walked = walked + 1
    if walked > 100000 then foreign('its meta hash counts pages that do not exist') end
    q.head = q.head + 1
    hl = redis.call('LLEN', page(q.head))
  end
  -- Remembered, so that the next call does not walk the same drained pages again.
  if q.head ~= stored then redis.call('HSET', M, 'head', I(q.head)) end
  q.n = hl + math.max(0, q.tail - (q.head + 1) * q.size)
  return q
end

local function save(q)
  redis.call('HSET', M, 'n', I(q.n), 'head', I(q.head), 'tail', I(q.tail), 'last', I(q.last))
end

local function opt(x) if x then return I(x) end return '' end
local function spec_reply(q) return {I(q.gen), I(q.ttl), opt(q.max), opt(q.rlen), opt(q.rage)} end


local EXPIRE_AT
local function expire_at()
  if EXPIRE_AT == nil then EXPIRE_AT = redis.call('PEXPIRETIME', M) end
  return EXPIRE_AT
end

-- Gives a key written by this script the queue's expiry.
local function adopt(key)
  local at = expire_at()
  if at > 0 then redis.call('PEXPIREAT', key, at) end
end

-- Appends values busmq did not write (already out of the queue) to the quarantine list.
local function quarantine(values)
  if #values == 0 then return end
  chunked('RPUSH', QUARANTINE, values)
  redis.call('LTRIM', QUARANTINE, -QUARANTINE_KEEP, -1)
  adopt(QUARANTINE)
end

-- What a client reports about foreign values: per value its length and first 32 bytes (a
-- value may be large, and the client shows no more), appended to out as a flat list.
local function previews(values, out)
  for _, e in ipairs(values) do
    out[#out + 1] = #e
    out[#out + 1] = string.sub(e, 1, 32)
  end
  return out
end

-- The id of a busmq entry, or nil for a foreign one.
local function entry_id(e)
  local id = string.match(e, '^(%d+):%d+:%d+:')
  return id and tonumber(id)
end

-- Pushes the expiry of every key of the queue to now + ttl. The meta hash keeps it too ('exp'):
-- push_fast.lua reads it with the rest of the meta hash instead of asking PEXPIRETIME for each
-- page list it creates.
local function expire_all(q, now_ms)
  local at = now_ms + q.ttl
  EXPIRE_AT = at
  redis.call('HSET', M, 'exp', I(at))
  for _, key in ipairs({M, R, Z, X, C, QUARANTINE, DELAYED, H, HI, KG, KW, WAKE}) do
    redis.call('PEXPIREAT', key, at)
  end
  for k = q.head, last_page(q) do redis.call('PEXPIREAT', page(k), at) end
  for _, b in ipairs(redis.call('ZRANGE', Z, 0, -1)) do
    redis.call('PEXPIREAT', PFX .. 'b:' .. b, at)
    redis.call('PEXPIREAT', PFX .. 'a:' .. b, at)
    redis.call('PEXPIREAT', PFX .. 'e:' .. b, at)
  end
end

-- Every key of every pending batch (see the layout above), to unlink with the queue.
local function batch_keys(keys)
  for _, b in ipairs(redis.call('ZRANGE', Z, 0, -1)) do
    keys[#keys + 1] = PFX .. 'b:' .. b
    keys[#keys + 1] = PFX .. 'a:' .. b
    keys[#keys + 1] = PFX .. 'e:' .. b
  end
  return keys
end

-- Extends the tombstone's life to at least at_ms (never shortens it).
local function keep_tomb(at_ms)
  if redis.call('PEXPIRETIME', T) < at_ms then redis.call('PEXPIREAT', T, at_ms) end
end

-- Whether generation `gen` (its decimal text) was closed: its operations fail with 'closed'.
local function closed_generation(gen)
  return redis.call('HEXISTS', T, 'g:' .. gen) == 1
end

-- A new incarnation from the spec in ARGV[o .. o+4] (ttl, max, rlen, rage, size). Its
-- generation and first id are above anything a closed or expired predecessor left behind.
local function create(now_ms, now_us, o)
  local tomb = redis.call('HMGET', T, 'closed', 'last')
  local gen = now_us
  local closed = num(tomb[1])
  if closed and closed >= gen then gen = closed + 1 end
  local base = num(tomb[2]) or 0
  local q = {gen = gen, ttl = tonumber(ARGV[o]), max = num(ARGV[o + 1]), rlen = num(ARGV[o + 2]),
             rage = num(ARGV[o + 3]), size = tonumber(ARGV[o + 4]), last = 0, base = base,
             n = 0, head = 0, tail = 0}
  redis.call('HSET', M, 'v', LAYOUT, 'gen', I(gen), 'ttl', ARGV[o], 'max', ARGV[o + 1],
             'rlen', ARGV[o + 2], 'rage', ARGV[o + 3], 'size', ARGV[o + 4], 'last', '0',
             'base', I(base), 'n', '0', 'head', '0', 'tail', '0')
  -- Keys written by hand (not by busmq) could outlive an incarnation; start clean.
  redis.call('DEL', R, Z, X, C, QUARANTINE, DELAYED, H, HI, KG, KW, WAKE, page(0))
  expire_all(q, now_ms)
  return q
end

-- Puts list[from .. #list] at the head of the queue in that order (LPUSH inserts one value at a
-- time, so they go last to first), checking each value with `each` when given.
local function push_head(q, list, from, each)
  if q.n == 0 then q.head = math.floor(q.tail / q.size) end
  local key = page(q.head)
  local i = #list
  while i >= from do
    local stop = math.max(from, i - CHUNK + 1)
    local batch = {}
    for j = i, stop, -1 do
      if each then each(list[j]) end
      batch[#batch + 1] = list[j]
    end
    redis.call('LPUSH', key, unpack(batch))
    i = stop - 1
  end
  adopt(key)
end

-- Set by a prologue that may answer a push without writing it (push_once.lua): called by
-- push_target with the loaded queue (never a new one), after the tombstone and layout checks
-- and before maxsize; a reply it returns is the push's reply. nil for plain pushes.
local BEFORE_PUSH = nil

-- The queue a push of `count` entries goes to, created from the spec at ARGV[spec_at ..] when
-- it is missing and may be created here; or the reply that refuses the push (the caller's
-- generation `gen` was closed, the queue is missing, or it would go past maxsize), and the
-- clock in microseconds.
local function push_target(gen, may_create, spec_at, count)
  -- The tombstone is read only when the caller's generation is not the live one: closing a
  -- generation deletes its meta hash, and no later one reuses its number (see create).
  local q = load()
  if not (q and I(q.gen) == gen) and closed_generation(gen) then return nil, {'closed'} end
  local now_ms, now_us = clock()
  if not q then
    if may_create ~= '1' then return nil, {'missing'} end
    -- A batch the new queue could not hold creates nothing.
    local max = num(ARGV[spec_at + 1])
    if max and count > max then return nil, {'full', I(max)} end
    q = create(now_ms, now_us, spec_at)
  elseif BEFORE_PUSH then
    local answered = BEFORE_PUSH(q)
    if answered then return nil, answered end
  end
  -- Messages that came due go before this push (SPEC P8: due order among due messages).
  promote(q, false)
  if q.max and q.n + redis.call('ZCARD', R) + redis.call('ZCARD', HI) + count > q.max then
    return nil, {'full', I(q.max)}
  end
  return q, nil, now_us
end

local function idof(e)
  local id = string.match(e, '^(%d+):')
  if not id then foreign('an entry does not start with a busmq header') end
  return tonumber(id)
end

local function check(e)
  if not string.find(e, '^%d+:%d+:%d+:') then
    foreign('an entry does not start with a busmq header')
  end
end

-- Page and offset of position p (0-based) among the page entries, or nil past the end.
local function locate(q, p)
  if p >= q.n then return nil end
  local hl = redis.call('LLEN', page(q.head))
  if p < hl then return q.head, p end
  p = p - hl
  local pg = q.head + 1 + math.floor(p / q.size)
  if pg > last_page(q) then return nil end
  return pg, p % q.size
end

-- Position (0-based) of page pg, offset off.
local function position(q, pg, off)
  if pg == q.head then return off end
  return redis.call('LLEN', page(q.head)) + (pg - q.head - 1) * q.size + off
end

-- The id and offset of the first busmq entry at or after offset i of a page list, or nil:
-- foreign entries have no id, so the searches below step over them (bounded by the page size).
local function id_from(key, i)
  local e = redis.call('LINDEX', key, i)
  if not e then return nil end
  local id = entry_id(e)
  if id then return id, i end
  i = i + 1
  while true do
    local items = redis.call('LRANGE', key, i, i + 15)
    if #items == 0 then return nil end
    for j = 1, #items do
      id = entry_id(items[j])
      if id then return id, i + j - 1 end
    end
    i = i + #items
  end
end

-- The offset in page list `key` (len entries) after the last busmq entry with an id below x,
-- knowing that the entry at offset lo is one: plain bisection, stepping over foreign entries.
local function bisect(key, len, x, lo)
  local a, b = lo + 1, len
  while a < b do
    local mid = math.floor((a + b) / 2)
    local id, at = id_from(key, mid)
    if id and at < b and id < x then a = at + 1 else b = mid end
  end
  return a
end

-- Page and offset of the first entry whose id is >= x, or nil: a binary search over the first
-- ids of the pages, then inside one page, so O(log n) LINDEX calls on bounded lists. Foreign
-- entries between busmq entries may be included at the start (a read steps over them, a trim
-- keeps them); a page without any busmq entry counts as one whose ids are >= x, so that the
-- answer errs towards older entries (a read skips those, a trim keeps them), never past one.
local function first_at_least(q, x)
  if q.n == 0 then return nil end
  local function first_id(pg) return id_from(page(pg), 0) end
  local last = last_page(q)
  local h = first_id(q.head)
  if not h or h >= x then return q.head, 0 end
  local lo, hi = q.head, last
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    local f = first_id(mid)
    if f and f < x then lo = mid else hi = mid - 1 end
  end
  local key = page(lo)
  local len = redis.call('LLEN', key)
  -- Inside the page ids strictly grow, by exactly one inside a push batch. So a known id
  -- below x bounds the answer from above (at most x - id places further) and a known id at or
  -- above x bounds it from below; a bound is exact when one batch spans the gap, so each
  -- tightened bound is checked with one probe. Bisection otherwise keeps the worst case
  -- logarithmic.
  local a_id, ap = id_from(key, 0)
  local start = ap
  local a, b = ap + 1, len       -- the answer is in [a, b]; b = len means "not in this page"
  local bp, b_id = nil, nil      -- a known position at or above the answer and its id
  local clean = true
  while a < b do
    local mid = math.floor((a + b) / 2)
    local hi = ap + (x - a_id)
    if hi < b then
      b = hi
      mid = b - 1
    end
    if bp then
      local low = bp - (b_id - x)
      if low > a then
        a = low
        mid = a
      end
    end
    if a >= b then break end
    local m_id = entry_id(redis.call('LINDEX', key, mid))
    if not m_id then
      clean = false
      break
    end
    if m_id < x then
      a, ap, a_id = mid + 1, mid, m_id
    else
      b, bp, b_id = mid, mid, m_id
    end
  end
  -- The bounds count one place per id, which a foreign entry in between breaks (it has a
  -- place and no id): unless the entries on both sides of the answer confirm it, search again
  -- without them.
  if clean and ap ~= a - 1 then
    local e = redis.call('LINDEX', key, a - 1)
    local id = e and entry_id(e)
    clean = id ~= nil and id < x
  end
  if clean and a < len and bp ~= a then
    local id = id_from(key, a)
    clean = id == nil or id >= x
  end
  if not clean then a = bisect(key, len, x, start) end
  if a < len then return lo, a end
  if lo < last then return lo + 1, 0 end
  return nil
end

-- Keeps `head` on a non-empty page and resets it when the queue is empty.
local function normalize(q)
  if q.n <= 0 then
    q.n = 0
    q.head = math.floor(q.tail / q.size)
    return
  end
  local last = last_page(q)
  while q.head < last and redis.call('LLEN', page(q.head)) == 0 do q.head = q.head + 1 end
end

-- Records that a take removed `taken` entries from the pages (and whether it wanted more than
-- the queue held); retention by age may have moved the head even when nothing was taken.
local function took_from_pages(q, taken, drained)
  if taken == 0 and not q.rage then return end
  q.n = q.n - taken
  if drained then q.n = 0 end
  normalize(q)
  redis.call('HSET', M, 'n', I(q.n), 'head', I(q.head))
end

local function unlink(keys)
  local i, n = 1, #keys
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    redis.call('UNLINK', unpack(keys, i, j))
    i = j + 1
  end
end

local function drop_all_pages(q)
  local keys = {}
  for k = q.head, last_page(q) do keys[#keys + 1] = page(k) end
  unlink(keys)
  q.n = 0
  normalize(q)
end

-- Removes every page entry before page pg, offset off.
local function drop_before(q, pg, off)
  local removed = 0
  for k = q.head, pg - 1 do
    local key = page(k)
    removed = removed + redis.call('LLEN', key)
    redis.call('UNLINK', key)
  end
  if off > 0 then
    redis.call('LTRIM', page(pg), off, -1)
    removed = removed + off
  end
  q.head = pg
  q.n = q.n - removed
  normalize(q)
end

-- Retention by count: drops the oldest entries (returned ones first) beyond rlen.
local function trim_len(q)
  if not q.rlen then return end
  local rc = redis.call('ZCARD', R)
  local extra = q.n + rc - q.rlen
  if extra <= 0 then return end
  if rc > 0 then
    local k = math.min(rc, extra)
    redis.call('ZREMRANGEBYRANK', R, 0, k - 1)
    extra = extra - k
  end
  if extra > 0 then
    local pg, off = locate(q, extra)
    if pg then drop_before(q, pg, off) else drop_all_pages(q) end
  end
end

-- Retention by age: ids are push times in microseconds, so entries with an id below the cutoff
-- are older than rage.
local function trim_age(q, now_us)
  if not q.rage then return end
  local cutoff = now_us - q.rage * 1000
  redis.call('ZREMRANGEBYSCORE', R, '-inf', '(' .. I(cutoff))
  if q.n == 0 then return end
  local pg, off = first_at_least(q, cutoff)
  if not pg then
    drop_all_pages(q)
  elseif pg ~= q.head or off > 0 then
    drop_before(q, pg, off)
  end
end

-- The entry with its delivery count set to d.
local function with_delivery(e, d)
  local id, rest = string.match(e, '^(%d+):%d+:()')
  if not id then foreign('an entry does not start with a busmq header') end
  return id .. ':' .. I(d) .. ':' .. string.sub(e, rest)
end

-- Whether bit i (0-based, most significant bit first, as SETBIT numbers them) of s is set.
local function bit_set(s, i)
  if not s then return false end
  local byte = string.byte(s, math.floor(i / 8) + 1)
  if not byte then return false end
  return bit.band(byte, bit.rshift(128, i % 8)) ~= 0
end

-- The deadlines of batch b's extended entries (index -> ms) and the take's own deadline, which
-- the entries not extended keep (nil when nothing in b was extended: then it is b's score).
local function extensions(b)
  local until_ms, base = {}, nil
  local ex = redis.call('HGETALL', PFX .. 'e:' .. b)
  for j = 1, #ex, 2 do
    if ex[j] == 'd' then base = tonumber(ex[j + 1]) else until_ms[ex[j]] = tonumber(ex[j + 1]) end
  end
  return until_ms, base
end

-- Moves the unsettled entries of batches whose deadline passed to the returned zset, each with
-- its delivery count (stored + 1) written into the header, and deletes the batches; extended
-- entries whose own deadline has not passed stay, and their batch waits for the earliest of
-- them (at most `limit` batches per call; the rest follow on the next call). Foreign entries
-- (a client claimed them and died before moving them aside, or they were written into the
-- batch) go to the quarantine instead: raising an error here would fail every take after it.
-- Returns them, for the caller to report.
local function requeue_expired(now_ms, limit)
  local moved = {}
  local batches = redis.call('ZRANGEBYSCORE', Z, '-inf', now_ms, 'LIMIT', 0, limit)
  for _, b in ipairs(batches) do
    local list, acks, ext = PFX .. 'b:' .. b, PFX .. 'a:' .. b, PFX .. 'e:' .. b
    local items = redis.call('LRANGE', list, 0, -1)
    local settled = redis.call('GET', acks)
    local until_ms, base = extensions(b)
    local back, gone, next_ms = {}, {}, nil
    for j = 1, #items do
      if not bit_set(settled, j - 1) then
        local at = until_ms[I(j - 1)] or base or 0
        if at <= now_ms then
          local e = items[j]
          local id, d = string.match(e, '^(%d+):(%d+):%d+:')
          if id then
            back[#back + 1] = id
            back[#back + 1] = with_delivery(e, tonumber(d) + 1)
          else
            moved[#moved + 1] = e
          end
          gone[#gone + 1] = j - 1
        elseif not next_ms or at < next_ms then
          next_ms = at
        end
      end
    end
    if #back > 0 then
      chunked('ZADD', R, back)
      adopt(R)
    end
    if next_ms then
      -- Extended entries remain: mark the others settled and wait for the next deadline.
      if #gone > 0 then
        for _, j in ipairs(gone) do redis.call('SETBIT', acks, j, 1) end
        adopt(acks)
        redis.call('HINCRBY', X, 'n:' .. b, -#gone)
      end
      redis.call('ZADD', Z, I(next_ms), b)
    else
      redis.call('UNLINK', list, acks, ext)
      redis.call('HDEL', X, 'n:' .. b)
      redis.call('ZREM', Z, b)
    end
  end
  quarantine(moved)
  return moved
end

-- Set by a prologue that needs the push's outcome (push_once.lua); called by push.lua with the
-- queue and the first id after a successful push. nil for plain pushes.
local AFTER_PUSH = nil

-- Side entries: priorities (SPEC P12) and ordering keys (SPEC P11). Entries pushed with a
-- level above 0 or with an ordering key do not go to the pages: their attrs carry 'p' (the
-- level) and 'k' (the key), and they live in
--   H   <ns>:{q}:h   zset of the TAKEABLE side entries: score 9 - level, member the 16-digit
--                    id followed by the entry (equal scores sort by id, lexically)
--   HI  <ns>:{q}:hi  zset of every READY side entry (takeable or waiting behind its key):
--                    score id, member the entry; for reads, counts and maxsize
--   KG  <ns>:{q}:kg  hash key -> id of the key's entry that is out (takeable, or taken in
--                    reliable mode and not acked): the key's gate
--   KW  <ns>:{q}:kw  zset of the entries waiting behind their key's gate, all scores 0,
--                    member key .. NUL .. 16-digit id .. level digit .. entry, so that a
--                    ZRANGEBYLEX finds a key's oldest waiting entry in O(log n)
--   WAKE <ns>:{q}:wk a list of a few tokens: consumers blocked in BLMPOP block on it too, so
--                    that an entry becoming takeable in H wakes them (their pop of the page
--                    would not see it)
-- Takes hand out the returned zset first, then H's levels 9..1, then level 0: H's score-9
-- members merged by id with the pages. A queue that never had side entries has none of these
-- keys, and its takes, pushes and reads cost one EXISTS or ZCARD more than before.
local function id16(id) return string.format('%016d', id) end

-- The level and ordering key (or nil) an entry was pushed with, from its attrs.
local function side_of(e)
  local alen, at = string.match(e, '^%d+:%d+:(%d+):()')
  alen = tonumber(alen)
  if not alen or alen == 0 then return 0, nil end
  local ok, a = pcall(cjson.decode, string.sub(e, at, at + alen - 1))
  if not ok or type(a) ~= 'table' then return 0, nil end
  local k = a.k
  if type(k) ~= 'string' then k = nil end
  return tonumber(a.p) or 0, k
end

-- Whether the queue has any side key. A side key of another Redis type fails here (WRONGTYPE:
-- ForeignData for this queue), before the calling script wrote anything, so nothing is lost.
local function side_keys()
  if redis.call('EXISTS', H, HI, KG, KW, WAKE) == 0 then return false end
  redis.call('ZCARD', H)
  redis.call('ZCARD', HI)
  redis.call('HEXISTS', KG, '')
  redis.call('ZCARD', KW)
  redis.call('LLEN', WAKE)
  return true
end

-- Gives the side keys the queue's expiry after a script wrote them.
local function adopt_side()
  for _, key in ipairs({H, HI, KG, KW}) do adopt(key) end
end

-- Wakes idle consumers after n entries became takeable in H: consumers waiting for notices
-- through the channel (always told, like releases), and up to a few blocked in BLMPOP
-- through the wake list.
local function wake(channel, n)
  if n <= 0 then return end
  if channel then notify(channel, 'a') end
  local t = {}
  for j = 1, math.min(n, 4) do t[j] = '1' end
  redis.call('RPUSH', WAKE, unpack(t))
  redis.call('LTRIM', WAKE, -4, -1)
  adopt(WAKE)
end

-- Adds a side entry e (id `id`, level L, key K or nil): takeable in H unless K's gate is held
-- by an earlier entry, then waiting in KW. Returns 1 when it became takeable, else 0.
local function side_add(id, e, L, K)
  local s = id16(id)
  redis.call('ZADD', HI, I(id), e)
  if K and redis.call('HSETNX', KG, K, I(id)) == 0 then
    redis.call('ZADD', KW, 0, K .. '\0' .. s .. I(L) .. e)
    return 0
  end
  redis.call('ZADD', H, 9 - L, s .. e)
  return 1
end

-- Passes key K's gate on from the entry with id `id` (acked, or taken at most once): K's
-- oldest waiting entry becomes takeable at its id's place in its level and holds the gate.
-- Returns 1 when an entry became takeable (then also its H score and member), else 0.
local function pass_gate(K, id)
  if redis.call('HGET', KG, K) ~= I(id) then return 0 end
  local w = redis.call('ZRANGEBYLEX', KW, '[' .. K .. '\0', '(' .. K .. '\1', 'LIMIT', 0, 1)[1]
  if not w then
    redis.call('HDEL', KG, K)
    return 0
  end
  local s = string.sub(w, #K + 2, #K + 17)
  local L = tonumber(string.sub(w, #K + 18, #K + 18))
  if not (L and string.find(s, '^%d+$')) then
    foreign('its waiting entries hold a member busmq did not write')
  end
  local member = s .. string.sub(w, #K + 19)
  redis.call('ZREM', KW, w)
  redis.call('HSET', KG, K, I(tonumber(s)))
  redis.call('ZADD', H, 9 - L, member)
  adopt(H)
  return 1, 9 - L, member
end

-- Passes the gates the given entries hold (they were taken at most once, or acked); returns
-- how many entries became takeable.
local function pass_gates(entries)
  if #entries == 0 or redis.call('EXISTS', KG) == 0 then return 0 end
  local n = 0
  for _, e in ipairs(entries) do
    local id = entry_id(e)
    if id then
      local _, K = side_of(e)
      if K then n = n + pass_gate(K, id) end
    end
  end
  return n
end

-- Removes H members (as returned by ZRANGE) from H and HI; returns their entries.
local function side_remove(members)
  if #members == 0 then return {} end
  local entries = {}
  for j, m in ipairs(members) do entries[j] = string.sub(m, 17) end
  chunked('ZREM', H, members)
  chunked('ZREM', HI, entries)
  return entries
end

-- Whether H member a (score sa) is taken before member b (score sb): by score (9 - level),
-- then by member, whose 16-digit id prefix sorts as the id.
local function takes_before(sa, a, sb, b)
  if sa ~= sb then return sa < sb end
  return a < b
end

-- Takes up to n takeable entries after the returned ones (the caller checks EXISTS H first):
-- H's levels 9..1, then level 0, H's score-9 members merged by id with the head of the pages
-- (a foreign page entry has no id: it goes in its place). Removes them (pages trimmed, the
-- meta counts updated) and returns them in take order, the side entries among them, and how
-- many entries became takeable through gates passed.
-- With `amo` (an at-most-once take) each keyed entry's gate passes as it is taken, so its
-- key's next entry may follow in the same take; the run stops early, before the first
-- candidate that entry would precede (the caller calls again), so the order is the one a take
-- of one entry at a time gives, while a run of many keys' heads is taken in one pass.
local function side_take(q, n, amo)
  local out, side, passed = {}, {}, 0
  -- Without gates (levels only) nothing passes: no entry's attrs need decoding.
  if amo and redis.call('EXISTS', KG) == 0 then amo = false end
  -- The earliest entry made takeable by a gate this run: nothing after it is taken.
  local ls, lm = nil, nil
  local stop = false
  local function taken_side(e)
    side[#side + 1] = e
    if not amo then return end
    local id = entry_id(e)
    if not id then return end
    local _, K = side_of(e)
    if not K then return end
    local made, sc, m = pass_gate(K, id)
    if made == 1 then
      passed = passed + 1
      if not ls or takes_before(sc, m, ls, lm) then ls, lm = sc, m end
    end
  end
  -- Scores are needed only to compare with an entry a gate passes to.
  local high, step = nil, 1
  if amo then
    high, step = redis.call('ZRANGEBYSCORE', H, '-inf', '(9', 'WITHSCORES', 'LIMIT', 0, n), 2
  else
    high = redis.call('ZRANGEBYSCORE', H, '-inf', '(9', 'LIMIT', 0, n)
  end
  local members = {}
  for j = 1, #high, step do
    local m, sc = high[j], tonumber(high[j + 1])
    if ls and takes_before(ls, lm, sc, m) then
      stop = true
      break
    end
    members[#members + 1] = m
    out[#out + 1] = string.sub(m, 17)
    taken_side(out[#out])
  end
  side_remove(members)
  -- An entry of a level above 0 made takeable goes before every level-0 one.
  if stop or (ls and ls < 9) then return out, side, passed end
  local left = n - #out
  if left <= 0 then return out, side, passed end
  local zero = redis.call('ZRANGEBYSCORE', H, 9, 9, 'LIMIT', 0, left)
  local items = {}
  local pg, last, want = q.head, last_page(q), left
  while want > 0 and q.n > 0 and pg <= last do
    for _, e in ipairs(redis.call('LRANGE', page(pg), 0, want - 1)) do
      items[#items + 1] = {pg, e}
    end
    want = left - #items
    pg = pg + 1
  end
  local i, j, per_page, from_pages = 1, 1, {}, 0
  members = {}
  while left > 0 and (i <= #items or j <= #zero) do
    local a, b = items[i], zero[j]
    local take_page = b == nil
    if a and b then
      local id = entry_id(a[2])
      -- A member busmq did not write (no id) goes first: the take moves it aside.
      take_page = id == nil or id < (tonumber(string.sub(b, 1, 16)) or id)
    end
    if ls then
      -- Stop before the first candidate the gate-passed entry precedes: every one when it
      -- has a level above 0, else by id.
      if ls < 9 then break end
      local cand = take_page and entry_id(a[2]) or nil
      if take_page and cand and lm < id16(cand) then break end
      if not take_page and lm < b then break end
    end
    if take_page then
      out[#out + 1] = a[2]
      per_page[a[1]] = (per_page[a[1]] or 0) + 1
      from_pages = from_pages + 1
      i = i + 1
    else
      out[#out + 1] = string.sub(b, 17)
      members[#members + 1] = b
      j = j + 1
      taken_side(out[#out])
    end
    left = left - 1
  end
  side_remove(members)
  for p, c in pairs(per_page) do redis.call('LTRIM', page(p), c, -1) end
  took_from_pages(q, from_pages, i > #items and want > 0)
  return out, side, passed
end

-- Delayed messages (SPEC P8) wait in DELAYED, a zset scored by due time (ms, this server's
-- clock), member '<seq>:<entry>' with the sequence number zero-padded (equal due times promote
-- in schedule order) and the entry's id a placeholder: a message gets its id when it comes
-- due, so that ids stay in page order (replay's binary search, retention by age and restores
-- rely on it). promote() runs at the start of takes, reads and stats: it appends up to
-- PROMOTE_MAX due entries with fresh ids as push.lua would, in O(log n + k) (the rest follow on
-- the next call), and unless `report` is false leaves in DUE_IN how many ms until the
-- earliest waiting one is due. Pushes promote too, so that a message pushed after others came
-- due is delivered after them.
local PROMOTE_MAX = 1000
local DUE_IN = nil
local function seq_prefix(seq) return string.format('%016d', seq) .. ':' end
promote = function(q, report)
  local now_ms, now_us = clock()
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now_ms, 'LIMIT', 0, PROMOTE_MAX)
  if #due > 0 then
    -- Every member is checked before anything is removed: one busmq did not write is
    -- ForeignData for this queue, and no due message is lost to a half-done promotion.
    local tails, sides, checked = {}, {}, false
    for k, e in ipairs(due) do
      local a = string.find(e, ':', 1, true)
      local c = a and string.find(e, ':', a + 1, true)
      if not c then foreign('its delayed messages hold an entry busmq did not write') end
      tails[k] = string.sub(e, c)
      -- The placeholder id 's' marks a message scheduled with a level or an ordering key.
      sides[k] = string.sub(e, a + 1, c - 1) == 's'
      if sides[k] and not checked then
        checked = true
        side_keys()
      end
    end
    redis.call('ZREMRANGEBYRANK', DELAYED, 0, #due - 1)
    local id = math.max(q.last, q.base) + 1
    if now_us > id then id = now_us end
    -- Routed like pushes made now: side entries (see above) among the side keys, the others
    -- appended to the pages.
    local plain, takeable = {}, 0
    for k = 1, #due do
      local e = I(id) .. tails[k]
      if sides[k] then
        local L, K = side_of(e)
        takeable = takeable + side_add(id, e, math.min(math.max(L, 0), 9), K)
      else
        plain[#plain + 1] = e
      end
      id = id + 1
    end
    if #plain < #due then
      adopt_side()
      wake(nil, takeable)
    end
    local S = q.size
    if q.n == 0 then q.head = math.floor(q.tail / S) end
    local o, i = q.tail, 1
    while i <= #plain do
      local pg = math.floor(o / S)
      local n = math.min((pg + 1) * S - o, #plain - i + 1, CHUNK)
      if redis.call('RPUSH', page(pg), unpack(plain, i, i + n - 1)) == n then adopt(page(pg)) end
      i = i + n
      o = o + n
    end
    q.tail = o
    q.n = q.n + #plain
    q.last = id - 1
    trim_len(q)
    save(q)
    if q.last > now_us then
      redis.call('HSET', T, 'last', I(q.last))
      keep_tomb(math.floor(q.last / 1000) + 1)
    end
  end
  if report == false then return end
  local first = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
  if first[2] then DUE_IN = math.max(0, tonumber(first[2]) - now_ms) end
end
local function due_reply() if DUE_IN then return I(DUE_IN) end return '-1' end

-- ---- end of lib.lua ----

-- settle.lua: settles reliable deliveries atomically (ack, release, return, extend). Each
-- settlement names the batch and the index in it that the client got from claim.lua; it is
-- done when the batch is still pending and its bit in the batch's bitmap was not set yet (set
-- by an earlier settlement, or the batch expired and was redelivered: stale, nothing changes).
-- Acks are one bit each (BITFIELD, one call per batch). Released/returned entries go to the
-- returned zset (taken first, in id order); an extended entry stays in its batch with a
-- deadline of its own (see requeue_expired). A batch whose entries have all been settled is
-- deleted at once. A released or returned entry that busmq did not write goes to the
-- quarantine (see lib.lua) instead of the returned zset.
-- An ack of a keyed entry that holds its key's gate (see "Side entries" in lib.lua) passes the
-- gate to the key's next entry, and waiters are told; the other settlements keep it. Queues
-- without gates never read the acked entries.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the queue's notification channel
-- ARGV[2] unused (kept so that the argument layout does not move)
-- ARGV[3..] the settlements in groups of one kind and batch: kind ('a' ack, 'l' release,
--           'r' return, 'e' extend), batch name, count, then per settlement its index in the
--           batch (and for 'e' the extension ms after it). Acks are most of the traffic, so
--           an ack costs one argument and one bit.
-- Returns {'ok', o1..on}: 0 (stale) or 1 (done) per settlement, in order | {'missing'}
if not load() then return {'missing'} end
local out = {'ok'}
local alive = {}  -- batch -> whether it is pending (cached)
local acks = {}   -- batch -> {args for BITFIELD, output slots}, in `order`
local order = {}
local left = {}   -- batch -> settlements done in it
local released = false
local now_ms
local gates = side_keys() and redis.call('EXISTS', KG) == 1
local acked = {}  -- the acked entries, when gates exist
local extended = {}  -- batch -> true when an extension in this call named it (it was pending)
local gone = {}      -- batch -> true when this call's settlements finished it

local function pending(b)
  local a = alive[b]
  if a == nil then
    a = redis.call('HEXISTS', X, 'n:' .. b) == 1
    alive[b] = a
  end
  return a
end

local function done(b) left[b] = (left[b] or 0) + 1 end

-- Sets the collected ack bits (in the order given, so a second ack of an entry is stale).
local function flush_acks()
  for _, b in ipairs(order) do
    local a = acks[b]
    local bits = PFX .. 'a:' .. b
    local k = 1
    local i = 1
    while i <= #a.args do
      local j = math.min(i + 4 * 1000 - 1, #a.args)
      local old = redis.call('BITFIELD', bits, unpack(a.args, i, j))
      for m = 1, #old do
        if old[m] == 0 then
          out[a.slots[k]] = 1
          done(b)
          if gates then
            local e = redis.call('LINDEX', PFX .. 'b:' .. b, a.args[4 * k - 1])
            if e then acked[#acked + 1] = e end
          end
        end
        k = k + 1
      end
      i = j + 1
    end
  end
  acks, order = {}, {}
end

-- One settlement other than a plain ack.
local function one(kind, b, idx, ms, slot)
  if not pending(b) then return end
  flush_acks()
  local bits = PFX .. 'a:' .. b
  if kind == 'e' then
    -- The entry stays where it is (so that settlements naming it stay valid) with a deadline
    -- of its own in <ns>:{q}:e:<b>; the batch's score becomes the earliest deadline of its
    -- unsettled entries once the call's settlements are done (see `rescore`).
    if redis.call('GETBIT', bits, idx) ~= 0 then return end
    now_ms = now_ms or clock()
    local at = I(now_ms + (tonumber(ms) or 0))
    local ext = PFX .. 'e:' .. b
    if redis.call('EXISTS', ext) == 0 then
      redis.call('HSET', ext, 'd', redis.call('ZSCORE', Z, b))
      adopt(ext)
    end
    redis.call('HSET', ext, idx, at)
    extended[b] = true
    out[slot] = 1
    return
  end
  local old = redis.call('BITFIELD', bits, 'SET', 'u1', idx, '1')[1]
  local e = redis.call('LINDEX', PFX .. 'b:' .. b, idx)
  if old ~= 0 or not e then return end
  done(b)
  out[slot] = 1
  if kind == 'a' then
    if gates then acked[#acked + 1] = e end
    return
  end
  -- The stored count is the previous delivery's: a release keeps this delivery counted
  -- (+ 1), a return does not (the entry goes back as it was taken).
  local id, d = string.match(e, '^(%d+):(%d+):%d+:')
  if not id then
    -- Written into the batch by someone else: it must not go back to the queue, and failing
    -- would fail the other settlements of the call with it.
    quarantine({e})
    return
  end
  if kind == 'l' then e = with_delivery(e, tonumber(d) + 1) end
  redis.call('ZADD', R, id, e)
  adopt(R)
  released = true
end

local i, slot, nargs = 3, 1, #ARGV
while i + 2 <= nargs do
  local kind, b, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if kind == 'a' then
    -- Plain acks: collected for one BITFIELD per batch.
    local live = pending(b)
    local a = acks[b]
    if live and not a then
      a = {args = {}, slots = {}}
      acks[b] = a
      order[#order + 1] = b
    end
    for j = i, i + count - 1 do
      slot = slot + 1
      out[slot] = 0
      if live then
        local args, slots = a.args, a.slots
        local na = #args
        args[na + 1] = 'SET'
        args[na + 2] = 'u1'
        args[na + 3] = ARGV[j]
        args[na + 4] = '1'
        slots[#slots + 1] = slot
      end
    end
    i = i + count
  else
    local step = 1
    if kind == 'e' then step = 2 end
    for _ = 1, count do
      slot = slot + 1
      out[slot] = 0
      one(kind, b, ARGV[i], ARGV[i + 1], slot)
      i = i + step
    end
  end
end
flush_acks()
-- Before the settled batches go: the acked entries are read from them.
local passed = pass_gates(acked)
for b, count in pairs(left) do
  if redis.call('HINCRBY', X, 'n:' .. b, -count) <= 0 then
    redis.call('UNLINK', PFX .. 'b:' .. b, PFX .. 'a:' .. b, PFX .. 'e:' .. b)
    redis.call('HDEL', X, 'n:' .. b)
    redis.call('ZREM', Z, b)
    gone[b] = true
  else
    adopt(PFX .. 'a:' .. b)
  end
end
-- An extended batch's score is the earliest deadline of its unsettled entries, later or sooner
-- than the take's: takes report the earliest score as when an idle consumer should look again
-- (claim.lua), and a score left at the take's deadline after every entry still out was
-- extended would have every idle consumer take for nothing then.
local function rescore(b)
  local settled = redis.call('GET', PFX .. 'a:' .. b)
  local until_ms, base = extensions(b)
  local first
  for j = 0, redis.call('LLEN', PFX .. 'b:' .. b) - 1 do
    if not bit_set(settled, j) then
      local at = until_ms[I(j)] or base
      if at and (not first or at < first) then first = at end
    end
  end
  if first then redis.call('ZADD', Z, 'XX', I(first), b) end
end
for b in pairs(extended) do
  if not gone[b] then rescore(b) end
end
if released then notify(ARGV[1], 'a') end
wake(ARGV[1], passed)
return out

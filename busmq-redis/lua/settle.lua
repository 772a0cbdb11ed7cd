-- settle.lua: settles reliable deliveries atomically (ack, release, return, extend). Each
-- settlement names the batch and the index in it that the client got from claim.lua; it is
-- done when the batch is still pending and its bit in the batch's bitmap was not set yet (set
-- by an earlier settlement, or the batch expired and was redelivered: stale, nothing changes).
-- Acks are one bit each, sent as runs of consecutive indices and set 32 to a BITFIELD
-- operation, so that a batch acked in order costs a few operations and one reply element
-- instead of a Lua step and an argument per entry. Released/returned entries go to the
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
-- ARGV[3..] the settlements in groups, in order: an ack run is 'a', batch name, first index,
--           count (the entries first .. first + count - 1); the other kinds ('l' release,
--           'r' return, 'e' extend) are kind, batch name, count, then per settlement its index
--           in the batch (and for 'e' the extension ms after it).
-- Returns {'ok', o1..on} | {'missing'}, one o per ack run and per other settlement, in order:
--         for a settlement 0 (stale) or 1 (done); for an ack run 1 (all done), 0 (all stale)
--         or a string of '0' and '1', one per entry of the run.
if not load() then return {'missing'} end
local out = {'ok'}
local alive = {}  -- batch -> whether it is pending (cached)
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

-- An ack run: sets the bits of entries first .. first + n - 1 of batch b, at most 32 to an
-- operation, and tells from each operation's old value which were set already (stale).
local function ack_run(b, first, n)
  if not pending(b) then return 0 end
  local bits = PFX .. 'a:' .. b
  local widths, olds = {}, {}
  local fresh = 0
  local o, stop = first, first + n
  while o < stop do
    -- At most 256 operations (8,192 entries) to a BITFIELD call.
    local args, from = {}, #widths
    while o < stop and #widths - from < 256 do
      local w = math.min(32, stop - o)
      args[#args + 1] = 'SET'
      args[#args + 1] = 'u' .. w
      args[#args + 1] = o
      args[#args + 1] = I(2 ^ w - 1)
      widths[#widths + 1] = w
      o = o + w
    end
    local old = redis.call('BITFIELD', bits, unpack(args))
    for m = 1, #old do
      olds[from + m] = old[m]
      if old[m] == 0 then fresh = fresh + widths[from + m] end
    end
  end
  local marks
  if fresh < n then
    -- Some were set already: one mark per entry ('1' done), the operation's first entry in
    -- its old value's highest bit.
    marks = {}
    fresh = 0
    for m = 1, #widths do
      local v, p = olds[m], 2 ^ (widths[m] - 1)
      for _ = 1, widths[m] do
        if v >= p then
          v = v - p
          marks[#marks + 1] = '0'
        else
          marks[#marks + 1] = '1'
          fresh = fresh + 1
        end
        p = p / 2
      end
    end
  end
  if fresh == 0 then return 0 end
  left[b] = (left[b] or 0) + fresh
  if gates then
    local es = redis.call('LRANGE', PFX .. 'b:' .. b, first, stop - 1)
    for j = 1, n do
      if (not marks or marks[j] == '1') and es[j] then acked[#acked + 1] = es[j] end
    end
  end
  if fresh == n then return 1 end
  return table.concat(marks)
end

-- One settlement other than an ack: a release or return ('l', 'r') or an extension ('e').
local function one(kind, b, idx, ms, slot)
  if not pending(b) then return end
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
  local kind, b = ARGV[i], ARGV[i + 1]
  if kind == 'a' then
    slot = slot + 1
    out[slot] = ack_run(b, tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]))
    i = i + 4
  else
    local count, step = tonumber(ARGV[i + 2]), 1
    if kind == 'e' then step = 2 end
    i = i + 3
    for _ = 1, count do
      slot = slot + 1
      out[slot] = 0
      one(kind, b, ARGV[i], ARGV[i + 1], slot)
      i = i + step
    end
  end
end
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

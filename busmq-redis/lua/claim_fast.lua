-- claim_fast.lua: claim.lua's common case in a script of its own, without lib.lua's helpers, as
-- push_fast.lua is push.lua's: a reliable take of ready entries from the pages of a queue with
-- nothing returned, no side entries, no retention by age, no delayed message due and no pending
-- batch past its deadline, in at most K page segments. That makes about twelve redis.calls
-- where claim.lua makes about twenty (see docs/performance.md, issue 14). The client runs it in
-- claim.lua's place, in the same MULTI before the LRANGEs of the segments. Anything else it
-- answers {'slow'} before writing anything (the LRANGEs then find no batch), and the client
-- sends the MULTI again with claim.lua. Keep the two in step: busmq-redis/tests/claim_fast.rs
-- compares their effects.
-- KEYS, ARGV: as claim.lua's (K at least 1).
-- Returns: as claim.lua's, or {'slow'}.
local M, R, Z, X = KEYS[1], KEYS[3], KEYS[4], KEYS[5]
local PFX = string.sub(M, 1, -2)
local function I(x) return string.format('%d', x) end
local function page(k) return PFX .. 'p:' .. I(k) end

-- The notice lease, as lib.lua's want_notices().
local function want_notices() redis.call('SET', PFX .. 'n', '1', 'PX', 30000) end
local want = tonumber(ARGV[1]) or 0

local v = redis.call('HMGET', M, 'v', 'rage', 'gen', 'ttl', 'size', 'last', 'base', 'n', 'head',
                     'tail', 'exp')
if not v[1] then
  -- A meta hash without a layout version is claim.lua's to refuse (ForeignData).
  if redis.call('EXISTS', M) == 1 then return {'slow'} end
  if want > 0 then want_notices() end
  return {'missing'}
end
-- Another layout is claim.lua's to refuse; retention by age is its to apply.
if v[1] ~= '2' or tonumber(v[2]) then return {'slow'} end
local S, head, tail = tonumber(v[5]), tonumber(v[9]), tonumber(v[10])
-- A meta hash load() would call incomplete is claim.lua's to refuse (ForeignData).
if not (tonumber(v[3]) and tonumber(v[4]) and S and tonumber(v[6]) and tonumber(v[7])
        and tonumber(v[8]) and head and tail) or S < 1 then
  return {'slow'}
end
local K = tonumber(ARGV[4])
if not K or K < 1 then return {'slow'} end
-- The ready count as load() derives it, skipping head pages drained by pops; a longer walk is
-- claim.lua's.
local stored = head
local hl = redis.call('LLEN', page(head))
local last_page = head
if tail > 0 then last_page = math.max(head, math.floor((tail - 1) / S)) end
while hl == 0 and head < last_page do
  if head - stored == 4 then return {'slow'} end
  head = head + 1
  hl = redis.call('LLEN', page(head))
end
local n = hl + math.max(0, tail - (head + 1) * S)
-- load() remembers where its walk ended, whatever the take does next.
if want <= 0 then
  if head ~= stored then redis.call('HSET', M, 'head', I(head)) end
  return {'ok'}
end
-- The earliest delayed message: due, claim.lua promotes it first; not due, the reply says
-- when it will be (lib.lua's promote() and due_reply()).
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local first = redis.call('ZRANGE', PFX .. 'd', 0, 0, 'WITHSCORES')
local due = '-1'
if first[2] then
  local at = tonumber(first[2])
  if at <= now_ms then return {'slow'} end
  due = I(at - now_ms)
end
-- The earliest pending batch: past its deadline, claim.lua gives it back first.
local earliest = redis.call('ZRANGE', Z, 0, 0, 'WITHSCORES')
earliest = tonumber(earliest[2])
if earliest and earliest <= now_ms then return {'slow'} end
-- Returned entries and side keys (priorities, ordering keys, their wake list) are claim.lua's;
-- empty sorted sets and lists do not exist, so one EXISTS asks for all of them.
if redis.call('EXISTS', R, PFX .. 'h', PFX .. 'hi', PFX .. 'kg', PFX .. 'kw', PFX .. 'wk') > 0 then
  return {'slow'}
end
-- What the take moves: the head page's hl entries, then whole pages (every page after the
-- head holds S, the last up to S). More segments than K are claim.lua's (it moves the rest
-- through Lua).
local need = math.min(want, n)
if need > hl and 1 + math.ceil((need - hl) / S) > K then return {'slow'} end

local deadline = I(now_ms + tonumber(ARGV[3]))
-- The queue's expiry, which expire_all() (lib.lua) keeps in the meta hash beside setting it;
-- PEXPIRETIME where it is missing.
local expire_at = tonumber(v[11])
local function adopt(key)
  expire_at = expire_at or redis.call('PEXPIRETIME', M)
  if expire_at > 0 then redis.call('PEXPIREAT', key, expire_at) end
end
local counts = {0}
local got, pg, left = 0, head, 0
while got < need do
  local len = S
  if pg == head then len = hl elseif pg == last_page then len = tail - pg * S end
  local take = math.min(need - got, len)
  local name = ARGV[2] .. '.' .. I(#counts)
  local dst = PFX .. 'b:' .. name
  if take == len then
    redis.call('RENAME', page(pg), dst)
  else
    redis.call('SORT', page(pg), 'BY', 'nosort', 'LIMIT', 0, take, 'STORE', dst)
    redis.call('LTRIM', page(pg), take, -1)
    left = len - take
  end
  -- claim.lua's claim(): the batch is registered with its count and deadline.
  if redis.call('HSETNX', X, 'n:' .. name, take) == 0 then
    error({err = 'BUSMQFOREIGN the batch name ' .. name .. ' is taken'})
  end
  redis.call('ZADD', Z, deadline, name)
  adopt(dst)
  counts[#counts + 1] = take
  got = got + take
  if left > 0 then break end
  pg = pg + 1
end
-- lib.lua's took_from_pages() and normalize(): the head moves past the pages this take
-- emptied, and past drained ones after them.
n = n - got
if got < want then n = 0 end
if got == 0 then
  if head ~= stored then redis.call('HSET', M, 'head', I(head)) end
else
  if n <= 0 then
    n = 0
    head = math.floor(tail / S)
  else
    head = pg
    while left == 0 and head < last_page and redis.call('LLEN', page(head)) == 0 do
      head = head + 1
    end
  end
  redis.call('HSET', M, 'n', I(n), 'head', I(head))
end
if got < want then want_notices() end
-- A new pending set and count hash get the queue's expiry; existing ones have it.
if got > 0 and not earliest then
  adopt(Z)
  adopt(X)
end
local out = {'ok'}
for s = 0, K + 1 do out[s + 2] = counts[s + 1] or 0 end
out[K + 4] = {}
out[K + 5] = due
-- The earliest batch deadline (claim.lua reads it back; this take's batches share one).
if got > 0 and (not earliest or tonumber(deadline) < earliest) then
  earliest = tonumber(deadline)
end
out[K + 6] = '-1'
if earliest then out[K + 6] = I(math.max(0, earliest - now_ms)) end
return out

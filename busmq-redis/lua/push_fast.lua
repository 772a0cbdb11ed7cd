-- push_fast.lua: push.lua's common case in a script of its own, without lib.lua's helpers.
-- Redis runs a script's whole body on every call, and creating the 39 helper closures push.lua
-- carries cost more server time than its commands (see docs/performance.md, issue 14). This
-- script appends plain entries to the pages of the live incarnation the caller pushes to, with
-- the effects push.lua would have; anything else (a routed entry, another or a missing
-- incarnation, retention, a delayed message due, a drained head page to skip, an entry
-- without a header) answers {'slow'} before writing anything, and the client sends the same
-- arguments to push.lua. Keep the two in step: the conformance suite runs both paths.
-- KEYS, ARGV: as push.lua's (the spec and creation flag are not used here).
-- Returns {'ok', first id} | {'full', maxsize} | {'slow'}
if ARGV[10] ~= '' then return {'slow'} end
local M, T = KEYS[1], KEYS[2]
local v = redis.call('HMGET', M, 'v', 'gen', 'max', 'rlen', 'rage', 'size', 'last', 'base',
                     'head', 'tail', 'ttl', 'n', 'exp')
-- The layout, the caller's generation and no retention (lib.lua's load() and push_target()).
if v[1] ~= '2' or v[2] ~= ARGV[1] or v[4] ~= '' or v[5] ~= '' then return {'slow'} end
local S, last, base = tonumber(v[6]), tonumber(v[7]), tonumber(v[8])
local head, tail = tonumber(v[9]), tonumber(v[10])
-- A meta hash load() would call incomplete is push.lua's to refuse (ForeignData).
if not (S and last and base and head and tail and tonumber(v[11]) and tonumber(v[12]))
    or S < 1 then
  return {'slow'}
end
local PFX = string.sub(M, 1, -2)
local function I(x) return string.format('%d', x) end
-- The ready count as load() derives it; a drained head page with pages after it is load()'s
-- walk, left to push.lua.
local hl = redis.call('LLEN', PFX .. 'p:' .. I(head))
local last_page = head
if tail > 0 then last_page = math.max(head, math.floor((tail - 1) / S)) end
if hl == 0 and head < last_page then return {'slow'} end
local n = hl + math.max(0, tail - (head + 1) * S)
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- The delayed set and the notice lease, both absent in the common case: one EXISTS for the
-- two, then only what is there is looked at.
local DELAYED, LEASE = PFX .. 'd', PFX .. 'n'
local present = redis.call('EXISTS', DELAYED, LEASE)
local lease = present == 2
if present == 1 then lease = redis.call('EXISTS', LEASE) == 1 end
-- Messages that came due go before this push: push.lua promotes them (SPEC P8).
if present > (lease and 1 or 0)
    and redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now_ms, 'LIMIT', 0, 1)[1] then
  return {'slow'}
end
local count = #ARGV - 10
if v[3] ~= '' then
  local max = tonumber(v[3])
  if not max then return {'slow'} end
  if n + redis.call('ZCARD', PFX .. 'r') + redis.call('ZCARD', PFX .. 'hi') + count > max then
    return {'full', I(max)}
  end
end
local floor = math.max(last, base)
local first = tonumber(ARGV[9])
local as_is = first ~= nil and first > floor and first >= now_us - 1000000
    and first <= now_us + 1000000
local entries = ARGV
local i0 = 11
if not as_is then
  -- Ids max(last + 1, now), written into the headers (checked before anything is written).
  first = floor + 1
  if now_us > first then first = now_us end
  entries = {}
  for j = 11, #ARGV do
    local e = ARGV[j]
    local colon = string.find(e, ':', 1, true)
    if not colon then return {'slow'} end
    entries[j - 10] = I(first + j - 11) .. string.sub(e, colon)
  end
  i0 = 1
end
if n == 0 then head = math.floor(tail / S) end
local o, i, stop = tail, i0, i0 + count - 1
-- The queue's expiry, which expire_all() (lib.lua) keeps in the meta hash beside setting it;
-- a meta hash written before that field existed is asked.
local expire_at = tonumber(v[13])
while i <= stop do
  local pg = math.floor(o / S)
  local k = math.min((pg + 1) * S - o, stop - i + 1, 7000)
  local key = PFX .. 'p:' .. I(pg)
  if redis.call('RPUSH', key, unpack(entries, i, i + k - 1)) == k then
    -- A new page list gets the queue's expiry (lib.lua's adopt()).
    expire_at = expire_at or redis.call('PEXPIRETIME', M)
    if expire_at > 0 then redis.call('PEXPIREAT', key, expire_at) end
  end
  i = i + k
  o = o + k
end
local last_id = first + count - 1
redis.call('HSET', M, 'n', I(n + count), 'head', I(head), 'tail', I(o), 'last', I(last_id))
if last_id > now_us then
  -- Ids ran ahead of the clock: as push.lua, the tombstone remembers the last one.
  redis.call('HSET', T, 'last', I(last_id))
  local keep = math.floor(last_id / 1000) + 1
  if redis.call('PEXPIRETIME', T) < keep then redis.call('PEXPIREAT', T, keep) end
end
-- The notice, only while a consumer waits for one (lib.lua's notify_waiters()).
if lease then
  local channel = ARGV[8]
  if string.sub(channel, -2) == ':s' then
    redis.call('SPUBLISH', channel, 'a')
  else
    redis.call('PUBLISH', channel, 'a')
  end
end
return {'ok', I(first)}

-- lend_fast.lua: lend.lua's common case in a script of its own, without lib.lua's helpers, as
-- push_fast.lua is push.lua's: lend.lua makes about ten redis.calls and carries lib.lua's
-- closures for what takes seven here (see docs/performance.md, issue 14). The client runs it
-- in lend.lua's place, in the same MULTI before `LMPOP 1 <loan key> LEFT COUNT n` and
-- giveback.lua. It answers as lend.lua would, including {'slow'} where take.lua must take
-- (retention by age, released or takeable side entries); where lend.lua would promote a
-- delayed message that came due, walk more than four drained head pages, or refuse a meta
-- hash it cannot read, it answers {'lend'} before writing anything (the pop then finds no loan
-- key), and the client sends the same MULTI with lend.lua. Keep the two in step:
-- busmq-redis/tests/lend_fast.rs compares their effects.
-- KEYS, ARGV: as lend.lua's.
-- Returns: as lend.lua's, or {'lend'}.
local M = KEYS[1]
local PFX = string.sub(M, 1, -2)
local function I(x) return string.format('%d', x) end
local function page(k) return PFX .. 'p:' .. I(k) end

-- The notice lease, as lib.lua's want_notices().
local function want_notices() redis.call('SET', PFX .. 'n', '1', 'PX', 30000) end
local want = tonumber(ARGV[1]) or 0

local v = redis.call('HMGET', M, 'v', 'rage', 'gen', 'ttl', 'size', 'last', 'base', 'n', 'head',
                     'tail')
if not v[1] then
  -- A meta hash without a layout version is lend.lua's to refuse (ForeignData).
  if redis.call('EXISTS', M) == 1 then return {'lend'} end
  if want > 0 then want_notices() end
  return {'missing'}
end
-- Another layout is lend.lua's to refuse; retention by age is take.lua's.
if v[1] ~= '2' then return {'lend'} end
if tonumber(v[2]) then return {'slow'} end
local S, head, tail = tonumber(v[5]), tonumber(v[9]), tonumber(v[10])
-- A meta hash load() would call incomplete is lend.lua's to refuse (ForeignData).
if not (tonumber(v[3]) and tonumber(v[4]) and S and tonumber(v[6]) and tonumber(v[7])
        and tonumber(v[8]) and head and tail) or S < 1 then
  return {'lend'}
end
-- The ready count as load() derives it, skipping head pages drained by pops; a longer walk
-- is lend.lua's.
local stored = head
local hl = redis.call('LLEN', page(head))
local last_page = head
if tail > 0 then last_page = math.max(head, math.floor((tail - 1) / S)) end
while hl == 0 and head < last_page do
  if head - stored == 4 then return {'lend'} end
  head = head + 1
  hl = redis.call('LLEN', page(head))
end
local n = hl + math.max(0, tail - (head + 1) * S)
-- The earliest delayed message: due, lend.lua promotes it first; not due, the reply says when
-- it will be (lib.lua's promote() and due_reply()).
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local first = redis.call('ZRANGE', PFX .. 'd', 0, 0, 'WITHSCORES')
local due = '-1'
if first[2] then
  local at = tonumber(first[2])
  if at <= now_ms then return {'lend'} end
  due = I(at - now_ms)
end
-- Released entries (r) and takeable side entries (h) are take.lua's; empty sorted sets do not
-- exist, so one EXISTS asks for both.
if redis.call('EXISTS', PFX .. 'r', PFX .. 'h') > 0 then return {'slow'} end
if n < want then want_notices() end
if n == 0 then
  if head ~= stored then redis.call('HSET', M, 'head', I(head)) end
  return {'empty', page(math.floor(tail / S)), due}
end
local key = page(head)
redis.call('RENAME', key, PFX .. 'loan')
-- load() remembers where its walk ended.
if head ~= stored then
  redis.call('HSET', M, 'loan', key, 'head', I(head))
else
  redis.call('HSET', M, 'loan', key)
end
-- The loan is the head page, hl entries long.
local more = 0
if n > hl then more = 1 end
return {'lent', key, more, due}

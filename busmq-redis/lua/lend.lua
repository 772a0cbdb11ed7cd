-- lend.lua: first step of a fast at-most-once take, run in one MULTI with `LMPOP 1 <loan key>
-- LEFT COUNT n` and return.lua, so that the taken entries leave Redis without passing through
-- Lua: when a plain pop from the head page is exactly what take.lua would do (nothing in the
-- returned zset, no takeable side entry (priorities, ordering keys: see lib.lua), no
-- retention by age to apply first), the head page is renamed to the loan
-- key <ns>:{q}:loan (O(1)) and its name kept in the meta hash; otherwise nothing happens and
-- the pop finds no key.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] how many entries the take still wants, when the caller waits for a notice if it
--         gets fewer (0 when it blocks in BLMPOP instead): fewer ready than that takes the
--         notice lease (see lib.lua)
-- Due delayed messages are promoted first (see promote() in lib.lua).
-- Returns {'lent', page key, 1 when more entries follow in later pages else 0, ms until the earliest delayed message is due or '-1'} | {'empty', the page key the next push appends to, ms until the earliest delayed message is due or '-1'} | {'slow'}
--       | {'missing'}
local q = load()
local want = tonumber(ARGV[1]) or 0
if not q then
  if want > 0 then want_notices() end
  return {'missing'}
end
promote(q)
if q.rage or redis.call('ZCARD', R) > 0 or redis.call('EXISTS', H) == 1 then
  return {'slow'}
end
if q.n < want then want_notices() end
if q.n == 0 then return {'empty', page(math.floor(q.tail / q.size)), due_reply()} end
local key = page(q.head)
redis.call('RENAME', key, PFX .. 'loan')
redis.call('HSET', M, 'loan', key)
local more = 0
if q.n > redis.call('LLEN', PFX .. 'loan') then more = 1 end
return {'lent', key, more, due_reply()}

-- giveback.lua: last step of a fast at-most-once take (see lend.lua): renames what is left of
-- the loan key back to the head page it came from (RENAME keeps its expiry, and wakes a
-- consumer blocked on that page).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV: none
-- Returns {'ok'}
local key = redis.call('HGET', M, 'loan')
if key then
  local loan = PFX .. 'loan'
  if redis.call('EXISTS', loan) == 1 then redis.call('RENAME', loan, key) end
  redis.call('HDEL', M, 'loan')
end
return {'ok'}

-- quarantine.lua: moves entries busmq did not write, found by the client after a take, into
-- the queue's quarantine list (see lib.lua), so that they are reported once and never block
-- the entries after them. The scripts check only what is cheap in Lua; the client decodes
-- every header in full.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] 'v': ARGV[2..] are values a take already removed from the queue (the fast take's
--              LMPOP, the blocking wait's BLMPOP, take.lua): they are appended as they are
--         'b': ARGV[2..] groups of a pending batch of a reliable take (claim.lua): batch name,
--              count, then that many indexes in the batch; each entry is copied to the
--              quarantine and settled as acknowledged in the same step (see settle.lua), so
--              that it is neither redelivered nor lost
-- Returns 'v': {'ok'}
--         'b': {'ok', o1..on}: per index, 1 when it was moved aside here, 0 when it was no
--              longer pending (its batch expired and a reliable take moved it aside, and
--              reported it)
--       | {'missing'} (the queue is gone, and the values with it)
if not load() then return {'missing'} end
if ARGV[1] == 'v' then
  local values = {}
  for j = 2, #ARGV do values[#values + 1] = ARGV[j] end
  quarantine(values)
  return {'ok'}
end

local out = {'ok'}
local moved = {}
local i, nargs = 2, #ARGV
while i + 1 <= nargs do
  local b, count = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local live = redis.call('HEXISTS', X, 'n:' .. b) == 1
  local list, bits = PFX .. 'b:' .. b, PFX .. 'a:' .. b
  local settled = 0
  for j = i, i + count - 1 do
    local done = 0
    if live and redis.call('BITFIELD', bits, 'SET', 'u1', ARGV[j], '1')[1] == 0 then
      local e = redis.call('LINDEX', list, ARGV[j])
      if e then moved[#moved + 1] = e end
      settled = settled + 1
      done = 1
    end
    out[#out + 1] = done
  end
  i = i + count
  if settled > 0 then
    if redis.call('HINCRBY', X, 'n:' .. b, -settled) <= 0 then
      redis.call('UNLINK', list, bits, PFX .. 'e:' .. b)
      redis.call('HDEL', X, 'n:' .. b)
      redis.call('ZREM', Z, b)
    else
      adopt(bits)
    end
  end
end
quarantine(moved)
return out

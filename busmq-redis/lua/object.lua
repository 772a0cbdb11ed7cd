-- object.lua: one atomic operation on a persisted object (SPEC P3): a hash of fields (each
-- value as the client encoded it, JSON on busmq's side) and a string holding its version. Both
-- keys share the object's hash tag and always carry the same expiry. The six queue keys of
-- lib.lua do not apply: only its helpers are used.
-- KEYS[1] <ns>:o:{name}    hash: the fields
-- KEYS[2] <ns>:o:{name}:v  string: the version of the last save (its existence is the object's)
-- ARGV[1] 'l' (load) | 'd' (delete) | 't' (touch: ARGV[2] ttl ms) | 's' (save:
--         ARGV[2] expectation: 'a' absent, 'e' exists, or the expected version;
--         ARGV[3] ttl ms; ARGV[4] how many fields to set, n; ARGV[5 .. 4 + 2n] name, value
--         pairs; the rest: fields to remove)
-- Returns load: {'ok', version, name1, value1, ...} | {'missing'};
--         save: {'ok', new version, previous version or ''} | {'conflict', current or ''};
--         delete: {'ok', removed version or ''}; touch: {'ok', 1 or 0}
-- A new version is max(previous + 1, now in microseconds): larger than any version the name
-- had before, even across deletes and expiry, so a holder of an old version always conflicts.
local H, V = KEYS[1], KEYS[2]
local op = ARGV[1]
-- GET answers false (not nil) for a missing key.
local stored = redis.call('GET', V)
local current = nil
if stored then current = tonumber(stored) end
if stored and not current then foreign('the version of a persisted object is not a number') end

if op == 'l' then
  if not current then return {'missing'} end
  local out = {'ok', stored}
  local all = redis.call('HGETALL', H)
  for i = 1, #all do out[#out + 1] = all[i] end
  return out
elseif op == 'd' then
  redis.call('DEL', H, V)
  return {'ok', stored or ''}
elseif op == 't' then
  if not current then return {'ok', 0} end
  redis.call('PEXPIRE', H, ARGV[2])
  redis.call('PEXPIRE', V, ARGV[2])
  return {'ok', 1}
end

local expect = ARGV[2]
local holds
if expect == 'a' then
  holds = current == nil
elseif expect == 'e' then
  holds = current ~= nil
else
  holds = current ~= nil and stored == expect
end
if not holds then return {'conflict', stored or ''} end

local _, now_us = clock()
local version = now_us
if current and current + 1 > version then version = current + 1 end
local n = tonumber(ARGV[4])
if n > 0 then
  local pairs_ = {}
  for i = 5, 4 + 2 * n do pairs_[#pairs_ + 1] = ARGV[i] end
  chunked('HSET', H, pairs_)
end
local removed = {}
for i = 5 + 2 * n, #ARGV do removed[#removed + 1] = ARGV[i] end
if #removed > 0 then chunked('HDEL', H, removed) end
redis.call('SET', V, I(version), 'PX', ARGV[3])
redis.call('PEXPIRE', H, ARGV[3])
return {'ok', I(version), stored or ''}

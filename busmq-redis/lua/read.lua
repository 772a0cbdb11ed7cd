-- read.lua: reads up to `max` ready entries from a position without removing anything
-- (replay, SPEC Q14), in O(log n + max): positions map to pages by arithmetic and ids are
-- found by binary search. Returned entries (if any) come before the pages.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] 'i' (index ARGV[2]) | 'f' (first id >= ARGV[2]) | 'a' (first id > ARGV[2])
--         | 'e' (nothing: just the last id)
-- ARGV[2] index or id
-- ARGV[3] max entries
-- Returns {'ok', newest id or nil when empty, e1..ek} | {'missing'}
local q = load()
if not q then return {'missing'} end
local now_ms, now_us = clock()
if q.rage then
  trim_age(q, now_us)
  save(q)
end
local want = tonumber(ARGV[3])
local out = {'ok', false}
local rc = redis.call('ZCARD', R)

local newest = nil
if q.n > 0 then
  local e = redis.call('LINDEX', page(last_page(q)), -1)
  if e then newest = idof(e) end
end
if rc > 0 then
  local top = redis.call('ZRANGE', R, -1, -1, 'WITHSCORES')
  local s = tonumber(top[2])
  if not newest or s > newest then newest = s end
end
if newest then out[2] = I(newest) end

local kind, v = ARGV[1], tonumber(ARGV[2])
local pg, off
if kind == 'i' then
  if v < rc then
    local rs = redis.call('ZRANGE', R, v, v + want - 1)
    for j = 1, #rs do out[#out + 1] = rs[j] end
    v = 0
  else
    v = v - rc
  end
  if #out - 2 < want then pg, off = locate(q, v) end
elseif kind == 'f' or kind == 'a' then
  local x = v
  if kind == 'a' then x = v + 1 end
  if rc > 0 then
    local rs = redis.call('ZRANGEBYSCORE', R, I(x), '+inf', 'LIMIT', 0, want)
    for j = 1, #rs do out[#out + 1] = rs[j] end
  end
  if #out - 2 < want then pg, off = first_at_least(q, x) end
end
if pg then read_pages(q, pg, off, want - (#out - 2), out) end
return out

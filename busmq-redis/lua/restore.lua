-- restore.lua: puts entries taken in at-most-once mode back among the ready entries, each at
-- its id's place (SPEC Q12), unless the caller's generation was closed or is gone (expired or
-- lost, perhaps created again since): then nothing is written. Ignores maxsize (these entries
-- were counted already). An id that is ready already is not put back twice.
-- Takes hand out the returned zset before the pages (take.lua, claim.lua), which is id order
-- as long as every id in the zset is below every id in the pages. Restored ids are below every
-- entry never taken, so that holds when restores join the zset; but a consumer blocked on the
-- head page (BLMPOP) is not woken by the zset, so restores go to the pages when they can:
-- * nothing returned and nothing pending (no reliable batch that a release or an expiry
--   could bring back above a restored id): merged into the head page together with the
--   entries there whose ids are smaller (only entries restored before and not taken again
--   can be), which are popped and pushed back with them; O(m log m + k) for m entries and k
--   such entries. Pages after the head are never touched, so their arithmetic holds, and a
--   consumer blocked on the head page is woken with the restored entries.
-- * otherwise: added to the returned zset, O(m log n). (The pages then hold no restored
--   entries: every take since such a restore would have taken them first.)
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the caller's generation
-- ARGV[2] the queue's notification channel
-- ARGV[3..] complete entries: '<id>:<deliveries>:<attr length>:<attrs><payload>'
-- Returns {'ok'} | {'closed'} | {'gone'} (another generation) | {'missing'}
if closed_generation(ARGV[1]) then return {'closed'} end
local q = load()
if not q then return {'missing'} end
if I(q.gen) ~= ARGV[1] then return {'gone'} end

-- The entries in id order, each id once.
local given = {}
for j = 3, #ARGV do
  check(ARGV[j])
  given[#given + 1] = {idof(ARGV[j]), ARGV[j]}
end
if #given == 0 then return {'ok'} end
table.sort(given, function(a, b) return a[1] < b[1] end)
local sorted = {}
for _, g in ipairs(given) do
  if #sorted == 0 or sorted[#sorted][1] < g[1] then sorted[#sorted + 1] = g end
end

local added = 0
-- With side entries (see lib.lua) takeable, or among the restored ones, the head page would
-- put restored entries after higher levels: returned entries come first, so they go to the
-- returned zset.
local side = side_keys() and redis.call('EXISTS', H) == 1
for j = 1, #sorted do
  if side then break end
  local L, K = side_of(sorted[j][2])
  side = L > 0 or K ~= nil
end
if side or redis.call('ZCARD', R) > 0 or redis.call('ZCARD', Z) > 0 then
  local zs = {}
  for _, g in ipairs(sorted) do
    if redis.call('ZCOUNT', R, I(g[1]), I(g[1])) == 0 then
      zs[#zs + 1] = I(g[1])
      zs[#zs + 1] = g[2]
    end
  end
  if #zs > 0 then
    chunked('ZADD', R, zs)
    adopt(R)
    added = #zs / 2
    -- Consumers blocked in BLMPOP on the head page would not see them (nor the notice this
    -- restore publishes, which a blocked pop does not read): with or without side entries
    -- (a scheduled message alone sends restores here), the wake list ends their block.
    wake(nil, added)
  end
else
  if q.n == 0 then q.head = math.floor(q.tail / q.size) end
  local key = page(q.head)
  local top = sorted[#sorted][1]
  -- The head page's entries with ids up to the largest restored one (a foreign entry ends
  -- them: the restored entries go before it).
  local below = {}
  local off = 0
  while true do
    local items = redis.call('LRANGE', key, off, off + 63)
    local stop = false
    for _, e in ipairs(items) do
      local id = entry_id(e)
      if not id or id > top then
        stop = true
        break
      end
      below[#below + 1] = {id, e}
    end
    if stop or #items < 64 then break end
    off = off + 64
  end
  if #below > 0 then redis.call('LTRIM', key, #below, -1) end
  local merged = {}
  local i, j = 1, 1
  while i <= #below or j <= #sorted do
    local a, b = below[i], sorted[j]
    if b == nil or (a ~= nil and a[1] <= b[1]) then
      if b ~= nil and a[1] == b[1] then j = j + 1 end
      merged[#merged + 1] = a[2]
      i = i + 1
    else
      merged[#merged + 1] = b[2]
      added = added + 1
      j = j + 1
    end
  end
  -- LPUSH inserts one value at a time: push them last to first.
  local k = #merged
  while k >= 1 do
    local stop = math.max(1, k - CHUNK + 1)
    local batch = {}
    for m = k, stop, -1 do batch[#batch + 1] = merged[m] end
    redis.call('LPUSH', key, unpack(batch))
    k = stop - 1
  end
  adopt(key)
  q.n = q.n + added
  save(q)
end
if added > 0 then notify(ARGV[2], 'a') end
return {'ok'}

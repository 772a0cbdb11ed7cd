-- push.lua: appends a batch of entries to the tail atomically and in order, gives them
-- consecutive ids above the last one, applies retention, notifies watchers (only while a
-- consumer waits for notices: see the notice lease in lib.lua).
-- Fast path: the client proposes the first id (max(its last known id + 1, its clock)) and
-- sends complete entries; when the proposal is above the queue's last id and within a second
-- of the server clock, the entries are appended as they are, with no per-entry work in Lua.
-- Otherwise the script gives ids max(last + 1, now in microseconds) and rewrites the headers.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] the caller's generation
-- ARGV[2..6] spec for creation (see attach.lua)
-- ARGV[7] '1' when the queue may be created on this instance
-- ARGV[8] the queue's notification channel
-- ARGV[9] the proposed first id
-- ARGV[10] '' when every entry is plain (level 0, no ordering key), 'r' when some are routed
-- ARGV[11..] entries '<id>:<deliveries>:<attr length>:<attrs><payload>', ids proposed + 0, 1, ...
--          With ARGV[10] = 'r' each entry is preceded by its route: '' for a plain entry (to the
--          pages), else its level digit followed by its ordering key, if any (among the side
--          entries, see lib.lua), so that one push mixes levels and keys.
-- Returns {'ok', first id} | {'closed'} | {'full', maxsize} | {'missing'} | {'retained'} (routed
--         entries and the live queue has retention)
local ROUTED = ARGV[10] == 'r'
local count = #ARGV - 10
if ROUTED then count = count / 2 end
local q, refused, now_us = push_target(ARGV[1], ARGV[7], 2, count)
if not q then return refused end
-- A live queue with retention takes no levels or keys (SPEC P11, P12), whatever spec the
-- caller sent: it may have attached an incarnation that expired since.
if ROUTED and (q.rlen or q.rage) then return {'retained'} end

local floor = math.max(q.last, q.base)
local first = tonumber(ARGV[9])
local as_is = first ~= nil and first > floor and first >= now_us - 1000000
    and first <= now_us + 1000000
if not as_is then
  first = floor + 1
  if now_us > first then first = now_us end
end
local S = q.size
if q.n == 0 then q.head = math.floor(q.tail / S) end
local id, o, i, n_args = first, q.tail, 11, #ARGV
while not ROUTED and i <= n_args do
  local pg = math.floor(o / S)
  local n = math.min((pg + 1) * S - o, n_args - i + 1, CHUNK)
  local key = page(pg)
  local len
  if as_is then
    len = redis.call('RPUSH', key, unpack(ARGV, i, i + n - 1))
    i = i + n
    id = id + n
  else
    local batch = {}
    for j = 1, n do
      local e = ARGV[i]
      local colon = string.find(e, ':', 1, true)
      if not colon then foreign('a pushed entry has no header') end
      batch[j] = I(id) .. string.sub(e, colon)
      id = id + 1
      i = i + 1
    end
    len = redis.call('RPUSH', key, unpack(batch))
  end
  if len == n then adopt(key) end
  o = o + n
end
if ROUTED then
  -- Each entry by its route, in id order: routed ones among the side entries (each with its
  -- id in the header: as_is, the client wrote it), plain ones appended to the pages.
  side_keys()
  local plain, takeable = {}, 0
  for j = 11, n_args, 2 do
    local r, e = ARGV[j], ARGV[j + 1]
    if not as_is then
      local colon = e and string.find(e, ':', 1, true)
      if not colon then foreign('a pushed entry has no header') end
      e = I(id) .. string.sub(e, colon)
    end
    if r == '' then
      plain[#plain + 1] = e
    else
      local K = string.sub(r, 2)
      if K == '' then K = nil end
      takeable = takeable + side_add(id, e, tonumber(string.sub(r, 1, 1)), K)
    end
    id = id + 1
  end
  adopt_side()
  wake(nil, takeable)
  local p = 1
  while p <= #plain do
    local pg = math.floor(o / S)
    local n = math.min((pg + 1) * S - o, #plain - p + 1, CHUNK)
    if redis.call('RPUSH', page(pg), unpack(plain, p, p + n - 1)) == n then adopt(page(pg)) end
    p = p + n
    o = o + n
  end
end
q.n = q.n + (o - q.tail)
q.tail = o
q.last = id - 1
trim_len(q)
trim_age(q, now_us)
save(q)
if q.last > now_us then
  -- Ids ran ahead of the clock: remember the last one past this incarnation's life, so a
  -- successor never gives a smaller id.
  redis.call('HSET', T, 'last', I(q.last))
  keep_tomb(math.floor(q.last / 1000) + 1)
end
notify_waiters(ARGV[8])
if AFTER_PUSH then AFTER_PUSH(q, first) end
return {'ok', I(first)}

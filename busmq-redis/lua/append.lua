-- append.lua: a push whose entries never pass through Lua. The client sends, in one MULTI:
--   EVALSHA append 'p' ...   (prepare)
--   RPUSHX <ns>:{q}:in e1 .. en
--   EVALSHA append 'c' ...   (commit)
-- Prepare runs every check of push.lua (closed, missing, maxsize, the proposed ids) and, when
-- the push may go ahead, renames the tail page to the in key <ns>:{q}:in (or creates that key
-- with one empty placeholder when the tail page does not exist) and records the new tail,
-- count and last id. RPUSHX then appends the entries as the client built them; it only finds
-- the in key when prepare accepted, so a refused (or missing, NOSCRIPT) prepare writes
-- nothing. Commit drops the placeholder, renames the in key back to the tail page (RENAME
-- keeps its expiry and wakes a consumer blocked on it) and only then moves the entries that
-- went past the page's end to the following pages (the only entries Lua ever sees), applies
-- retention and notifies watchers. Prepare and commit are one script, so they
-- are loaded together or not at all. The in key exists only inside the transaction.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV[1] 'p' (prepare) or 'c' (commit)
-- prepare: ARGV[2] the caller's generation, ARGV[3..7] spec for creation (see attach.lua),
--          ARGV[8] '1' when the queue may be created on this instance, ARGV[9] the proposed
--          first id, ARGV[10] the number of entries
-- commit:  ARGV[2] the queue's notification channel, ARGV[3] the number of entries, ARGV[4] the
--          proposed first id
-- Returns prepare: {'ok', first id} | {'closed'} | {'full', maxsize} | {'missing'}
--                  | {'refused'} (the ids are not acceptable as sent: push with push.lua)
--         commit:  {'ok'} | {'none'} (prepare did not accept)
local IN = PFX .. 'in'

if ARGV[1] == 'p' then
  local count = tonumber(ARGV[10])
  local q, refused, now_us = push_target(ARGV[2], ARGV[8], 3, count)
  if not q then return refused end
  local floor = math.max(q.last, q.base)
  local first = tonumber(ARGV[9])
  if not (first and first > floor and first >= now_us - 1000000 and first <= now_us + 1000000)
  then
    return {'refused'}
  end
  -- A leftover in key would take the entries of this push; it cannot exist outside a
  -- transaction, so it is foreign.
  if redis.call('EXISTS', IN) == 1 then foreign('the key ' .. IN .. ' exists') end
  local S = q.size
  if q.n == 0 then q.head = math.floor(q.tail / S) end
  local key = page(math.floor(q.tail / S))
  if redis.call('EXISTS', key) == 1 then
    redis.call('RENAME', key, IN)
  else
    -- Entries are never empty (they start with a header), so '' marks the placeholder.
    redis.call('RPUSH', IN, '')
  end
  q.tail = q.tail + count
  q.n = q.n + count
  q.last = first + count - 1
  save(q)
  if q.last > now_us then
    -- Ids ran ahead of the clock: remember the last one past this incarnation's life, so a
    -- successor never gives a smaller id.
    redis.call('HSET', T, 'last', I(q.last))
    keep_tomb(math.floor(q.last / 1000) + 1)
  end
  return {'ok', I(first)}
end

-- Commit, only after this transaction's prepare accepted: it made the in key and set the
-- queue's last id to this push's. (A leftover in key, which prepare refuses as foreign, has
-- the entries appended to it, but none of it reaches the queue.)
local count = tonumber(ARGV[3])
local v = redis.call('HMGET', M, 'tail', 'size', 'last')
if redis.call('EXISTS', IN) == 0 or tonumber(v[3]) ~= tonumber(ARGV[4]) + count - 1 then
  return {'none'}
end
local S = tonumber(v[2])
local old = tonumber(v[1]) - count
local pg = math.floor(old / S)
local fresh = redis.call('LINDEX', IN, 0) == ''
if fresh then redis.call('LPOP', IN) end
-- Entries past the end of the tail page belong to the pages after it. The tail page is
-- renamed back before they are written: a consumer blocked on it and the next page (see
-- wait.rs) is served from the key signalled first, and must get the older entries first.
local over = old + count - (pg + 1) * S
local items
if over > 0 then
  items = redis.call('LRANGE', IN, -over, -1)
  redis.call('LTRIM', IN, 0, -over - 1)
end
if fresh then adopt(IN) end
redis.call('RENAME', IN, page(pg))
if over > 0 then
  local i, k = 1, pg + 1
  while i <= over do
    local j = math.min(i + S - 1, over)
    local key = page(k)
    local c = i
    while c <= j do
      local d = math.min(c + CHUNK - 1, j)
      redis.call('RPUSH', key, unpack(items, c, d))
      c = d + 1
    end
    adopt(key)
    i = j + 1
    k = k + 1
  end
end
local q = load()
if q and (q.rlen or q.rage) then
  local _, now_us = clock()
  trim_len(q)
  trim_age(q, now_us)
  save(q)
end
notify_waiters(ARGV[2])
return {'ok'}

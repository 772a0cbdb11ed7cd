-- append_fast.lua: append.lua's common case in a script of its own, without lib.lua's helpers,
-- as push_fast.lua is push.lua's. Redis runs a script's whole body on every call, and each
-- redis.call crosses between Lua and Redis at a cost of several microseconds: append.lua's
-- prepare and commit make sixteen calls between them in the common case and carry lib.lua's
-- closures, this script eleven (see docs/performance.md, issue 14). The client sends, in one
-- MULTI, as for append.lua:
--   EVALSHA append_fast 'p' ...   (prepare)
--   RPUSHX <ns>:{q}:in e1 .. en
--   EVALSHA append_fast 'c' ...   (commit)
-- Prepare accepts only a push to the live incarnation the caller pushes to, with no retention,
-- nothing delayed due, at most four drained head pages to skip and no leftover in key;
-- anything else answers {'slow'} before writing anything, so that the RPUSHX finds no in key
-- and commit answers {'none'}, and the client sends the same arguments to append.lua. Keep
-- the two in step: busmq-redis/tests/append_fast.rs compares their effects.
-- A linked push (the client's pipelined push) adds two arguments to prepare's: ARGV[11], its
-- mark, which prepare keeps in the meta hash's lw when it accepts; ARGV[12], the mark of the
-- push it must follow ('' for none): unless lw holds that mark, prepare answers {'behind'}
-- before writing anything. Only this script sets lw: a push written by any other path leaves
-- it as it was, so the push that follows that one is refused and sent again, after it.
-- KEYS, ARGV: as append.lua's, and ARGV[11], ARGV[12] of a linked prepare.
-- Returns: as append.lua's, and prepare may also answer {'slow'} or {'behind'}.
local M, T = KEYS[1], KEYS[2]
local PFX = string.sub(M, 1, -2)
local IN = PFX .. 'in'
local function I(x) return string.format('%d', x) end

if ARGV[1] == 'p' then
  local v = redis.call('HMGET', M, 'v', 'gen', 'max', 'rlen', 'rage', 'size', 'last', 'base',
                       'head', 'tail', 'ttl', 'n', 'lw')
  -- The layout, the caller's generation and no retention (lib.lua's load() and push_target()).
  if v[1] ~= '2' or v[2] ~= ARGV[2] or v[4] ~= '' or v[5] ~= '' then return {'slow'} end
  if ARGV[12] and ARGV[12] ~= '' and v[13] ~= ARGV[12] then return {'behind'} end
  local S, last, base = tonumber(v[6]), tonumber(v[7]), tonumber(v[8])
  local head, tail = tonumber(v[9]), tonumber(v[10])
  local count = tonumber(ARGV[10])
  -- A meta hash load() would call incomplete is append.lua's to refuse (ForeignData).
  if not (S and last and base and head and tail and tonumber(v[11]) and tonumber(v[12]))
      or S < 1 or not count or count < 1 then
    return {'slow'}
  end
  -- The ready count as load() derives it, skipping head pages drained by pops (consumers pop
  -- the head page directly, and leave the meta hash's head behind at every page they empty).
  -- A longer walk, with load()'s check for pages that do not exist, is append.lua's.
  local stored = head
  local hl = redis.call('LLEN', PFX .. 'p:' .. I(head))
  local last_page = head
  if tail > 0 then last_page = math.max(head, math.floor((tail - 1) / S)) end
  while hl == 0 and head < last_page do
    if head - stored == 4 then return {'slow'} end
    head = head + 1
    hl = redis.call('LLEN', PFX .. 'p:' .. I(head))
  end
  local n = hl + math.max(0, tail - (head + 1) * S)
  -- load() remembers where its walk ended, even when the push is then refused.
  local function refuse(reply)
    if head ~= stored then redis.call('HSET', M, 'head', I(head)) end
    return reply
  end
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  -- Messages that came due go before this push: append.lua promotes them (SPEC P8).
  if redis.call('ZRANGEBYSCORE', PFX .. 'd', '-inf', now_ms, 'LIMIT', 0, 1)[1] then
    return {'slow'}
  end
  if v[3] ~= '' then
    local max = tonumber(v[3])
    if not max then return {'slow'} end
    if n + redis.call('ZCARD', PFX .. 'r') + redis.call('ZCARD', PFX .. 'hi') + count > max then
      return refuse({'full', I(max)})
    end
  end
  local first = tonumber(ARGV[9])
  if not (first and first > math.max(last, base) and first >= now_us - 1000000
          and first <= now_us + 1000000) then
    return refuse({'refused'})
  end
  -- EXISTS counts a key once per mention: 1 is the tail page alone, 0 neither key, and 2 or 3
  -- a leftover in key, which append.lua reports as foreign.
  local key = PFX .. 'p:' .. I(math.floor(tail / S))
  local found = redis.call('EXISTS', IN, IN, key)
  if found > 1 then return {'slow'} end
  if found == 1 then
    redis.call('RENAME', key, IN)
  else
    -- Entries are never empty (they start with a header), so '' marks the placeholder.
    redis.call('RPUSH', IN, '')
  end
  if n == 0 then head = math.floor(tail / S) end
  local last_id = first + count - 1
  if ARGV[11] then
    redis.call('HSET', M, 'n', I(n + count), 'head', I(head), 'tail', I(tail + count), 'last',
               I(last_id), 'lw', ARGV[11])
  else
    redis.call('HSET', M, 'n', I(n + count), 'head', I(head), 'tail', I(tail + count), 'last',
               I(last_id))
  end
  if last_id > now_us then
    -- Ids ran ahead of the clock: as append.lua, the tombstone remembers the last one.
    redis.call('HSET', T, 'last', I(last_id))
    local keep = math.floor(last_id / 1000) + 1
    if redis.call('PEXPIRETIME', T) < keep then redis.call('PEXPIREAT', T, keep) end
  end
  return {'ok', I(first)}
end

-- Commit, only after this transaction's prepare accepted: it made the in key (whose first
-- value is the placeholder when the tail page did not exist) and set the queue's last id to
-- this push's, as append.lua checks.
local front = redis.call('LINDEX', IN, 0)
if not front then return {'none'} end
local count = tonumber(ARGV[3])
local v = redis.call('HMGET', M, 'tail', 'size', 'exp', 'last')
if tonumber(v[4]) ~= tonumber(ARGV[4]) + count - 1 then return {'none'} end
local S = tonumber(v[2])
local old = tonumber(v[1]) - count
local pg = math.floor(old / S)
-- The queue's expiry, which expire_all() (lib.lua) keeps in the meta hash beside setting it;
-- a meta hash written before that field existed is asked (lib.lua's adopt()).
local expire_at = tonumber(v[3])
local function adopt(key)
  expire_at = expire_at or redis.call('PEXPIRETIME', M)
  if expire_at > 0 then redis.call('PEXPIREAT', key, expire_at) end
end
local fresh = front == ''
if fresh then redis.call('LPOP', IN) end
-- As append.lua: the tail page is renamed back before the entries past its end are written to
-- the pages after it, so that a consumer blocked on both gets the older entries first.
local over = old + count - (pg + 1) * S
local items
if over > 0 then
  items = redis.call('LRANGE', IN, -over, -1)
  redis.call('LTRIM', IN, 0, -over - 1)
end
if fresh then adopt(IN) end
redis.call('RENAME', IN, PFX .. 'p:' .. I(pg))
if over > 0 then
  local i, k = 1, pg + 1
  while i <= over do
    local j = math.min(i + S - 1, over)
    local key = PFX .. 'p:' .. I(k)
    local c = i
    while c <= j do
      local d = math.min(c + 6999, j)
      redis.call('RPUSH', key, unpack(items, c, d))
      c = d + 1
    end
    adopt(key)
    i = j + 1
    k = k + 1
  end
end
-- The notice, only while a consumer waits for one (lib.lua's notify_waiters()).
if redis.call('EXISTS', PFX .. 'n') == 1 then
  local channel = ARGV[2]
  if string.sub(channel, -2) == ':s' then
    redis.call('SPUBLISH', channel, 'a')
  else
    redis.call('PUBLISH', channel, 'a')
  end
end
return {'ok'}

-- push_once.lua: push.lua with a producer dedupe key (SPEC P10); this prologue is followed by
-- push.lua itself in the same script. A key written by a push of the current incarnation less
-- than its window ago answers with that push's id and nothing is written; otherwise the push
-- runs and then writes the key. The key <ns>:{q}:k:<key> (derived from KEYS[1]: same hash
-- tag) is a string '<generation>:<first id>' with its own expiry (SET PX window), so keys
-- outlive neither their window nor matter after the incarnation (another generation never
-- matches); at most one small key per keyed push within the window.
-- Checked (push_target's BEFORE_PUSH hook) after the tombstone (a closed generation stays
-- Closed: push.lua says so) and the layout checks of the meta hash (foreign keys are
-- ForeignData, not a raw error), and before maxsize (a repeat of a stored message is not
-- refused as full). Like the page keys, the dedupe key is derived from KEYS[1] in the same
-- slot rather than passed in KEYS.
-- KEYS: the six queue keys (see lib.lua).
-- ARGV: as push.lua, then the dedupe key and the window in milliseconds (both removed from
-- ARGV here, so that push.lua sees its own arguments only).
-- Returns as push.lua: {'ok', first id (the earlier push's when the key was seen)} | ...
local DEDUPE_WINDOW = table.remove(ARGV)
local DEDUPE_KEY = PFX .. 'k:' .. table.remove(ARGV)
BEFORE_PUSH = function(q)
  local seen = redis.pcall('GET', DEDUPE_KEY)
  if type(seen) == 'table' and seen.err then foreign('its dedupe key is not a string') end
  local gen, id = false, false
  if seen then gen, id = string.match(seen, '^(%d+):(%d+)$') end
  if gen and tonumber(gen) == q.gen then return {'ok', id} end
  return nil
end
AFTER_PUSH = function(q, first)
  redis.call('SET', DEDUPE_KEY, I(q.gen) .. ':' .. I(first), 'PX', DEDUPE_WINDOW)
end

-- flush.lua: removes every ready, pending and delayed entry (side entries and the keys' gates
-- included, see lib.lua) and the quarantine, but keeps the queue,
-- its spec, metadata and id counter (SPEC Q5).
-- KEYS: the six queue keys (see lib.lua).
-- ARGV: none
-- Returns {'ok'} | {'missing'}
local q = load()
if not q then return {'missing'} end
unlink(batch_keys({R, Z, X, QUARANTINE, DELAYED, H, HI, KG, KW, WAKE}))
drop_all_pages(q)
save(q)
return {'ok'}

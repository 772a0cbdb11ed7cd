//! The Lua scripts, one per atomic queue operation (and one for persisted objects), with their SHA1 digests for EVALSHA.
//!
//! Each script is `lua/<op>.lua` after the helpers of `lua/lib.lua` it uses (`assemble.rs`),
//! put together once per process. Scripts are loaded with SCRIPT LOAD on every (re)connection, and the call path
//! (`ops/call.rs`) loads them again on NOSCRIPT (a SCRIPT FLUSH, or a failover to a server that
//! never saw them).

use super::assemble::Lib;
use std::sync::LazyLock;

/// One script: its name (for errors), its full body and its digest.
#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) name: &'static str,
    pub(crate) body: &'static str,
    pub(crate) sha: String,
}

impl Script {
    fn new(name: &'static str, body: &'static str) -> Script {
        Script { name, body, sha: redis::Script::new(body).get_hash().to_string() }
    }
}

macro_rules! script {
    // A prologue followed by another script's body (push_once: push.lua with dedupe).
    ($name:literal, $then:literal) => {
        Script::new(
            $name,
            assembled(&[
                include_str!(concat!("../../lua/", $name, ".lua")),
                include_str!(concat!("../../lua/", $then, ".lua")),
            ]),
        )
    };
    ($name:literal) => {
        Script::new($name, assembled(&[include_str!(concat!("../../lua/", $name, ".lua"))]))
    };
}

/// lib.lua's helpers that `own` uses, then `own` (see `assemble.rs`); built once per process,
/// so the text lives as long as the scripts.
fn assembled(own: &[&str]) -> &'static str {
    static LIB: LazyLock<Lib> = LazyLock::new(|| Lib::parse(include_str!("../../lua/lib.lua")));
    let body = LIB.assemble(own);
    Box::leak(body.into_boxed_str())
}

/// Every script busmq runs.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) attach: Script,
    pub(crate) renew: Script,
    pub(crate) detach: Script,
    pub(crate) close: Script,
    pub(crate) push: Script,
    pub(crate) push_fast: Script,
    pub(crate) push_once: Script,
    pub(crate) append: Script,
    pub(crate) append_fast: Script,
    pub(crate) take: Script,
    pub(crate) restore: Script,
    pub(crate) settle: Script,
    pub(crate) read: Script,
    pub(crate) consumers: Script,
    pub(crate) stat: Script,
    pub(crate) flush: Script,
    pub(crate) metadata: Script,
    pub(crate) lend: Script,
    pub(crate) lend_fast: Script,
    pub(crate) giveback: Script,
    pub(crate) claim: Script,
    pub(crate) claim_fast: Script,
    pub(crate) quarantine: Script,
    pub(crate) object: Script,
    pub(crate) schedule: Script,
    pub(crate) cancel: Script,
}

impl Scripts {
    /// All scripts, for loading them after a connection.
    pub(crate) fn all(&self) -> [&Script; 26] {
        [
            &self.attach,
            &self.renew,
            &self.detach,
            &self.close,
            &self.push,
            &self.push_fast,
            &self.push_once,
            &self.append,
            &self.append_fast,
            &self.take,
            &self.restore,
            &self.settle,
            &self.read,
            &self.consumers,
            &self.stat,
            &self.flush,
            &self.metadata,
            &self.lend,
            &self.lend_fast,
            &self.giveback,
            &self.claim,
            &self.claim_fast,
            &self.quarantine,
            &self.object,
            &self.schedule,
            &self.cancel,
        ]
    }
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    attach: script!("attach"),
    renew: script!("renew"),
    detach: script!("detach"),
    close: script!("close"),
    push: script!("push"),
    // Alone, without lib.lua: its whole point is not to carry the helpers (see the script).
    push_fast: Script::new("push_fast", include_str!("../../lua/push_fast.lua")),
    push_once: script!("push_once", "push"),
    append: script!("append"),
    // Alone, as push_fast.
    append_fast: Script::new("append_fast", include_str!("../../lua/append_fast.lua")),
    take: script!("take"),
    restore: script!("restore"),
    settle: script!("settle"),
    read: script!("read"),
    consumers: script!("consumers"),
    stat: script!("stat"),
    flush: script!("flush"),
    metadata: script!("metadata"),
    lend: script!("lend"),
    // Alone, as push_fast.
    lend_fast: Script::new("lend_fast", include_str!("../../lua/lend_fast.lua")),
    giveback: script!("giveback"),
    claim: script!("claim"),
    // Alone, as push_fast.
    claim_fast: Script::new("claim_fast", include_str!("../../lua/claim_fast.lua")),
    quarantine: script!("quarantine"),
    object: script!("object"),
    schedule: script!("schedule"),
    cancel: script!("cancel"),
});

/// The scripts, built once.
pub(crate) fn scripts() -> &'static Scripts {
    &SCRIPTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_has_a_header_and_the_shared_helpers() {
        for s in scripts().all() {
            let own = match s.body.split_once("-- ---- end of lib.lua ----") {
                Some((_, own)) => own,
                None => s.body,
            };
            let header = own.trim_start();
            assert!(header.starts_with(&format!("-- {}.lua:", s.name)), "{}: header", s.name);
            for part in ["KEYS", "ARGV", "Returns"] {
                assert!(header.contains(part), "{} header lacks {part}", s.name);
            }
            assert_eq!(s.sha.len(), 40);
        }
    }

    #[test]
    fn the_scripts_write_and_accept_the_layout_version_of_the_keys_module() {
        let line = format!("local LAYOUT = '{}'", crate::script::keys::LAYOUT_VERSION);
        assert!(scripts().attach.body.contains(&line), "lib.lua must say {line}");
    }
}

//! Builds one script from `lua/lib.lua` and an operation's own Lua, keeping only the helpers
//! the operation uses.
//!
//! Redis runs a script's whole body on every call, so each `local function` of lib.lua is a
//! closure created again per call: every helper of lib.lua cost each script about 5 µs of
//! server time (6.4 µs per call for lib.lua + `return 1` against 1.4 µs for `return 1`,
//! redis-benchmark), more than most of the commands a push runs. lib.lua stays the one source
//! of truth; its top-level definitions are kept when a kept part names them.
//!
//! lib.lua's shape this relies on (checked by the tests below): every top-level statement
//! starts at column 0 with `local` (a definition) or is the assignment `name = ..` of a name
//! declared earlier with `local name` (a definition that must come after helpers it calls,
//! for a function defined before them), and nothing else of it does but its closing `end`; comment lines at column 0 belong to the definition that follows them. A name is
//! "used" when it appears as a word anywhere outside whole-line comments (strings and trailing
//! comments included), so a doubt keeps a helper rather than dropping it.

use std::collections::HashSet;

/// One top-level definition of lib.lua, with the comment lines above it.
struct Item {
    text: String,
    names: Vec<String>,
    words: HashSet<String>,
}

/// The words (identifier-like tokens) of `code`, whole-line comments left out.
fn words(code: &str) -> HashSet<String> {
    code.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether a top-level line assigns a name declared earlier (`promote = function(..)`).
fn assigns(line: &str) -> bool {
    let Some((name, _)) = line.split_once(" = ") else {
        return false;
    };
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The names a top-level `local` (or assignment) line defines: `local function f(..)`, `local A, B = ..`.
fn defined(line: &str) -> Vec<String> {
    let rest = line.trim_start_matches("local").trim_start();
    let names = match rest.strip_prefix("function ") {
        Some(f) => f.split('(').next().unwrap_or(""),
        None => rest.split('=').next().unwrap_or(""),
    };
    names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// Splits lib.lua into its header (comments before the first definition), its definitions and
/// its trailer (comment lines after the last one).
fn split(lib: &str) -> (String, Vec<Item>, String) {
    let mut header = String::new();
    let mut items: Vec<Item> = Vec::new();
    let mut pending = String::new();
    for line in lib.lines() {
        if line.starts_with("local") || assigns(line) {
            let mut text = std::mem::take(&mut pending);
            if items.is_empty() {
                header = text;
                text = String::new();
            }
            text.push_str(line);
            text.push('\n');
            items.push(Item { text, names: defined(line), words: HashSet::new() });
        } else if line.starts_with("--") || line.is_empty() {
            pending.push_str(line);
            pending.push('\n');
        } else if let Some(item) = items.last_mut() {
            // The body of the current definition; blank or comment lines inside it were held
            // back as `pending` and belong to it too.
            item.text.push_str(&std::mem::take(&mut pending));
            item.text.push_str(line);
            item.text.push('\n');
        } else {
            header.push_str(line);
            header.push('\n');
        }
    }
    for item in &mut items {
        item.words = words(&item.text);
    }
    (header, items, pending)
}

/// lib.lua split into its definitions once, for every script assembled from it: splitting it
/// again for each of the two dozen scripts was most of a process's start-up CPU in busmq-redis.
pub(crate) struct Lib {
    header: String,
    items: Vec<Item>,
    trailer: String,
}

impl Lib {
    pub(crate) fn parse(lib: &str) -> Lib {
        let (header, items, trailer) = split(lib);
        Lib { header, items, trailer }
    }

    /// lib.lua's header, the definitions `own` needs (directly or through other kept
    /// definitions) in lib.lua's order, its trailer, then `own`.
    pub(crate) fn assemble(&self, own: &[&str]) -> String {
        let own_words: Vec<HashSet<String>> = own.iter().map(|part| words(part)).collect();
        let mut used: HashSet<&str> = own_words.iter().flatten().map(String::as_str).collect();
        let mut kept = vec![false; self.items.len()];
        loop {
            let mut grew = false;
            for (i, item) in self.items.iter().enumerate() {
                if !kept[i] && item.names.iter().any(|n| used.contains(n.as_str())) {
                    kept[i] = true;
                    used.extend(item.words.iter().map(String::as_str));
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        let mut out = self.header.clone();
        for (item, keep) in self.items.iter().zip(kept) {
            if keep {
                out.push_str(&item.text);
            }
        }
        out.push_str(&self.trailer);
        for part in own {
            out.push_str(part);
        }
        out
    }
}

/// `own` after the helpers of `lib` it uses (see [`Lib::assemble`]).
#[cfg(test)]
fn assemble(lib: &str, own: &[&str]) -> String {
    Lib::parse(lib).assemble(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIB: &str = include_str!("../../lua/lib.lua");

    #[test]
    fn lib_has_the_shape_the_assembler_relies_on() {
        let (_, items, trailer) = split(LIB);
        assert!(items.len() > 20, "lib.lua's definitions were found");
        let all: String = items.iter().map(|i| i.text.as_str()).collect();
        assert!(all.lines().count() + trailer.lines().count() <= LIB.lines().count());
        for line in LIB.lines() {
            let top = line.chars().next().is_some_and(|c| !c.is_whitespace());
            if top && !line.starts_with("--") {
                assert!(
                    line.starts_with("local")
                        || assigns(line)
                        || line == "end"
                        || line.starts_with("end "),
                    "a top-level line the assembler does not understand: {line}"
                );
            }
        }
        assert!(trailer.contains("-- ---- end of lib.lua ----"));
    }

    #[test]
    fn everything_kept_is_lib_text_and_every_named_helper_is_kept() {
        let own = "local q = load()\nsave(q)\n";
        let body = assemble(LIB, &[own]);
        for name in ["load", "save", "num", "foreign", "FIELDS", "LAYOUT", "last_page", "page"] {
            let def = format!("local function {name}(");
            let def2 = format!("local {name} =");
            assert!(body.contains(&def) || body.contains(&def2), "{name} kept");
        }
        assert!(!body.contains("local function requeue_expired("), "unused helper dropped");
        assert!(body.ends_with(own));
    }

    #[test]
    fn all_of_lib_for_a_part_that_names_everything() {
        let (_, items, _) = split(LIB);
        let every: String =
            items.iter().flat_map(|i| i.names.iter()).map(|n| format!("{n} ")).collect();
        let body = assemble(LIB, &[&every]);
        assert_eq!(body.len(), LIB.len() + every.len(), "nothing lost in the split");
    }

    #[test]
    fn a_forward_declared_helper_keeps_its_declaration_and_its_definition() {
        let body = assemble(LIB, &["local q = load()\npromote(q)\n"]);
        assert!(body.contains("local promote\n"), "the declaration");
        assert!(body.contains("\npromote = function("), "the definition");
        assert!(body.contains("local function trim_len("), "what the definition calls");
        let plain = assemble(LIB, &["local q = load()\nsave(q)\n"]);
        assert!(!plain.contains("promote = function("), "dropped when unused");
    }
}

//! The tidy test: the house rules of DESIGN.md and DEVELOPERS.md that the compiler does not
//! check, as `#[test]`s over the source tree (in the style of rust-analyzer's tidy). Run them
//! with `cargo test -p xtask tidy`; each failure names the file and the rule.
//!
//! The rules: every `.rs` file opens with a `//!` line; every Lua script opens with a header
//! naming its KEYS, ARGV and return value; busmq-core depends on no Redis driver; Redis key
//! formats are written only in the keys module; locks follow the one poisoning policy
//! (`busmq_core::util::lock`, never `.lock().expect(..)` / `.lock().unwrap()` in product
//! code); no `todo!`/`unimplemented!`/`dbg!` in product code.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Every file under `dir` whose name ends with `ext`, skipping build output, npm's packages
/// (`xtask/peers/`) and hidden directories.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && name != "node_modules" && !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// Product source files: `src/` of every crate (tests, examples and the testkit's cases are
/// test code).
fn product_sources() -> Vec<PathBuf> {
    files(&root(), ".rs")
        .into_iter()
        .filter(|p| {
            let r = relative(p);
            r.contains("/src/") && r.starts_with("busmq") && !r.starts_with("busmq-testkit/")
        })
        .collect()
}

/// The text of a file before its first `#[cfg(test)]` (unit tests are test code).
fn before_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

fn check(violations: Vec<String>, rule: &str) {
    assert!(violations.is_empty(), "{rule}:\n  {}", violations.join("\n  "));
}

#[test]
fn every_rust_file_opens_with_a_module_doc_line() {
    let bad: Vec<String> = files(&root(), ".rs")
        .into_iter()
        .filter(|p| !read(p).starts_with("//!"))
        .map(|p| relative(&p))
        .collect();
    check(bad, "these files do not open with a `//!` line saying what they are for");
}

#[test]
fn every_lua_script_opens_with_its_keys_argv_and_return() {
    let lua = root().join("busmq-redis/lua");
    let mut bad = Vec::new();
    for path in files(&lua, ".lua") {
        let text = read(&path);
        let header: String =
            text.lines().take_while(|l| l.starts_with("--")).collect::<Vec<_>>().join("\n");
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let shared_helpers = name == "lib.lua";
        let needs = if shared_helpers { &["KEYS"][..] } else { &["KEYS", "ARGV", "Returns"][..] };
        for word in needs {
            if !header.contains(word) {
                bad.push(format!("{} (its header does not name {word})", relative(&path)));
            }
        }
    }
    check(bad, "Lua scripts must open with a header naming KEYS, ARGV and Returns");
}

#[test]
fn busmq_core_depends_on_no_redis_driver() {
    let manifest = read(&root().join("busmq-core/Cargo.toml"));
    let deps: Vec<&str> = manifest
        .split("\n[")
        .filter(|section| section.contains("dependencies]"))
        .flat_map(|section| section.lines().skip(1))
        .collect();
    let bad: Vec<String> = deps
        .iter()
        .filter(|line| {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            matches!(name, "redis" | "bb8" | "bb8-redis" | "fred" | "deadpool-redis")
        })
        .map(|line| line.to_string())
        .collect();
    check(bad, "busmq-core must not depend on a Redis driver (DESIGN: no driver types in core)");
}

#[test]
fn redis_key_formats_live_only_in_the_keys_module() {
    let src = root().join("busmq-redis/src");
    let mut bad = Vec::new();
    for path in files(&src, ".rs") {
        let r = relative(&path);
        if r.ends_with("/keys.rs") {
            continue;
        }
        let text = read(&path);
        for (n, line) in before_tests(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // Cutting a suffix off a key to build another, or spelling the hash-tag layout.
            let surgery = code.contains("len() - 1]") || code.contains("len() - 2]");
            let layout = code.contains("{{{") || code.contains("}}}:") || code.contains("\"}:");
            if surgery || layout {
                bad.push(format!("{r}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    check(bad, "Redis key names are built only in the keys module");
}

#[test]
fn locks_follow_the_one_poisoning_policy() {
    let mut bad = Vec::new();
    for path in product_sources() {
        let text = read(&path);
        for (n, line) in before_tests(&text).lines().enumerate() {
            if line.contains(".lock().expect(") || line.contains(".lock().unwrap()") {
                bad.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
            }
        }
    }
    check(bad, "lock with busmq_core::support::lock (recovers from poisoning), not expect/unwrap");
}

#[test]
fn no_placeholders_in_product_code() {
    let mut bad = Vec::new();
    for path in product_sources() {
        let text = read(&path);
        for (n, line) in before_tests(&text).lines().enumerate() {
            if ["todo!(", "unimplemented!(", "dbg!("].iter().any(|m| line.contains(m)) {
                bad.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
            }
        }
    }
    check(bad, "no todo!, unimplemented! or dbg! in product code");
}

#[test]
fn the_checks_see_the_tree() {
    // A tidy test that walks an empty tree passes vacuously: make sure it sees the sources.
    assert!(product_sources().len() > 50, "{:?}", product_sources().len());
    assert!(files(&root().join("busmq-redis/lua"), ".lua").len() > 10);
}

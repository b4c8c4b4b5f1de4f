//! ARCHITECTURE.md's invariants that a grep can check, checked: each is stated there as an
//! absence ("no `sqlx` outside `src/store`"), and each test here fails with the lines that
//! break it. The map names the few files allowed to hold each thing; so does this file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::repo_only::{repo_root, tempfile_dir, walk};

/// This file: it names what it looks for, so no scan reads it.
const THIS_FILE: &str = "events/tests/suite/architecture.rs";

/// The Rust sources (and manifests) under `dirs`, relative to the repository root, but this file.
fn sources(dirs: &[&str]) -> Vec<(String, String)> {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), &mut files);
    }
    files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs") || f.ends_with("Cargo.toml"))
        .map(|f| (relative(&root, &f), std::fs::read_to_string(&f).unwrap_or_default()))
        .filter(|(path, _)| path != THIS_FILE)
        .collect()
}

fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root).unwrap_or(file).to_string_lossy().replace('\\', "/")
}

/// `file:line: text` for every line of a file outside `allowed` (exact paths, or folders
/// ending in `/`) that `hit` matches. Comment lines do not count: they may name anything.
fn offenders(files: &[(String, String)], allowed: &[&str], hit: impl Fn(&str) -> bool) -> Vec<String> {
    let is_allowed =
        |path: &str| allowed.iter().any(|a| if a.ends_with('/') { path.starts_with(a) } else { path == *a });
    let mut found = Vec::new();
    for (path, text) in files {
        if is_allowed(path) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || code.starts_with('#') && path.ends_with(".toml") {
                continue;
            }
            if hit(code) {
                found.push(format!("{path}:{}: {}", i + 1, code));
            }
        }
    }
    found
}

fn assert_none(rule: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{rule} (ARCHITECTURE.md), but:\n{}", found.join("\n"));
}

/// Every folder of Rust code in the repository.
const CODE_DIRS: [&str; 6] = ["src", "events", "projections", "kernels", "tools", "tests"];

#[test]
fn no_sqlx_outside_the_store_and_the_named_test_and_tool_files() {
    let allowed = [
        "src/store/",
        "Cargo.toml",
        "tools/Cargo.toml",
        // The ingest benchmark opens its database with the store's pool options.
        "tools/src/bench/ingest.rs",
        // Tests that corrupt or inspect a ledger's tables on purpose, as an attacker would.
        "tests/support/sql.rs",
        "tests/support/store.rs",
        "tests/cli/store_scan.rs",
        // Holds one ledger's writer lock from outside, as a stuck server would.
        "tests/postgres/copies.rs",
    ];
    assert_none(
        "only src/store knows SQL",
        offenders(&sources(&CODE_DIRS), &allowed, |l| l.contains("sqlx")),
    );
}

#[test]
fn no_unsafe_outside_the_named_files() {
    let allowed = [
        "src/store/sqlite_scan.rs",
        "src/store/sqlite_alloc.rs",
        "kernels/src/supervise/proc.rs",
        "kernels/src/cuda/runner.rs",
        "kernels/src/cuda/probe.rs",
        "kernels/src/cuda/nvrtc.rs",
    ];
    let hit = |l: &str| l.contains("unsafe {") || l.contains("unsafe fn") || l.contains("unsafe impl");
    assert_none(
        "unsafe lives only in the files the map names",
        offenders(&sources(&CODE_DIRS), &allowed, hit),
    );
}

#[test]
fn no_unbounded_channel_in_the_product() {
    let hit = |l: &str| {
        l.contains("mpsc::channel()") || l.contains("mpsc::channel::<") || l.contains("unbounded_channel")
    };
    let found = offenders(&sources(&["src", "events/src", "projections/src", "kernels/src"]), &[], hit);
    assert_none("every queue is bounded", found);
}

#[test]
fn no_anyhow_in_the_libraries() {
    let allowed = ["src/cli/", "src/main.rs", "src/demo/", "Cargo.toml"];
    let found =
        offenders(&sources(&["src", "events/src", "projections/src", "kernels/src"]), &allowed, |l| {
            l.contains("anyhow")
        });
    assert_none("anyhow lives only in the binary and the tools", found);
}

#[test]
fn no_http_serving_outside_src_http_and_src_web() {
    let allowed = ["src/http/", "src/web/"];
    let hit = |l: &str| l.contains("axum") || l.contains("hyper") || l.contains("tower_http");
    let found = offenders(&sources(&["src", "events/src", "projections/src", "kernels/src"]), &allowed, hit);
    assert_none("only src/http (and the dashboard in src/web) knows HTTP serving", found);
}

#[test]
fn no_io_and_no_clock_in_events_and_projections() {
    let hit = |l: &str| {
        ["std::fs", "std::net", "std::process", "std::env", "tokio", "SystemTime", "Instant::now", "sqlx"]
            .iter()
            .any(|needle| l.contains(needle))
    };
    let found = offenders(&sources(&["events/src", "projections/src"]), &[], hit);
    assert_none("events and projections never do I/O and never read a clock", found);
}

#[test]
fn no_task_local_or_thread_local_as_a_hidden_parameter() {
    let hit = |l: &str| l.contains("task_local!") || l.contains("thread_local!");
    assert_none(
        "no hidden parameters: what a function needs is an argument or a field",
        offenders(&sources(&CODE_DIRS), &[], hit),
    );
}

#[test]
fn the_checks_find_a_planted_offender() {
    // Each rule must be able to fail: a planted file outside the allowed paths is named.
    let dir = tempfile_dir("architecture");
    let planted = dir.join("planted.rs");
    std::fs::write(&planted, "// sqlx in a comment is fine\nlet pool = sqlx::Pool::connect(url);\n")
        .expect("write");
    let mut files: Vec<PathBuf> = Vec::new();
    walk(&dir, &mut files);
    let files: Vec<(String, String)> =
        files.iter().map(|f| (relative(&dir, f), std::fs::read_to_string(f).expect("read"))).collect();
    let found = offenders(&files, &["src/store/"], |l| l.contains("sqlx"));
    assert_eq!(found, vec!["planted.rs:2: let pool = sqlx::Pool::connect(url);".to_owned()]);
    assert!(offenders(&files, &["planted.rs"], |l| l.contains("sqlx")).is_empty());
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// A crate's modules, named by path (`http::auth`), with the text each file holds outside its
/// `#[cfg(test)] mod tests` and comments.
fn modules(src_dir: &str) -> BTreeMap<String, String> {
    let root = repo_root();
    let mut files = Vec::new();
    walk(&root.join(src_dir), &mut files);
    let mut out = BTreeMap::new();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let rel = relative(&root.join(src_dir), file);
        let mut parts: Vec<&str> = rel.trim_end_matches(".rs").split('/').collect();
        if matches!(parts.last(), Some(&("mod" | "lib" | "main"))) {
            parts.pop();
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        let code: Vec<&str> = text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect();
        out.insert(parts.join("::"), code.join("\n"));
    }
    out
}

/// `a::{b, c::{d}}` → `a::b`, `a::c::d` (whitespace already removed).
fn expand_use(tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(tree.to_owned());
        return;
    };
    let (prefix, body) = (&tree[..open], tree[open + 1..].trim_end_matches('}'));
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                expand_use(&format!("{prefix}{}", &body[start..i]), out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < body.len() {
        expand_use(&format!("{prefix}{}", &body[start..]), out);
    }
}

/// The paths a module's code names: its `use` trees, expanded, and inline `crate::`/`super::`
/// paths.
fn named_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("use ") {
        let starts_token = code[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let Some(end) = code[at..].find(';') else { continue };
        if starts_token {
            let tree: String = code[at + 4..at + end].chars().filter(|c| !c.is_whitespace()).collect();
            expand_use(&tree, &mut out);
        }
    }
    for needle in ["crate::", "super::"] {
        for (at, _) in code.match_indices(needle) {
            let path: String =
                code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            out.push(path);
        }
    }
    out
}

/// Edges `module → module it imports`, within one crate. A module naming its own ancestor is
/// not an edge (a child may use what its parent declares).
fn import_edges(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len()).rev().map(|i| segs[..i].join("::")).find(|m| mods.contains_key(m))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in mods {
        for path in named_paths(code) {
            let full = if let Some(rest) = path.strip_prefix("crate::") {
                rest.to_owned()
            } else if path.starts_with("super::") {
                let (mut base, mut rest) = (m.as_str(), path.as_str());
                while let Some(r) = rest.strip_prefix("super::") {
                    base = base.rsplit_once("::").map_or("", |(b, _)| b);
                    rest = r;
                }
                if base.is_empty() { rest.to_owned() } else { format!("{base}::{rest}") }
            } else {
                continue;
            };
            if let Some(t) = resolve(&full)
                && !t.is_empty()
                && t != *m
                && !m.starts_with(&format!("{t}::"))
            {
                edges.entry(m.clone()).or_default().insert(t);
            }
        }
    }
    edges
}

/// The import circles (strongly connected sets of two or more modules), each sorted.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are in one circle when each reaches the other; the graphs are small (a few
    // hundred modules), so reachability by search from every module is enough.
    let reach = |from: &String| -> BTreeSet<String> {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(v) = todo.pop() {
            for w in edges.get(&v).into_iter().flatten() {
                if seen.insert(w.clone()) {
                    todo.push(w.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> = edges.keys().map(|m| (m, reach(m))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for (m, r) in &reached {
        let mut circle: Vec<String> =
            r.iter().filter(|o| reached.get(o).is_some_and(|back| back.contains(*m))).cloned().collect();
        circle.sort();
        if circle.len() > 1 && !out.contains(&circle) {
            out.push(circle);
        }
    }
    out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut found = Vec::new();
    for src in ["src", "events/src", "projections/src", "kernels/src", "tools/src"] {
        for circle in circles(&import_edges(&modules(src))) {
            found.push(format!("{src}: {}", circle.join(" ↔ ")));
        }
    }
    assert_none("the module graph of every crate has no circle", found);
}

#[test]
fn the_circle_check_finds_a_planted_circle() {
    let mods: BTreeMap<String, String> = [
        ("http::auth", "use crate::http::state::AppState;"),
        ("http::state", "use super::{auth::Access, rendered};"),
        ("http::rendered", "fn f() { crate::view::render(); }"),
        ("http", "pub mod auth;"),
        ("view", "use crate::http::rendered::Cache;"),
    ]
    .into_iter()
    .map(|(m, c)| (m.to_owned(), c.to_owned()))
    .collect();
    let found = circles(&import_edges(&mods));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&vec!["http::auth".to_owned(), "http::state".to_owned()]), "{found:?}");
    assert!(found.contains(&vec!["http::rendered".to_owned(), "view".to_owned()]), "{found:?}");
}

//! ARCHITECTURE.md's invariants that a grep can check, checked: each is stated there as an
//! absence ("no `sqlx` outside `src/store`"), and each test here fails with the lines that
//! break it. The map names the few files allowed to hold each thing; so does this file.

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
        "kernels/src/supervise/proc.rs",
        "kernels/src/cuda/runner.rs",
        "kernels/src/cuda/probe.rs",
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

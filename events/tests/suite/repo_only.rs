//! The tests, build scripts and CI read only this repository: nothing under `src`, the crates,
//! `tests`, `tools`, `schemas` or `.ci` names the folder beside the checkout that once held the
//! test vectors and fixtures. A plain clone is then exactly what CI checks.
//!
//! This lives in the `assay-events` crate because it is the cheapest test binary to link.

use std::path::{Path, PathBuf};

/// Folders of the repository whose files are code, build scripts or CI steps.
const SCANNED_DIRS: [&str; 8] =
    ["src", "events", "projections", "kernels", "tools", "tests", "schemas", ".ci"];
/// File kinds that can read a path: documentation (`.md`) may mention the folder freely.
const SCANNED_EXTENSIONS: [&str; 9] = ["rs", "toml", "mjs", "js", "json", "sh", "py", "sql", "yml"];
/// A bound on the walk: the repository has a few thousand files.
const FILES_MAX: usize = 50_000;

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("events/ sits in the repository").to_path_buf()
}

fn scanned(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // `.ci/run` and other extension-less scripts are CI steps.
    let ext = path.extension().and_then(|e| e.to_str());
    match ext {
        Some(ext) => SCANNED_EXTENSIONS.contains(&ext),
        None => !name.starts_with('.'),
    }
}

pub(crate) fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && name != "node_modules" {
                walk(&path, out);
            }
        } else if scanned(&path) {
            out.push(path);
        }
        assert!(out.len() <= FILES_MAX, "more than {FILES_MAX} files under {}", dir.display());
    }
}

/// The needles are built at run time so that this file does not match itself.
fn needles() -> Vec<String> {
    let folder = ["sha", "red"].concat();
    vec![
        format!("../{folder}"),
        format!("..\\{folder}"),
        format!("{folder}/vectors"),
        format!("{folder}/fixtures"),
        format!("{folder}/peers"),
    ]
}

fn offenders() -> Vec<String> {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in SCANNED_DIRS {
        let path = root.join(dir);
        assert!(path.is_dir(), "{} is missing", path.display());
        walk(&path, &mut files);
    }
    for file in ["Cargo.toml", "rustfmt.toml"] {
        files.push(root.join(file));
    }
    lines_naming_the_folder(&root, &files)
}

fn lines_naming_the_folder(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let needles = needles();
    let mut found = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n.as_str())) {
                found.push(format!(
                    "{}:{}: {}",
                    file.strip_prefix(root).unwrap_or(file).display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn no_test_build_script_or_ci_step_reads_outside_the_repository() {
    let found = offenders();
    assert!(
        found.is_empty(),
        "these lines read the folder beside the checkout; vendor what they need:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_planted_offender() {
    // The check must be able to fail: a file that names the folder is found.
    let dir = tempfile_dir("repo-only");
    let planted = dir.join("planted.rs");
    std::fs::write(&planted, format!("let p = \"{}/vectors/x.json\";\n", needles()[0])).expect("write");
    let mut files = Vec::new();
    walk(&dir, &mut files);
    assert_eq!(files, vec![planted.clone()]);
    let found = lines_naming_the_folder(&dir, &files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("planted.rs:1:"), "{found:?}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn vendored_vectors_and_fixtures_are_in_the_repository() {
    let root = repo_root();
    for path in [
        "events/tests/vectors/README.md",
        "events/tests/vectors/rfc6962/LICENSE",
        "events/tests/vectors/rfc6962/tree.json",
        "events/tests/vectors/signed-note/LICENSE",
        "events/tests/vectors/signed-note/note.json",
        "kernels/tests/fixtures/xid/README.md",
        "kernels/tests/fixtures/xid/kmsg-sample.log",
        "kernels/tests/fixtures/xid/kmsg-sample.expected.json",
    ] {
        assert!(root.join(path).is_file(), "vendored file missing: {}", root.join(path).display());
    }
}

/// A fresh folder under the system's temporary directory (no extra dependency for one test).
pub(crate) fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("assay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

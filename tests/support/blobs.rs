//! The evidence folder beside a SQLite ledger, read as a test checks it.

use std::path::Path;

/// Every file under `root` outside `tmp/` (where unfinished uploads live): (its name, the
/// blake3 of its bytes), sorted. A blob is whole exactly when the two agree.
pub fn named_files(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "tmp" {
                out.extend(named_files(&path));
            }
        } else {
            let hash = blake3::hash(&std::fs::read(&path).expect("a blob file")).to_hex().to_string();
            out.push((entry.file_name().to_string_lossy().into_owned(), hash));
        }
    }
    out.sort();
    out
}

//! Evidence and artifact files: written to disk under the demo folder, hashed with blake3,
//! and listed as the schemas want (sorted by path, with the b3sum manifest digest), so that
//! `b3sum --check` over a run's folder verifies what the ledger recorded.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Files to write under one folder: relative path → contents.
#[derive(Debug, Default, Clone)]
pub struct FileSet {
    files: Vec<(String, Vec<u8>)>,
}

/// A written file set: the `files` list of an event and its manifest digest.
#[derive(Debug, Clone)]
pub struct Written {
    /// `[{path, blake3, bytes}]`, sorted by path.
    pub files: Value,
    /// blake3 of the b3sum manifest (`bundle_digest` / `content_digest`).
    pub digest: String,
}

impl FileSet {
    pub fn new() -> FileSet {
        FileSet::default()
    }

    pub fn add(&mut self, path: &str, contents: impl Into<Vec<u8>>) {
        self.files.push((path.to_owned(), contents.into()));
    }

    /// Writes every file under `folder` and lists them.
    pub fn write(mut self, folder: &Path) -> std::io::Result<Written> {
        self.files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.files.dedup_by(|a, b| a.0 == b.0);
        let mut manifest = String::new();
        let mut listed = Vec::with_capacity(self.files.len());
        for (path, contents) in &self.files {
            let target: PathBuf = path.split('/').fold(folder.to_path_buf(), |p, part| p.join(part));
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, contents)?;
            let digest = blake3::hash(contents).to_hex().to_string();
            manifest.push_str(&format!("{digest}  {path}\n"));
            listed.push(json!({"path": path, "blake3": digest, "bytes": contents.len()}));
        }
        Ok(Written {
            files: Value::Array(listed),
            digest: blake3::hash(manifest.as_bytes()).to_hex().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_digest_follows_the_schema_rule() {
        let dir = std::env::temp_dir().join(format!("assay-demo-evidence-{}", std::process::id()));
        let mut set = FileSet::new();
        set.add("logs/stdout.txt", "hello\n");
        set.add("metrics.jsonl", "{}\n");
        set.add("a.txt", "a");
        let written = set.write(&dir).unwrap();
        let line = |p: &str, c: &str| format!("{}  {p}\n", blake3::hash(c.as_bytes()).to_hex());
        let manifest =
            line("a.txt", "a") + &line("logs/stdout.txt", "hello\n") + &line("metrics.jsonl", "{}\n");
        assert_eq!(written.digest, blake3::hash(manifest.as_bytes()).to_hex().to_string());
        assert_eq!(written.files[1]["path"], "logs/stdout.txt");
        assert_eq!(std::fs::read(dir.join("logs").join("stdout.txt")).unwrap(), b"hello\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

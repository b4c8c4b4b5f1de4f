//! Evidence files: every regular file under a folder with its blake3 digest, and the bundle
//! digest over them.
//!
//! The bundle digest is blake3 of the b3sum manifest of the list: per file, sorted by path
//! (bytewise), the line `<blake3 hex>␠␠<path>\n`, so `b3sum --check` verifies the files.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::sink::EventSink;

/// Most files in one `evidence.captured` event (the schema's limit); larger folders are
/// recorded in several events.
pub const FILES_PER_EVENT: usize = 10_000;

/// Longest relative path recorded.
const PATH_MAX_BYTES: usize = 1024;

/// One evidence file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceFile {
    /// Path relative to the evidence folder, `/`-separated.
    pub path: String,
    /// blake3 of the contents, hex.
    pub blake3: String,
    /// Size.
    pub bytes: u64,
}

/// The b3sum manifest of `files` (which must be sorted by path).
pub fn manifest(files: &[EvidenceFile]) -> String {
    let mut text = String::new();
    for file in files {
        text.push_str(&file.blake3);
        text.push_str("  ");
        text.push_str(&file.path);
        text.push('\n');
    }
    text
}

/// blake3 of the manifest, hex.
pub fn bundle_digest(files: &[EvidenceFile]) -> String {
    blake3::hash(manifest(files).as_bytes()).to_hex().to_string()
}

/// Hashes every regular file under `root`. Returns the files sorted by path, and a warning
/// for each entry left out (symbolic links, special files, names that are not UTF-8 or hold
/// a backslash, unreadable files).
pub fn hash_folder(root: &Path) -> io::Result<(Vec<EvidenceFile>, Vec<String>)> {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a folder", root.display()),
        ));
    }
    walk(root, "", &mut files, &mut warnings);
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok((files, warnings))
}

fn walk(dir: &Path, prefix: &str, files: &mut Vec<EvidenceFile>, warnings: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            warnings.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                warnings.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let full = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            warnings.push(format!("{}: the name is not UTF-8; left out", full.display()));
            continue;
        };
        if name.contains('\\') {
            warnings.push(format!("{}: the name holds a backslash; left out", full.display()));
            continue;
        }
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) => {
                warnings.push(format!("{}: {e}", full.display()));
                continue;
            }
        };
        if kind.is_dir() {
            walk(&full, &relative, files, warnings);
        } else if kind.is_file() {
            if relative.len() > PATH_MAX_BYTES {
                warnings.push(format!(
                    "{}: the path is longer than {PATH_MAX_BYTES} bytes; left out",
                    full.display()
                ));
                continue;
            }
            match hash_file(&full) {
                Ok((blake3, bytes)) => files.push(EvidenceFile { path: relative, blake3, bytes }),
                Err(e) => warnings.push(format!("{}: {e}", full.display())),
            }
        } else {
            warnings
                .push(format!("{}: not a regular file (a link or special file); left out", full.display()));
        }
    }
}

/// blake3 and size of one file.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let (hash, bytes) = hash_reader(&mut file)?;
    Ok((hash.to_hex().to_string(), bytes))
}

/// blake3 and length of everything `reader` yields, read 64 KiB at a time
/// (`Hasher::update_reader`): blake3 hashes up to 16 of its 1 KiB chunks at once, so the 8 KiB
/// reads of `io::copy` would hash at about half its speed, with 8 times the reads.
pub fn hash_reader(reader: &mut impl io::Read) -> io::Result<(blake3::Hash, u64)> {
    let mut counted = Counted { inner: reader, bytes: 0 };
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut counted)?;
    Ok((hasher.finalize(), counted.bytes))
}

/// A reader that counts what it yields.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: io::Read> io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Has the sink keep a copy of each evidence file (at the path beside it) before any is
/// cited. A file the sink could not keep is left out (said on stderr), as an unreadable one is:
/// no recorded digest lacks its blob. A file that changed after it was hashed is recorded as the
/// bytes kept. `assay run exec --evidence` and a campaign's command cells both keep through it.
pub fn keep_files(files: Vec<(PathBuf, EvidenceFile)>, sink: &mut dyn EventSink) -> Vec<EvidenceFile> {
    let mut kept = Vec::with_capacity(files.len());
    let sources: Vec<PathBuf> = files.iter().map(|(source, _)| source.clone()).collect();
    let results = sink.keep_evidence(&sources);
    assert_eq!(results.len(), files.len(), "one result per file kept");
    for ((_, mut file), result) in files.into_iter().zip(results) {
        match result {
            Ok(None) => kept.push(file),
            Ok(Some((blake3, bytes))) => {
                if blake3 != file.blake3 {
                    eprintln!("evidence: {} changed while it was kept; recording the bytes kept", file.path);
                }
                file.blake3 = blake3;
                file.bytes = bytes;
                kept.push(file);
            }
            Err(e) => eprintln!("evidence: {}: not kept ({e}); left out", file.path),
        }
    }
    kept
}

/// `evidence.captured` data for `run`: one event per [`FILES_PER_EVENT`] files, each with
/// the bundle digest of its own list. Empty when there are no files.
pub fn evidence_events(run: &str, files: &[EvidenceFile]) -> Vec<Value> {
    files
        .chunks(FILES_PER_EVENT)
        .map(|chunk| json!({"run": run, "files": chunk, "bundle_digest": bundle_digest(chunk)}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_a_tree_in_path_order() {
        let root = std::env::temp_dir().join(format!("assay-evidence-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("logs/deep")).expect("dirs");
        std::fs::write(root.join("metrics.jsonl"), b"{}\n").expect("write");
        std::fs::write(root.join("logs/stdout.txt"), b"hello").expect("write");
        std::fs::write(root.join("logs/deep/.hidden"), b"").expect("write");
        std::os::unix::fs::symlink(root.join("metrics.jsonl"), root.join("link")).expect("symlink");
        let (files, warnings) = hash_folder(&root).expect("hash");
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["logs/deep/.hidden", "logs/stdout.txt", "metrics.jsonl"]);
        assert_eq!(files[1].blake3, blake3::hash(b"hello").to_hex().to_string());
        assert_eq!(files[1].bytes, 5);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let manifest = manifest(&files);
        assert!(manifest.starts_with(&format!("{}  logs/deep/.hidden\n", blake3::hash(b"").to_hex())));
        let events = evidence_events("r-1", &files);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["bundle_digest"], blake3::hash(manifest.as_bytes()).to_hex().to_string());
        assert_eq!(events[0]["files"][2]["path"], "metrics.jsonl");
        assert!(evidence_events("r-1", &[]).is_empty());
        assert!(hash_folder(&root.join("metrics.jsonl")).is_err());
        let _ = std::fs::remove_dir_all(root);
    }

    /// The wide reader gives blake3's hash and the exact length at every size around its
    /// 64 KiB reads, and through a reader that yields a few bytes at a time.
    #[test]
    fn hash_reader_agrees_with_blake3_at_read_boundaries() {
        for len in [0usize, 1, 1023, 1024, 65_535, 65_536, 65_537, 3 * 65_536 + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (hash, bytes) = hash_reader(&mut data.as_slice()).expect("read");
            assert_eq!((hash, bytes), (blake3::hash(&data), len as u64), "len {len}");
            let mut trickle = io::Read::chain(&data[..len / 2], &data[len / 2..]);
            let (hash, bytes) = hash_reader(&mut trickle).expect("read");
            assert_eq!((hash, bytes), (blake3::hash(&data), len as u64), "len {len}, in two parts");
        }
    }
}

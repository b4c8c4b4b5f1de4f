//! A command cell's stdout or stderr: digested whole, its tail kept, its lines read for an
//! `ASSAY_RESULT` line and for CUDA errors, and (when the campaign keeps evidence) written to a
//! spool file that is kept as a blob. Memory is bounded whatever the child prints: the tail,
//! one line, and the last result line; the spool by [`KEPT_BYTES_MAX`].

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::taxonomy::{FaultClass, OutputClassifier};

/// Bytes of a stream's end kept on the launch event.
pub const TAIL_BYTES_MAX: usize = 2048;
/// Bytes of one line looked at (the rest of a longer line is digested, not read).
const LINE_BYTES_MAX: usize = 64 * 1024;
/// Bytes read at a time.
const CHUNK_BYTES: usize = 16 * 1024;
/// Bytes of a stream written to its spool (and so kept as evidence): the first bytes of a
/// longer stream are kept, as `<stream>.head`. A bound on the scratch disk a runaway cell can
/// fill; the digest on the launch event still covers every byte.
pub const KEPT_BYTES_MAX: u64 = 1 << 30;
/// The prefix of the line a command reports its result on.
pub const RESULT_PREFIX: &str = "ASSAY_RESULT ";

/// What one stream held.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// blake3 of every byte, lower-case hex.
    pub digest: String,
    /// Bytes in all.
    pub bytes: u64,
    /// The last bytes (at most [`TAIL_BYTES_MAX`]), as text (invalid UTF-8 replaced).
    pub tail: String,
    /// The last `ASSAY_RESULT` line's JSON text.
    pub result_line: Option<String>,
    /// The CUDA error its lines name, if any.
    pub fault: Option<FaultClass>,
    /// Whether reading it failed before the end (the digest then covers what was read).
    pub read_error: Option<String>,
}

impl StreamReport {
    /// `{digest, bytes, tail}` as the launch event records it.
    pub fn data(&self) -> Value {
        json!({"digest": self.digest, "bytes": self.bytes, "tail": self.tail})
    }
}

/// A stream's bytes written to a scratch file to be kept as evidence. The file is removed
/// when the last holder drops it.
#[derive(Debug)]
pub struct Spool {
    /// The scratch file.
    pub path: PathBuf,
    /// Bytes written to it.
    pub bytes: u64,
    /// Whether it holds the whole stream (else its first [`KEPT_BYTES_MAX`] bytes).
    pub complete: bool,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads `stream` to its end (or first error).
pub fn capture(stream: impl Read) -> StreamReport {
    capture_to(stream, None).0
}

/// [`capture`], also writing the stream's first [`KEPT_BYTES_MAX`] bytes to `spool` (a new
/// file at that path). A write that fails drops the spool (removing the file): the stream is
/// then not kept, and still digested.
pub fn capture_to(
    mut stream: impl Read,
    spool: Option<(std::fs::File, PathBuf)>,
) -> (StreamReport, Option<Spool>) {
    let mut spool =
        spool.map(|(file, path)| (std::io::BufWriter::new(file), Spool { path, bytes: 0, complete: true }));
    let mut hasher = blake3::Hasher::new();
    let mut bytes = 0u64;
    let mut tail: Vec<u8> = Vec::with_capacity(TAIL_BYTES_MAX * 2);
    let mut line: Vec<u8> = Vec::new();
    let mut line_clipped = false;
    let mut result_line = None;
    let mut classifier = OutputClassifier::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut read_error = None;
    let end_line =
        |line: &mut Vec<u8>, result_line: &mut Option<String>, classifier: &mut OutputClassifier| {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\r');
            if let Some(json) = text.strip_prefix(RESULT_PREFIX) {
                *result_line = Some(json.trim().to_owned());
            } else {
                classifier.line(text);
            }
            line.clear();
        };
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        };
        let data = &chunk[..n];
        hasher.update(data);
        bytes += n as u64;
        if let Some((writer, kept)) = spool.as_mut() {
            let room = usize::try_from(KEPT_BYTES_MAX - kept.bytes).unwrap_or(usize::MAX).min(n);
            kept.complete &= room == n;
            match writer.write_all(&data[..room]) {
                Ok(()) => kept.bytes += room as u64,
                Err(_) => spool = None,
            }
        }
        tail.extend_from_slice(data);
        if tail.len() > TAIL_BYTES_MAX * 2 {
            tail.drain(..tail.len() - TAIL_BYTES_MAX);
        }
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            if !line_clipped {
                let room = LINE_BYTES_MAX - line.len();
                line.extend_from_slice(&body[..body.len().min(room)]);
                line_clipped = body.len() > room;
            }
            if ends {
                end_line(&mut line, &mut result_line, &mut classifier);
                line_clipped = false;
            }
        }
    }
    if !line.is_empty() {
        end_line(&mut line, &mut result_line, &mut classifier);
    }
    if tail.len() > TAIL_BYTES_MAX {
        tail.drain(..tail.len() - TAIL_BYTES_MAX);
    }
    // Cut at a character boundary so the tail never starts with half a character.
    let start = tail.iter().position(|&b| (b as i8) >= -0x40).unwrap_or(tail.len());
    let report = StreamReport {
        digest: hasher.finalize().to_hex().to_string(),
        bytes,
        tail: String::from_utf8_lossy(&tail[start..]).into_owned(),
        result_line,
        fault: classifier.finish(),
        read_error,
    };
    let spool = spool.and_then(|(writer, mut kept)| {
        kept.complete &= report.read_error.is_none();
        // A spool that cannot be written out whole is dropped (and removed).
        writer.into_inner().ok()?.sync_all().ok()?;
        Some(kept)
    });
    (report, spool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_everything_and_keeps_a_bounded_tail() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("ASSAY_RESULT {\"passed\": true}\nlast words");
        let report = capture(text.as_bytes());
        assert_eq!(report.bytes, text.len() as u64);
        assert_eq!(report.digest, blake3::hash(text.as_bytes()).to_hex().to_string());
        assert!(
            report.tail.len() <= TAIL_BYTES_MAX && report.tail.ends_with("last words"),
            "{}",
            report.tail
        );
        assert_eq!(report.result_line.as_deref(), Some("{\"passed\": true}"));
        assert!(report.fault.is_none());
    }

    #[test]
    fn a_huge_line_is_digested_but_not_held() {
        let mut text = vec![b'x'; 10 * LINE_BYTES_MAX];
        text.extend_from_slice(b"\nASSAY_RESULT {\"passed\": false}\n");
        let report = capture(&text[..]);
        assert_eq!(report.bytes, text.len() as u64);
        assert_eq!(report.result_line.as_deref(), Some("{\"passed\": false}"));
    }

    #[test]
    fn the_spool_holds_every_byte() {
        let dir = std::env::temp_dir().join(format!("assay-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("stdout");
        let file = std::fs::File::create(&path).expect("create");
        let text = "ASSAY_RESULT {}\n".repeat(5000);
        let (report, spool) = capture_to(text.as_bytes(), Some((file, path.clone())));
        let spool = spool.expect("spooled");
        assert!(spool.complete);
        assert_eq!(spool.bytes, text.len() as u64);
        assert_eq!(std::fs::read(&path).expect("read"), text.as_bytes());
        assert_eq!(report.digest, blake3::hash(text.as_bytes()).to_hex().to_string());
        drop(spool);
        assert!(!path.exists(), "a dropped spool is removed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_tail_starts_on_a_character() {
        let text = "é".repeat(TAIL_BYTES_MAX);
        let report = capture(text.as_bytes());
        assert!(report.tail.chars().all(|c| c == 'é'), "{:?}", &report.tail[..8]);
    }
}

//! A command cell's evidence: its whole stdout and stderr (as spooled, see
//! [`super::capture::KEPT_BYTES_MAX`]) and the `outputs` its table declares, kept in the
//! ledger's evidence store through the sink, then cited by one `evidence.captured` for the
//! launch. Files are kept first ([`keep_files`]), so a recorded digest always has its blob.
//!
//! Paths in the event are `launch-<n>/stdout`, `launch-<n>/stderr` (`.head` when only the
//! stream's first bytes were kept) and `launch-<n>/outputs/<path>`, `<n>` being the launch's
//! ordinal in the run. An empty stream is not kept (the launch's digest says it was empty); an
//! output not found after the cell ends is said on stderr and left out, and so is one the
//! launch did not write (the same file, size and modification time as before it started: a
//! previous run's file must not be kept as this launch's evidence).

use assay_events::EventType;

use super::command::CommandCell;
use super::command_run::CommandLaunch;
use crate::sink::{EventSink, SinkError};
use crate::supervise::{EvidenceFile, evidence_events, hash_file, keep_files};

/// What a declared output was before a launch: (device, inode, size, modification time), or
/// None where there was no regular file.
type Stamp = Option<(u64, u64, u64, std::time::SystemTime)>;

/// The declared outputs' stamps before a launch, to tell afterwards which ones it wrote.
pub struct OutputsBefore(Vec<Stamp>);

fn stamp(path: &std::path::Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some((meta.dev(), meta.ino(), meta.len(), meta.modified().ok()?))
}

/// Takes the stamps of `cell`'s declared outputs; call right before the launch.
pub fn outputs_before(cell: &CommandCell) -> OutputsBefore {
    OutputsBefore(cell.outputs.iter().map(|o| stamp(&cell.cwd.join(o))).collect())
}

/// Keeps `done`'s evidence and records the `evidence.captured` citing it, when the sink keeps
/// evidence. Returns the files cited.
pub fn keep_launch(
    sink: &mut dyn EventSink,
    run: &str,
    launch: u64,
    cell: &CommandCell,
    done: &CommandLaunch,
    before: &OutputsBefore,
) -> Result<usize, SinkError> {
    if !sink.keeps_evidence() {
        return Ok(0);
    }
    let mut files = Vec::new();
    let streams = ["stdout", "stderr"].iter().zip(&done.last.spools);
    for (name, spool) in streams.filter_map(|(name, spool)| Some((name, spool.as_ref()?))) {
        if spool.bytes == 0 {
            continue;
        }
        let suffix = if spool.complete { "" } else { ".head" };
        let path = format!("launch-{launch}/{name}{suffix}");
        match hash_file(&spool.path) {
            Ok((blake3, bytes)) => files.push((spool.path.clone(), EvidenceFile { path, blake3, bytes })),
            Err(e) => eprintln!("evidence: {path}: {e}; left out"),
        }
    }
    assert_eq!(before.0.len(), cell.outputs.len(), "one stamp per declared output");
    for (output, was) in cell.outputs.iter().zip(&before.0) {
        let source = cell.cwd.join(output);
        let path = format!("launch-{launch}/outputs/{output}");
        if was.is_some() && stamp(&source) == *was {
            eprintln!(
                "evidence: {} ({} launch {launch}): not written by this launch (unchanged since before it ran); left out",
                source.display(),
                cell.name
            );
            continue;
        }
        match std::fs::metadata(&source) {
            Ok(meta) if meta.is_file() => match hash_file(&source) {
                Ok((blake3, bytes)) => files.push((source, EvidenceFile { path, blake3, bytes })),
                Err(e) => eprintln!("evidence: {}: {e}; left out", source.display()),
            },
            Ok(_) => eprintln!("evidence: {}: not a regular file; left out", source.display()),
            Err(e) => {
                eprintln!("evidence: {} ({} launch {launch}): {e}; left out", source.display(), cell.name)
            }
        }
    }
    // The event lists its files sorted by path (the bundle digest is over that order).
    files.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    let kept = keep_files(files, sink);
    let subject = format!("run/{run}");
    for data in evidence_events(run, &kept) {
        sink.emit(EventType::EvidenceCaptured.as_str(), &subject, data)?;
    }
    Ok(kept.len())
}

//! `assay verify-bundle FILE` with `FILE.evidence.tar`: the evidence checked offline against
//! the bundle's own signed `evidence.captured` events.
//!
//! Every `blobs/<blake3>` entry must hash to its name; `manifest.json` must list exactly the
//! files those events record (so a manifest can neither add nor drop a file); every recorded
//! file must be in the tar, whole, at its recorded size. Each missing or corrupt file is named.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Serialize;

use super::evidence_tar::{BLOBS_DIR, EvidenceFile, EvidenceManifest, MANIFEST};
use crate::blobs::BlobName;

/// Largest manifest read.
const MANIFEST_BYTES_MAX: u64 = 64 << 20;
/// Problems listed at most (the count goes on).
const PROBLEMS_MAX: usize = 1000;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EvidenceReport {
    pub ok: bool,
    /// Files the bundle's events record.
    pub files: u64,
    /// Blobs in the tar whose bytes hash to their names.
    pub blobs_whole: u64,
    /// Problems found (at most [`PROBLEMS_MAX`] listed).
    pub problems: Vec<String>,
    /// All problems found.
    pub problem_count: u64,
}

impl EvidenceReport {
    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_MAX {
            self.problems.push(p);
        }
    }
}

/// Checks the tar at `tar` against `expected`, the files of the bundle's verified
/// `evidence.captured` events.
pub fn check_evidence_tar(tar: &Path, expected: &[EvidenceFile]) -> EvidenceReport {
    let mut report = EvidenceReport { files: expected.len() as u64, ..EvidenceReport::default() };
    // Blob name → bytes of the entries that hashed to their names.
    let mut whole: BTreeMap<String, u64> = BTreeMap::new();
    let mut corrupt: BTreeSet<String> = BTreeSet::new();
    let mut manifest: Option<EvidenceManifest> = None;
    match std::fs::File::open(tar) {
        Ok(file) => {
            let entries_max = expected.len() + 1;
            if let Err(e) =
                read_entries(file, entries_max, &mut whole, &mut corrupt, &mut manifest, &mut report)
            {
                report.problem(format!("{}: {e}", tar.display()));
            }
        }
        Err(e) => report.problem(format!("{}: {e}", tar.display())),
    }
    match manifest {
        None => report.problem(format!("{MANIFEST}: not in the tar")),
        Some(m) => {
            let listed: BTreeSet<&EvidenceFile> = m.files.iter().collect();
            let recorded: BTreeSet<&EvidenceFile> = expected.iter().collect();
            for f in recorded.difference(&listed) {
                report.problem(format!(
                    "{MANIFEST}: drops {} ({}) of evidence event {}",
                    f.path, f.blake3, f.event
                ));
            }
            for f in listed.difference(&recorded) {
                report.problem(format!(
                    "{MANIFEST}: lists {} ({}) of event {}, which no evidence.captured event of the bundle records",
                    f.path, f.blake3, f.event
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for f in expected {
        if !seen.insert(&f.blake3) || corrupt.contains(&f.blake3) {
            continue;
        }
        match whole.get(&f.blake3) {
            None => report.problem(format!(
                "{BLOBS_DIR}{}: missing ({}, evidence event {})",
                f.blake3, f.path, f.event
            )),
            Some(bytes) if *bytes != f.bytes => report.problem(format!(
                "{BLOBS_DIR}{}: corrupt: {bytes} bytes, {} recorded ({}, evidence event {})",
                f.blake3, f.bytes, f.path, f.event
            )),
            Some(_) => report.blobs_whole += 1,
        }
    }
    report.ok = report.problem_count == 0;
    report
}

/// Reads every entry of the tar: the manifest parsed, each blob hashed.
fn read_entries(
    file: std::fs::File,
    entries_max: usize,
    whole: &mut BTreeMap<String, u64>,
    corrupt: &mut BTreeSet<String>,
    manifest: &mut Option<EvidenceManifest>,
    report: &mut EvidenceReport,
) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(BufReader::new(file));
    for (i, entry) in archive.entries()?.enumerate() {
        if i >= entries_max {
            report.problem(format!(
                "more than {entries_max} entries: the bundle's evidence is {} blob(s) and the manifest",
                entries_max - 1
            ));
            return Ok(());
        }
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == MANIFEST {
            if manifest.is_some() {
                report.problem(format!("{MANIFEST}: twice in the tar"));
                continue;
            }
            let mut text = Vec::new();
            (&mut entry).take(MANIFEST_BYTES_MAX + 1).read_to_end(&mut text)?;
            if text.len() as u64 > MANIFEST_BYTES_MAX {
                report.problem(format!("{MANIFEST}: larger than {MANIFEST_BYTES_MAX} bytes"));
                continue;
            }
            match serde_json::from_slice(&text) {
                Ok(m) => *manifest = Some(m),
                Err(e) => report.problem(format!("{MANIFEST}: not a manifest: {e}")),
            }
            continue;
        }
        let Some(blob) = name.strip_prefix(BLOBS_DIR).and_then(|n| BlobName::parse(n).ok()) else {
            report.problem(format!("{name}: not {MANIFEST} nor {BLOBS_DIR}<blake3>"));
            continue;
        };
        let (found, bytes) = BlobName::of_reader(&mut entry)?;
        let hex = blob.to_hex();
        if whole.contains_key(&hex) || corrupt.contains(&hex) {
            report.problem(format!("{name}: twice in the tar"));
        } else if found != blob {
            report.problem(format!("{name}: corrupt: its {bytes} bytes hash to {found}"));
            corrupt.insert(hex);
        } else {
            whole.insert(hex, bytes);
        }
    }
    Ok(())
}

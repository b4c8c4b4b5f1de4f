//! `assay export bundle --with-evidence`: beside the bundle, `FILE.evidence.tar` holds every
//! file of every `evidence.captured` event the bundle holds, so an auditor can read the
//! evidence itself, not only its digests.
//!
//! The tar holds `manifest.json` first (one row per file of each event: the event's digest,
//! the file's path, blake3 and recorded size), then each distinct blob once as
//! `blobs/<blake3>`, streamed from the evidence store a chunk at a time and hashed as it goes.
//! No tar is written while a cited blob is missing from the store, has another size than the
//! one recorded, or does not hash to its name: an error names each such file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_events::EventType;
use assay_events::keys::SignerKey;
use assay_events::record::Record;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::ExportError;
use super::bundle::{BundleSummary, plan, write_files};
use super::source::LedgerSource;
use crate::blobs::BlobName;
use crate::blobs::cited::cited_in;
use crate::blobs::source::{BlobSource, Download, Piece};
use crate::http::bundle::tar_stream::{TRAILER_BYTES, head, padding};

/// The manifest's name in the tar.
pub const MANIFEST: &str = "manifest.json";
/// The folder of the blobs in the tar.
pub const BLOBS_DIR: &str = "blobs/";

/// One file of one `evidence.captured` event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceFile {
    /// The event's digest (blake3 of its payload, hex).
    pub event: String,
    pub path: String,
    pub blake3: String,
    /// Its size as the event records it.
    pub bytes: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceManifest {
    pub files: Vec<EvidenceFile>,
}

/// What `--with-evidence` wrote.
#[derive(Debug, Clone)]
pub struct EvidenceSummary {
    pub path: PathBuf,
    /// Rows of the manifest.
    pub files: usize,
    /// Distinct blobs in the tar.
    pub blobs: usize,
    /// Bytes of blob data in the tar.
    pub bytes: u64,
}

/// The tar beside `bundle`: `<bundle>.evidence.tar`.
pub fn evidence_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_owned();
    s.push(".evidence.tar");
    PathBuf::from(s)
}

/// The files of every `evidence.captured` among `records`, sorted.
pub fn files_of<'a>(records: impl Iterator<Item = &'a Record>) -> Result<Vec<EvidenceFile>, ExportError> {
    let mut files = Vec::new();
    for r in records.filter(|r| r.event_type() == Some(EventType::EvidenceCaptured)) {
        let cited = cited_in(&r.payload).map_err(|e| {
            ExportError::Ledger(format!("seq {}: an evidence.captured without its files: {e}", r.seq))
        })?;
        let event = r.digest.to_hex();
        files.extend(cited.into_iter().map(|(name, c)| EvidenceFile {
            event: event.clone(),
            path: c.path,
            blake3: name.to_hex(),
            bytes: c.bytes,
        }));
    }
    files.sort();
    Ok(files)
}

/// The evidence tar of some files, checked against the store and laid out: its exact length is
/// known before its first byte (the HTTP bundle sends it inside its own tar, with a
/// `Content-Length`), and [`EvidenceTar::next`] produces it a piece at a time, each blob read a
/// chunk at a time and hashed as it goes.
pub struct EvidenceTar {
    blobs: BlobSource,
    /// The manifest's entry (header, bytes, padding), until it is produced.
    manifest: Option<Vec<u8>>,
    /// Each distinct blob once, with the citation whose recorded size it must have.
    pending: std::collections::VecDeque<(BlobName, EvidenceFile)>,
    current: Option<Reading>,
    trailer_sent: bool,
    bytes: u64,
    files: usize,
    distinct: usize,
    blob_bytes: u64,
    mtime: u64,
}

/// The blob being produced.
struct Reading {
    name: BlobName,
    file: EvidenceFile,
    chunks: Download,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl EvidenceTar {
    /// Lays out the tar of `files` (modified at `mtime`, Unix seconds). An error names every
    /// cited blob that is missing from `blobs` or stored with another size than recorded.
    pub async fn plan(
        blobs: BlobSource,
        files: &[EvidenceFile],
        mtime: u64,
    ) -> Result<EvidenceTar, ExportError> {
        // Each distinct blob once, with the size its first citation records and the file it is.
        let mut distinct: BTreeMap<BlobName, &EvidenceFile> = BTreeMap::new();
        for f in files {
            let name = BlobName::parse(&f.blake3).map_err(|e| ExportError::Ledger(e.to_string()))?;
            distinct.entry(name).or_insert(f);
        }
        let mut problems = Vec::new();
        for (name, f) in &distinct {
            match blobs.size(name).await.map_err(|e| ExportError::Invalid(e.to_string()))? {
                None => problems
                    .push(format!("{name} ({}, event {}): missing from the evidence store", f.path, f.event)),
                Some(bytes) if bytes != f.bytes => problems.push(format!(
                    "{name} ({}, event {}): {bytes} bytes stored, {} recorded",
                    f.path, f.event, f.bytes
                )),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(ExportError::Evidence(format!(
                "{} cited evidence file(s) cannot go in the bundle; nothing written:\n{}",
                problems.len(),
                problems.join("\n")
            )));
        }
        let io = |e: std::io::Error| ExportError::Invalid(format!("the evidence tar: {e}"));
        let text = serde_json::to_vec_pretty(&EvidenceManifest { files: files.to_vec() })
            .map_err(|e| ExportError::Invalid(format!("the evidence manifest: {e}")))?;
        let mut manifest = head(MANIFEST, text.len() as u64, mtime).map_err(io)?;
        manifest.extend_from_slice(&text);
        manifest.resize(manifest.len() + padding(text.len() as u64) as usize, 0);
        let mut bytes = manifest.len() as u64 + TRAILER_BYTES;
        let mut blob_bytes = 0u64;
        for (name, f) in &distinct {
            bytes += head(&format!("{BLOBS_DIR}{name}"), f.bytes, mtime).map_err(io)?.len() as u64;
            bytes += f.bytes + padding(f.bytes);
            blob_bytes += f.bytes;
        }
        Ok(EvidenceTar {
            blobs,
            manifest: Some(manifest),
            distinct: distinct.len(),
            pending: distinct.into_iter().map(|(name, f)| (name, f.clone())).collect(),
            current: None,
            trailer_sent: false,
            bytes,
            files: files.len(),
            blob_bytes,
            mtime,
        })
    }

    /// Bytes of the whole tar.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next piece of the tar; `None` after its end. A blob that is gone, longer than
    /// recorded, or whose bytes do not hash to its name is an error naming it: the tar is then
    /// not whole, and must not be kept.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, ExportError> {
        if let Some(manifest) = self.manifest.take() {
            return Ok(Some(manifest));
        }
        loop {
            if let Some(r) = self.current.as_mut() {
                let damaged = |detail: String| {
                    ExportError::Evidence(format!(
                        "{} ({}, event {}): {detail}; nothing written",
                        r.name, r.file.path, r.file.event
                    ))
                };
                // A store that fails mid-read leaves the tar as unwritable as damaged bytes do.
                let piece = r.chunks.next().await.map_err(|e| damaged(e.to_string()))?;
                match piece {
                    Piece::Damaged(detail) => return Err(damaged(detail)),
                    Piece::Bytes(chunk) => {
                        r.bytes += chunk.len() as u64;
                        if r.bytes > r.file.bytes {
                            return Err(damaged(format!("longer than the {} bytes recorded", r.file.bytes)));
                        }
                        r.hasher.update(&chunk);
                        return Ok(Some(chunk));
                    }
                    Piece::End => {
                        let found = BlobName::of_hash(&r.hasher);
                        if r.bytes != r.file.bytes || found != r.name {
                            return Err(damaged(format!("the stored bytes ({}) hash to {found}", r.bytes)));
                        }
                        let pad = vec![0u8; padding(r.bytes) as usize];
                        self.current = None;
                        if !pad.is_empty() {
                            return Ok(Some(pad));
                        }
                        continue;
                    }
                }
            }
            let Some((name, file)) = self.pending.pop_front() else {
                if self.trailer_sent {
                    return Ok(None);
                }
                self.trailer_sent = true;
                return Ok(Some(vec![0u8; TRAILER_BYTES as usize]));
            };
            let opened = self.blobs.open(&name).await.map_err(|e| ExportError::Invalid(e.to_string()))?;
            let chunks = opened.ok_or_else(|| {
                ExportError::Evidence(format!(
                    "{name} ({}, event {}): missing from the evidence store; nothing written",
                    file.path, file.event
                ))
            })?;
            let head = head(&format!("{BLOBS_DIR}{name}"), file.bytes, self.mtime)
                .map_err(|e| ExportError::Invalid(format!("the evidence tar: {e}")))?;
            self.current = Some(Reading { name, file, chunks, hasher: blake3::Hasher::new(), bytes: 0 });
            return Ok(Some(head));
        }
    }
}

/// Builds the bundle of `slug` as [`super::export_bundle`] does and, beside it, its evidence
/// tar from `blobs`. When a cited blob is missing or damaged nothing is written.
pub async fn export_bundle_with_evidence<S: LedgerSource>(
    src: &S,
    blobs: BlobSource,
    slug: &str,
    ledger_key: &SignerKey,
    out: &Path,
    now: &str,
) -> Result<(BundleSummary, EvidenceSummary), ExportError> {
    let plan = plan(src, slug, &ledger_key.verifier(), |_| None).await?;
    let files = files_of(plan.cited().map(|(r, _)| r))?;
    let bundle = plan.sign(ledger_key, now);
    let tar = evidence_path(out);
    let evidence = write_tar(blobs, &files, &tar).await?;
    let out = out.to_owned();
    let written = tokio::task::spawn_blocking(move || write_files(&bundle, out)).await;
    let written = match written {
        Ok(summary) => summary,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ExportError::Invalid(format!("writing the bundle was cancelled: {e}"))),
    };
    if written.is_err() {
        let _ = std::fs::remove_file(&tar);
    }
    Ok((written?, evidence))
}

/// Writes the tar of `files` to `out` (through a temporary name, renamed once whole).
pub async fn write_tar(
    blobs: BlobSource,
    files: &[EvidenceFile],
    out: &Path,
) -> Result<EvidenceSummary, ExportError> {
    let mtime = crate::clock::now_ns().max(0) as u64 / 1_000_000_000;
    let tar = EvidenceTar::plan(blobs, files, mtime).await?;
    let (files, blobs, bytes) = (tar.files, tar.distinct, tar.blob_bytes);
    let partial = {
        let mut s = out.as_os_str().to_owned();
        s.push(".partial");
        PathBuf::from(s)
    };
    match stream(tar, &partial).await {
        Ok(()) => {
            tokio::fs::rename(&partial, out).await.map_err(|e| ExportError::io(out, e))?;
            Ok(EvidenceSummary { path: out.to_owned(), files, blobs, bytes })
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

/// Writes `tar` to `path`, synced.
async fn stream(mut tar: EvidenceTar, path: &Path) -> Result<(), ExportError> {
    let io = |e| ExportError::io(path, e);
    let file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut w = tokio::io::BufWriter::new(file);
    while let Some(piece) = tar.next().await? {
        w.write_all(&piece).await.map_err(io)?;
    }
    w.flush().await.map_err(io)?;
    w.into_inner().sync_all().await.map_err(io)?;
    Ok(())
}

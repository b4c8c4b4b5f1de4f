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
use crate::blobs::cited::cited_in;
use crate::blobs::{BlobName, BlobReader, BlobStore};
use crate::client::Client;
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

/// Where the blobs come from: the ledger's store, or a server's `GET /v1/blobs/`.
#[derive(Clone, Copy)]
pub enum Blobs<'a> {
    Store(&'a BlobStore),
    Server(&'a Client),
}

enum Chunks {
    Store(BlobReader),
    Server(reqwest::Response),
}

impl Chunks {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self {
            Chunks::Store(r) => r.next_chunk().await.map_err(|e| e.to_string()),
            Chunks::Server(r) => r.chunk().await.map(|c| c.map(|b| b.to_vec())).map_err(|e| e.to_string()),
        }
    }
}

impl Blobs<'_> {
    async fn size(&self, name: &BlobName) -> Result<Option<u64>, ExportError> {
        match self {
            Blobs::Store(s) => {
                s.size(name).await.map_err(|e| ExportError::Invalid(format!("the evidence store: {e}")))
            }
            Blobs::Server(c) => {
                c.blob_size(name).await.map_err(|e| ExportError::Invalid(format!("the server: {e}")))
            }
        }
    }

    async fn open(&self, name: &BlobName) -> Result<Option<Chunks>, ExportError> {
        match self {
            Blobs::Store(s) => Ok(s
                .read(name, 0, u64::MAX)
                .await
                .map_err(|e| ExportError::Invalid(format!("the evidence store: {e}")))?
                .map(Chunks::Store)),
            Blobs::Server(c) => Ok(c
                .get_blob(name)
                .await
                .map_err(|e| ExportError::Invalid(format!("the server: {e}")))?
                .map(Chunks::Server)),
        }
    }
}

/// Builds the bundle of `slug` as [`super::export_bundle`] does and, beside it, its evidence
/// tar from `blobs`. When a cited blob is missing or damaged nothing is written.
pub async fn export_bundle_with_evidence<S: LedgerSource>(
    src: &S,
    blobs: Blobs<'_>,
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
    blobs: Blobs<'_>,
    files: &[EvidenceFile],
    out: &Path,
) -> Result<EvidenceSummary, ExportError> {
    // Each distinct blob once, with the size its first citation records and the file it is.
    let mut distinct: BTreeMap<BlobName, &EvidenceFile> = BTreeMap::new();
    for f in files {
        let name = BlobName::parse(&f.blake3).map_err(|e| ExportError::Ledger(e.to_string()))?;
        distinct.entry(name).or_insert(f);
    }
    let mut problems = Vec::new();
    for (name, f) in &distinct {
        match blobs.size(name).await? {
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
    let partial = {
        let mut s = out.as_os_str().to_owned();
        s.push(".partial");
        PathBuf::from(s)
    };
    let result = stream(blobs, files, &distinct, &partial).await;
    match result {
        Ok(bytes) => {
            tokio::fs::rename(&partial, out).await.map_err(|e| ExportError::io(out, e))?;
            Ok(EvidenceSummary { path: out.to_owned(), files: files.len(), blobs: distinct.len(), bytes })
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

/// Writes the manifest and every blob to `path`; the bytes of blob data written.
async fn stream(
    blobs: Blobs<'_>,
    files: &[EvidenceFile],
    distinct: &BTreeMap<BlobName, &EvidenceFile>,
    path: &Path,
) -> Result<u64, ExportError> {
    let io = |e| ExportError::io(path, e);
    let mtime = crate::clock::now_ns().max(0) as u64 / 1_000_000_000;
    let file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut w = tokio::io::BufWriter::new(file);
    let manifest = serde_json::to_vec_pretty(&EvidenceManifest { files: files.to_vec() })
        .map_err(|e| ExportError::Invalid(format!("the evidence manifest: {e}")))?;
    entry(&mut w, MANIFEST, &manifest, mtime).await.map_err(io)?;
    let mut total = 0u64;
    for (name, f) in distinct {
        let damaged = |detail: String| {
            ExportError::Evidence(format!(
                "{name} ({}, event {}): {detail}; nothing written",
                f.path, f.event
            ))
        };
        let mut chunks =
            blobs.open(name).await?.ok_or_else(|| damaged("missing from the evidence store".into()))?;
        w.write_all(&head(&format!("{BLOBS_DIR}{name}"), f.bytes, mtime).map_err(io)?).await.map_err(io)?;
        let (mut hasher, mut bytes) = (blake3::Hasher::new(), 0u64);
        while let Some(chunk) = chunks.next().await.map_err(&damaged)? {
            bytes += chunk.len() as u64;
            if bytes > f.bytes {
                return Err(damaged(format!("longer than the {} bytes recorded", f.bytes)));
            }
            hasher.update(&chunk);
            w.write_all(&chunk).await.map_err(io)?;
        }
        let found = BlobName::of_hash(&hasher);
        if bytes != f.bytes || found != *name {
            return Err(damaged(format!("the stored bytes ({bytes}) hash to {found}")));
        }
        w.write_all(&vec![0u8; padding(bytes) as usize]).await.map_err(io)?;
        total += bytes;
    }
    w.write_all(&[0u8; TRAILER_BYTES as usize]).await.map_err(io)?;
    w.flush().await.map_err(io)?;
    w.into_inner().sync_all().await.map_err(io)?;
    Ok(total)
}

/// One small entry written whole.
async fn entry<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    name: &str,
    data: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    w.write_all(&head(name, data.len() as u64, mtime)?).await?;
    w.write_all(data).await?;
    w.write_all(&vec![0u8; padding(data.len() as u64) as usize]).await
}

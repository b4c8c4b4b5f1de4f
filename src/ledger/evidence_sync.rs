//! `evidence.synced`: the ledger's own fact that every file an `evidence.captured` lists is in
//! the evidence store (`crate::blobs`), which the evidence gate reads
//! (`control.evidence_sync`). Presence is looked up here, before a request is queued, so the
//! sequencer does no I/O for it: [`Ledger::submit`] checks the files of each
//! `evidence.captured` it queues (the sequencer appends the fact right after it when all are
//! stored), and [`Ledger::sync_evidence`] checks an event already in the log, for files put
//! after it was appended. Presence, once recorded, stays true: blobs the log cites are never
//! collected (`assay evidence gc`); `assay evidence verify` finds one lost since.

use std::fmt::Write as _;

use assay_events::{EventType, Hash32};
use tokio::sync::oneshot;

use super::sequencer::Request;
use super::{AppendError, AppendOutcome, Ledger, Prepared};
use crate::blobs::stored::{MissingFile, Presence, presence};
use crate::blobs::{BlobError, BlobStore};
use crate::store::{CALL_TIMEOUT, StoreError};

/// The ledger's `evidence.synced` for one `evidence.captured`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceSync {
    /// The `evidence.synced` record.
    pub seq: u64,
    pub digest: Hash32,
    /// True when the log already held it (nothing was appended).
    pub existed: bool,
    /// The files found stored.
    pub files: u64,
}

/// Why `evidence.synced` was not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error("this ledger was opened without its evidence store")]
    NoEvidenceStore,
    #[error("the log holds no event with digest {0}")]
    NotFound(Hash32),
    #[error("event {digest} is a {ty}, not an evidence.captured")]
    NotEvidence { digest: Hash32, ty: String },
    #[error("{} of the {files} files of evidence {digest} are not in the evidence store: {}", .missing, list(.named, *.missing))]
    FilesMissing { digest: Hash32, files: u64, missing: u64, named: Vec<MissingFile> },
    #[error("the evidence store: {0}")]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// `path (blake3 …, not stored)`, …, and how many more.
fn list(named: &[MissingFile], missing: u64) -> String {
    let mut text = String::new();
    for (i, f) in named.iter().enumerate() {
        let what = match f.stored_bytes {
            None => "not stored".to_owned(),
            Some(b) => format!("stored with {b} bytes, not the size recorded"),
        };
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(text, "{sep}{} (blake3 {}, {what})", f.path, f.blake3);
    }
    let more = missing.saturating_sub(named.len() as u64);
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}

/// The files of `data` (an `evidence.captured`'s) found stored, all of them; `None` when one
/// is not, or the store could not say in time (the fact is then left for a later sync).
async fn all_stored(blobs: &BlobStore, data: &serde_json::Value) -> Option<u64> {
    match tokio::time::timeout(CALL_TIMEOUT, presence(blobs, data)).await {
        Ok(Ok(p)) => p.stored(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not look up evidence files; evidence.synced is left for a sync");
            None
        }
        Err(_) => {
            tracing::warn!("looking up evidence files timed out; evidence.synced is left for a sync");
            None
        }
    }
}

impl Ledger {
    /// Per item, for an `evidence.captured` whose files are all in the evidence store, how
    /// many (see [`Request::stored`]); empty without an evidence store.
    pub(super) async fn evidence_stored(&self, items: &[Prepared]) -> Vec<Option<u64>> {
        let Some(blobs) = &self.inner.options.evidence else { return Vec::new() };
        let mut stored = Vec::with_capacity(items.len());
        for item in items {
            stored.push(match item.event.event_type() {
                Some(EventType::EvidenceCaptured) => all_stored(blobs, &item.event.data).await,
                _ => None,
            });
        }
        stored
    }

    /// Records `evidence.synced` for the `evidence.captured` with digest `evidence` once every
    /// file it lists is in the evidence store, with the size it records (for files put after
    /// the event was appended). Idempotent: a fact already in the log is returned as it is.
    pub async fn sync_evidence(&self, evidence: Hash32) -> Result<EvidenceSync, SyncError> {
        let blobs = self.inner.options.evidence.as_ref().ok_or(SyncError::NoEvidenceStore)?;
        let stored =
            self.inner.store.record_by_digest(&evidence).await?.ok_or(SyncError::NotFound(evidence))?;
        if stored.event_type() != Some(EventType::EvidenceCaptured) {
            return Err(SyncError::NotEvidence { digest: evidence, ty: stored.ty.clone() });
        }
        let record = stored.to_record()?;
        let files = match presence(blobs, &record.event.data).await? {
            Presence::Stored { files } => files,
            Presence::Missing { files, missing, named } => {
                return Err(SyncError::FilesMissing { digest: evidence, files, missing, named });
            }
        };
        let (reply, rx) = oneshot::channel();
        let request = Request { items: Vec::new(), stored: Vec::new(), sync: Some((evidence, files)), reply };
        self.inner.tx.send(request).await.map_err(|_| AppendError::ShuttingDown)?;
        let outcome: AppendOutcome = rx.await.map_err(|_| AppendError::ShuttingDown)??;
        let ack = outcome.acks.first().ok_or(SyncError::NotFound(evidence))?;
        Ok(EvidenceSync { seq: ack.seq, digest: ack.digest, existed: ack.existed, files })
    }
}

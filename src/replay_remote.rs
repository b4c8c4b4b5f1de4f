//! Replay through a server: the projections folded from the records `GET /v1/events` pages
//! out, for commands that read a ledger they cannot open (`assay audit
//! --recompute-from-evidence --server`). Each record is rebuilt from its payload bytes and
//! envelope, its hash chain recomputed from genesis (so the records are the ledger's, hashes
//! included); like [`crate::replay`], this folds state and checks no signature.

use assay_events::Hash32;
use assay_events::record::Record;
use assay_projections::Projections;

use crate::client::{Client, ClientError};
use crate::view::RecordView;

/// Records per page (the server's limit).
const PAGE_RECORDS: u32 = 1000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteReplayError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the server sent record {seq} that cannot be read: {problem}")]
    Unreadable { seq: u64, problem: String },
    #[error("the server sent record {found} where record {expected} was due")]
    OutOfOrder { expected: u64, found: u64 },
}

/// The record `view` shows, chained after `prev_hash`.
pub fn record_of(view: &RecordView, prev_hash: Hash32) -> Result<Record, RemoteReplayError> {
    let bad = |problem: String| RemoteReplayError::Unreadable { seq: view.seq, problem };
    let envelope: serde_json::Value =
        serde_json::from_str(view.envelope.get()).map_err(|e| bad(format!("envelope: {e}")))?;
    let signatures =
        envelope.get("signatures").ok_or_else(|| bad("the envelope has no signatures".into()))?;
    let signatures = assay_events::dsse::signatures_from_json(signatures.to_string().as_bytes())
        .map_err(|e| bad(format!("signatures: {e}")))?;
    let received_at_ns = chrono::DateTime::parse_from_rfc3339(&view.received_at)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| bad(format!("received_at {:?} is not an RFC 3339 time", view.received_at)))?;
    let payload = view.event.get().as_bytes().to_vec();
    let record = Record::new(view.seq, received_at_ns, payload, signatures, prev_hash)
        .map_err(|e| bad(e.to_string()))?;
    if record.digest.to_hex() != view.digest {
        return Err(bad(format!(
            "its payload hashes to {}, not the digest {} sent",
            record.digest, view.digest
        )));
    }
    Ok(record)
}

/// Folds every record the server holds; `progress(done)` after each page.
pub async fn replay(
    client: &Client,
    mut progress: impl FnMut(u64),
) -> Result<Projections, RemoteReplayError> {
    let mut projections = Projections::new();
    let (mut next, mut prev_hash) = (0u64, Hash32::ZERO);
    loop {
        let page = client.events(next, PAGE_RECORDS, None, None).await?;
        for view in &page.records {
            if view.seq != next {
                return Err(RemoteReplayError::OutOfOrder { expected: next, found: view.seq });
            }
            let record = record_of(view, prev_hash)?;
            projections.apply(&record);
            prev_hash = record.record_hash;
            next += 1;
        }
        progress(next);
        match page.next {
            Some(from) if from == next => {}
            Some(from) => return Err(RemoteReplayError::OutOfOrder { expected: next, found: from }),
            None => return Ok(projections),
        }
    }
}

//! Replay: the projections as of any seq, folded from the log. Records are decoded in
//! parallel page by page and folded in order.

use assay_events::record::Record;
use assay_projections::Projections;
use rayon::prelude::*;

use crate::store::{Store, StoreError, StoredRecord};

/// Records read per query.
const PAGE_RECORDS: u32 = 8192;

/// Folds records `0..=at` (all when `at` is None); `progress(done, total)` after each page.
pub async fn replay(
    store: &Store,
    at: Option<u64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Projections, StoreError> {
    let head = store.head().await?.map_or(0, |h| h.size);
    let end = at.map_or(head, |a| a.saturating_add(1).min(head));
    let mut projections = Projections::new();
    let mut next = 0u64;
    let mut pages = store.scan(0, PAGE_RECORDS);
    while next < end {
        let Some(page) = pages.recv().await else { break };
        let mut page = page?;
        page.truncate(usize::try_from(end - next).unwrap_or(usize::MAX));
        let records: Vec<Record> = page.into_par_iter().map(trusted_owned).collect::<Result<_, _>>()?;
        for r in &records {
            if r.seq != next {
                return Err(StoreError::Corrupt(format!("record {next} is missing")));
            }
            projections.apply(r);
            next += 1;
        }
        // Freed on every core: dropping the parsed `data` trees one by one would add to the
        // ordered part of the loop.
        records.into_par_iter().for_each(drop);
        progress(next, end);
    }
    Ok(projections)
}

/// The record as stored, its hashes taken as stored: replay folds state; `assay verify` is
/// what checks hashes and signatures.
pub(crate) fn trusted(stored: &StoredRecord) -> Result<Record, StoreError> {
    trusted_with(stored, stored.payload.clone())
}

/// [`trusted`] of a record the caller gives up: its payload moves into the record.
pub(crate) fn trusted_owned(mut stored: StoredRecord) -> Result<Record, StoreError> {
    let payload = std::mem::take(&mut stored.payload);
    trusted_with(&stored, payload)
}

/// The record of `stored` whose payload bytes are `payload`.
fn trusted_with(stored: &StoredRecord, payload: Vec<u8>) -> Result<Record, StoreError> {
    let signatures = assay_events::dsse::signatures_from_json(&stored.signatures)
        .map_err(|e| StoreError::Corrupt(format!("seq {}: {e}", stored.seq)))?;
    let event = assay_events::cloudevent::CloudEvent::parse(&payload)
        .map_err(|e| StoreError::Corrupt(format!("seq {}: {e}", stored.seq)))?;
    Ok(Record {
        seq: stored.seq,
        received_at_ns: stored.received_at_ns,
        payload,
        signatures,
        prev_hash: stored.prev_hash,
        digest: stored.digest,
        record_hash: stored.record_hash,
        event,
    })
}

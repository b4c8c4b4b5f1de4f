//! A whole-input check before anything is appended: what the sequencer would refuse, judged
//! against the key registry and the stored (source, id) pairs as they are now. A producer that
//! appends a large input in several requests calls it first, so bad input stores nothing.
//! The sequencer stays the authority: a key revoked in between is still refused there.

use std::collections::HashMap;

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use assay_projections::KeyRegistry;
use assay_projections::authorize::authorize_signers;

use super::error::{AppendError, Rejection};
use super::prepare::Prepared;
use crate::store::Store;

/// Checks every prepared envelope, in order; the error's index is into `items`.
pub async fn precheck(store: &Store, keys: &KeyRegistry, items: &[Prepared]) -> Result<(), AppendError> {
    let ids: Vec<(&str, &str)> =
        items.iter().map(|p| (p.event.source.as_str(), p.event.id.as_str())).collect();
    // (seq, payload digest, signatures digest) by (source, id).
    let stored: HashMap<(String, String), (u64, Hash32, Hash32)> = store
        .find_ids(&ids)
        .await
        .map_err(|e| AppendError::Storage(e.to_string()))?
        .into_iter()
        .map(|f| ((f.source, f.event_id), (f.seq, f.digest, f.signatures_digest)))
        .collect();
    let mut scratch: Option<KeyRegistry> = None;
    let mut seen: HashMap<(&str, &str), (Hash32, Hash32)> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let reject = |reason| AppendError::Rejected { index, reason };
        let id = (item.event.source.as_str(), item.event.id.as_str());
        let identity = (item.digest, item.signatures_digest);
        match stored.get(&(id.0.to_owned(), id.1.to_owned())) {
            Some((_, d, s)) if (*d, *s) == identity => continue,
            Some((seq, _, _)) => {
                return Err(reject(Rejection::Conflict {
                    event_source: id.0.into(),
                    id: id.1.into(),
                    seq: *seq,
                }));
            }
            None => {}
        }
        if let Some(d) = seen.insert(id, identity)
            && d != identity
        {
            return Err(reject(Rejection::Conflict { event_source: id.0.into(), id: id.1.into(), seq: 0 }));
        }
        // The sequencer's rule for the signers (signatures are checked in prepare, or by the
        // sequencer for a key this input registers).
        let registry = scratch.as_ref().unwrap_or(keys);
        authorize_signers(registry, &item.event.ty, &item.signer, &item.envelope.signatures, |_, _, _| true)
            .map_err(|e| reject(e.into()))?;
        if item.event.event_type().is_some_and(EventType::is_key_change) {
            // Later items may use a key this one registers (or must not use one it revokes).
            let mut next = scratch.take().unwrap_or_else(|| keys.clone());
            let r = Record::from_parts(
                u64::MAX,
                0,
                item.envelope.payload.clone(),
                item.envelope.signatures.clone(),
                Hash32::ZERO,
                item.event.clone(),
                item.digest,
            );
            next.apply(&r);
            scratch = Some(next);
        }
    }
    Ok(())
}

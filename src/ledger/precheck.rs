//! A whole-input check before anything is appended: what the sequencer would refuse, judged
//! against the key registry and the stored (source, id) pairs as they are now. A producer that
//! appends a large input in several requests runs it over the whole input first, a chunk at a
//! time, so bad input stores nothing; it keeps only small facts between chunks (the keys the
//! input changes, and its ids in [`SeenIds`], which spills to disk), so memory does not grow
//! with the input. The sequencer stays the authority: a key revoked in between is still
//! refused there.

use std::sync::Arc;

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use assay_projections::KeyRegistry;
use assay_projections::authorize::authorize_signers;

use super::error::{AppendError, Rejection};
use super::prepare::Prepared;
use super::seen_ids::SeenIds;
use crate::store::Store;

/// Errors of [`Precheck`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrecheckError {
    /// An item was refused; the index is into the slice given to [`Precheck::check`].
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error("keeping the input's ids in a temporary file: {0}")]
    Spill(#[from] std::io::Error),
}

/// The state of a whole-input check between chunks.
pub struct Precheck {
    keys: Arc<KeyRegistry>,
    /// The registry with the key changes of the input so far (None while it has none).
    scratch: Option<KeyRegistry>,
    seen: SeenIds,
    /// Items checked so far: the input index of the next chunk's first item.
    checked: u64,
}

impl Precheck {
    /// A check against `keys`, the registry as of the last commit.
    pub fn new(keys: Arc<KeyRegistry>) -> Precheck {
        Precheck { keys, scratch: None, seen: SeenIds::default(), checked: 0 }
    }

    /// Checks the next prepared envelopes of the input, in order. A reuse of an earlier
    /// item's id with other bytes is not found here but by [`Precheck::first_reused_id`].
    pub async fn check(&mut self, store: &Store, items: &[Prepared]) -> Result<(), PrecheckError> {
        let ids: Vec<(&str, &str)> =
            items.iter().map(|p| (p.event.source.as_str(), p.event.id.as_str())).collect();
        // (seq, payload digest, signatures digest) by (source, id).
        let stored: std::collections::HashMap<(String, String), (u64, Hash32, Hash32)> = store
            .find_ids(&ids)
            .await
            .map_err(|e| AppendError::Storage(e.to_string()))?
            .into_iter()
            .map(|f| ((f.source, f.event_id), (f.seq, f.digest, f.signatures_digest)))
            .collect();
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
                    })
                    .into());
                }
                None => {}
            }
            self.seen.insert(id.0, id.1, identity, self.checked + index as u64)?;
            // The sequencer's rule for the signers (signatures are checked in prepare, or by
            // the sequencer for a key this input registers).
            let registry = self.scratch.as_ref().unwrap_or(&self.keys);
            authorize_signers(
                registry,
                &item.event.ty,
                &item.signer,
                &item.envelope.signatures,
                |_, _, _| true,
            )
            .map_err(|e| reject(e.into()))?;
            if item.event.event_type().is_some_and(EventType::is_key_change) {
                // Later items may use a key this one registers (or must not use one it revokes).
                let mut next = self.scratch.take().unwrap_or_else(|| (*self.keys).clone());
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
                self.scratch = Some(next);
            }
        }
        self.checked += items.len() as u64;
        Ok(())
    }

    /// The registry the input is checked against (and its signatures verified under).
    pub fn keys(&self) -> Arc<KeyRegistry> {
        self.keys.clone()
    }

    /// The input index of the first item checked so far whose (source, id) an earlier item
    /// of the input holds with other bytes (the sequencer would refuse it as a conflict).
    pub fn first_reused_id(&mut self) -> Result<Option<u64>, PrecheckError> {
        Ok(self.seen.first_conflict()?)
    }
}

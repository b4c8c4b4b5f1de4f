//! Checkpoints judged under a verifier's witness policy (`--witness-policy FILE` of `assay
//! verify`, `verify-bundle` and `verify-export`): K valid `cosignature/v1` lines from the
//! witnesses the policy lists, over the checkpoint's body.
//!
//! [`check_note`] judges a note as a file carries it (a bundle's proofs, an export's manifest);
//! [`latest_witnessed`] finds the largest stored checkpoint whose stored cosignatures, each
//! line verified again, meet the policy. The signature by the ledger key is not checked here:
//! callers check it (and the tree against the checkpoint) first.

use assay_events::checkpoint::Checkpoint;
use assay_events::note;
use assay_events::witness_policy::{PolicyError, WitnessPolicy};
use serde::Serialize;

use crate::store::{Store, StoreError};

/// Sizes looked at, largest first, for a stored checkpoint that meets the quorum.
const CANDIDATES_MAX: u32 = 16;

/// A checkpoint that meets the policy: its size and the listed witnesses that cosigned it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    /// Witness name and the cosignature's timestamp (seconds), in the policy's order.
    pub cosigned: Vec<(String, u64)>,
    pub quorum: usize,
}

impl Witnessed {
    /// `size N cosigned by w1 (at T), w2 (at T); quorum K`.
    pub fn describe(&self) -> String {
        let by: Vec<String> = self.cosigned.iter().map(|(w, t)| format!("{w} (at {t})")).collect();
        format!("size {} cosigned by {}; quorum {}", self.size, by.join(", "), self.quorum)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the checkpoint note cannot be read: {0}")]
    Note(String),
    #[error("the checkpoint at size {size}: {error}")]
    Policy { size: u64, error: PolicyError },
    #[error(
        "no stored checkpoint up to size {at_most} carries a cosignature by a witness the policy lists; missing: {}",
        missing.join(", ")
    )]
    NoneCosigned { at_most: u64, missing: Vec<String> },
}

impl WitnessedError {
    /// Whether the checkpoint fell short of the quorum (rather than carrying a bad line).
    fn short_of_quorum(&self) -> bool {
        matches!(self, WitnessedError::Policy { error: PolicyError::Quorum { .. }, .. })
    }
}

/// Whether the checkpoint `note_text` carries valid cosignatures from the policy's quorum.
pub fn check_note(policy: &WitnessPolicy, note_text: &str) -> Result<Witnessed, WitnessedError> {
    let parsed = note::parse(note_text).map_err(|e| WitnessedError::Note(e.to_string()))?;
    let size = Checkpoint::from_text(&parsed.text).map_err(|e| WitnessedError::Note(e.to_string()))?.size;
    let met = policy.check(&parsed).map_err(|error| WitnessedError::Policy { size, error })?;
    Ok(Witnessed { size, cosigned: met.cosigned, quorum: met.quorum })
}

/// The largest stored checkpoint of size at most `at_most` whose stored cosignatures meet the
/// policy. A stored line that claims a listed witness and does not verify is an error, as is
/// no such checkpoint (naming the witnesses missing from the largest one any listed witness
/// cosigned).
pub async fn latest_witnessed(
    store: &Store,
    policy: &WitnessPolicy,
    at_most: u64,
) -> Result<Witnessed, WitnessedError> {
    let keyids: Vec<String> = policy.witnesses().iter().map(|w| w.keyid()).collect();
    let candidates = store.sizes_cosigned_by(&keyids, policy.quorum(), CANDIDATES_MAX).await?;
    for size in candidates.into_iter().filter(|s| *s <= at_most) {
        match judge(store, policy, size).await {
            Ok(Some(w)) => return Ok(w),
            Ok(None) => continue,
            Err(e) if e.short_of_quorum() => continue,
            Err(e) => return Err(e),
        }
    }
    // None meets it: say what the largest cosigned checkpoint lacks.
    let any = store.sizes_cosigned_by(&keyids, 1, CANDIDATES_MAX).await?;
    for size in any.into_iter().filter(|s| *s <= at_most) {
        if let Some(w) = judge(store, policy, size).await? {
            return Ok(w);
        }
    }
    let missing = policy.witnesses().iter().map(|w| w.name().to_owned()).collect();
    Err(WitnessedError::NoneCosigned { at_most, missing })
}

/// The stored checkpoint at `size` with its stored cosignatures, judged (None: not stored).
async fn judge(
    store: &Store,
    policy: &WitnessPolicy,
    size: u64,
) -> Result<Option<Witnessed>, WitnessedError> {
    let Some(cp) = store.checkpoint_at(size).await? else { return Ok(None) };
    let note = store.note_with_cosignatures(size, &cp.note).await?;
    check_note(policy, &note).map(Some)
}

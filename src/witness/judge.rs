//! The witness's decision on one `add-checkpoint`, in the order C2SP tlog-witness gives:
//! unknown origin (404), no valid log signature (403), old size beyond the checkpoint's (400),
//! old size not the recorded one (409 with the recorded size), a proof that fails (422), the
//! recorded size with another root (409). Pure: the caller reads the record and writes the
//! decision in one transaction.

use assay_events::keys::VerifierKey;
use assay_events::merkle::verify_consistency;
use assay_events::note;

use super::request::{AddCheckpoint, RequestError};
use crate::store::Witnessed;

/// Why a submission is refused; [`Refused::status`] is the HTTP status C2SP assigns.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    #[error("malformed request: {0}")]
    Malformed(#[from] RequestError),
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    #[error("no signature on the checkpoint verifies under a key trusted for {0:?}")]
    NoValidSignature(String),
    #[error("old size {old} is beyond the checkpoint's size {new}")]
    OldAfterNew { old: u64, new: u64 },
    #[error("old size {old} is not the size last cosigned for this log, {recorded}")]
    OldMismatch { old: u64, recorded: u64 },
    #[error("the consistency proof does not verify: {0}")]
    BadProof(String),
    #[error("a checkpoint of size {size} with another root was cosigned for this log")]
    RootConflict { size: u64 },
}

impl Refused {
    pub fn status(&self) -> u16 {
        match self {
            Refused::Malformed(_) | Refused::OldAfterNew { .. } => 400,
            Refused::NoValidSignature(_) => 403,
            Refused::UnknownOrigin(_) => 404,
            Refused::OldMismatch { .. } | Refused::RootConflict { .. } => 409,
            Refused::BadProof(_) => 422,
        }
    }

    /// The evidence reason when the refusal contradicts a cosigned checkpoint under a valid log
    /// signature (a fork, or a proof that does not lead from it).
    pub fn evidence(&self) -> Option<&'static str> {
        match self {
            Refused::RootConflict { .. } => Some("fork"),
            Refused::BadProof(_) => Some("inconsistent"),
            _ => None,
        }
    }
}

/// The checks that need no state: the origin is known, a trusted key signed, old ≤ new.
pub fn check_signed(req: &AddCheckpoint, keys: Option<&[VerifierKey]>) -> Result<(), Refused> {
    let origin = &req.checkpoint.origin;
    let keys = keys.ok_or_else(|| Refused::UnknownOrigin(origin.clone()))?;
    // A line claiming a trusted key that fails counts as no signature by that key.
    if !keys.iter().any(|k| note::open(&req.note, k).is_ok()) {
        return Err(Refused::NoValidSignature(origin.clone()));
    }
    if req.old > req.checkpoint.size {
        return Err(Refused::OldAfterNew { old: req.old, new: req.checkpoint.size });
    }
    Ok(())
}

/// The checks against the recorded checkpoint (None: the log was never cosigned).
pub fn check_consistent(req: &AddCheckpoint, recorded: Option<&Witnessed>) -> Result<(), Refused> {
    let recorded_size = recorded.map_or(0, |w| w.size);
    if req.old != recorded_size {
        return Err(Refused::OldMismatch { old: req.old, recorded: recorded_size });
    }
    let new = &req.checkpoint;
    let Some(w) = recorded.filter(|_| req.old > 0) else {
        // Nothing cosigned (or size 0, the empty tree): only an empty proof proves anything.
        if !req.proof.is_empty() {
            return Err(Refused::BadProof("the proof must be empty when the old size is 0".into()));
        }
        return match recorded {
            Some(w) if new.size == w.size && new.root != w.root => {
                Err(Refused::RootConflict { size: w.size })
            }
            _ => Ok(()),
        };
    };
    if new.size == w.size {
        if !req.proof.is_empty() {
            return Err(Refused::BadProof("the proof must be empty when the sizes are equal".into()));
        }
        if new.root != w.root {
            return Err(Refused::RootConflict { size: w.size });
        }
        return Ok(());
    }
    verify_consistency(w.size, new.size, &w.root, &new.root, &req.proof)
        .map_err(|e| Refused::BadProof(e.to_string()))
}

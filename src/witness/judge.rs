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

#[cfg(test)]
mod tests {
    //! The decision alone, on real signed checkpoints of a real tree: each refusal C2SP names,
    //! in its order, and the submissions it must take.
    use assay_events::Hash32;
    use assay_events::checkpoint::Checkpoint;
    use assay_events::keys::SignerKey;
    use assay_events::merkle::{NodeId, consistency_plan, leaf_hash, root_of};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const ORIGIN: &str = "example.org/judge";

    fn leaves() -> Vec<Hash32> {
        (0..32_u32).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn log_key() -> SignerKey {
        SignerKey::from_seed("log", [7; 32]).unwrap()
    }

    fn checkpoint(size: u64) -> Checkpoint {
        let leaves = leaves();
        Checkpoint { origin: ORIGIN.into(), size, root: root_of(&leaves[..size as usize]) }
    }

    /// The RFC 9162 consistency proof between two sizes of [`leaves`].
    fn proof(old: u64, new: u64) -> Vec<Hash32> {
        let leaves = leaves();
        let subtree = |n: NodeId| {
            let begin = (n.index << n.level) as usize;
            Some(root_of(&leaves[begin..begin + (1 << n.level)]))
        };
        consistency_plan(old, new).unwrap().assemble(subtree).unwrap()
    }

    /// A request as a log sends it: `old`, the proof lines, a blank line, the note.
    fn request(old: u64, proof: &[Hash32], note: &str) -> AddCheckpoint {
        let mut body = format!("old {old}\n");
        for h in proof {
            body.push_str(&STANDARD.encode(h.0));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        AddCheckpoint::parse(body.as_bytes()).unwrap()
    }

    fn signed(old: u64, size: u64, proof: &[Hash32]) -> AddCheckpoint {
        request(old, proof, &checkpoint(size).sign(&log_key()))
    }

    fn recorded(size: u64) -> Witnessed {
        let c = checkpoint(size);
        Witnessed { origin: ORIGIN.into(), size, root: c.root, note: c.sign(&log_key()) }
    }

    #[test]
    fn refusals_before_any_state_come_in_the_order_c2sp_gives() {
        let keys = [log_key().verifier()];
        let req = signed(3, 8, &[]);
        assert_eq!(check_signed(&req, Some(&keys)), Ok(()));
        let unknown = check_signed(&req, None).unwrap_err();
        assert_eq!((unknown.status(), unknown.clone()), (404, Refused::UnknownOrigin(ORIGIN.into())));
        // Signed by another key: 403, even though old ≤ new is also checked after it.
        let other = SignerKey::from_seed("log", [8; 32]).unwrap();
        let forged = request(9, &[], &checkpoint(8).sign(&other));
        let refused = check_signed(&forged, Some(&keys)).unwrap_err();
        assert_eq!((refused.status(), refused), (403, Refused::NoValidSignature(ORIGIN.into())));
        let refused = check_signed(&signed(9, 8, &[]), Some(&keys)).unwrap_err();
        assert_eq!((refused.status(), refused), (400, Refused::OldAfterNew { old: 9, new: 8 }));
    }

    #[test]
    fn a_first_submission_takes_only_old_zero_and_an_empty_proof() {
        assert_eq!(check_consistent(&signed(0, 8, &[]), None), Ok(()));
        let refused = check_consistent(&signed(4, 8, &proof(4, 8)), None).unwrap_err();
        assert_eq!((refused.status(), refused), (409, Refused::OldMismatch { old: 4, recorded: 0 }));
        let refused = check_consistent(&signed(0, 8, &proof(4, 8)), None).unwrap_err();
        assert_eq!(refused.status(), 422, "{refused}");
        assert_eq!(refused.evidence(), Some("inconsistent"));
    }

    #[test]
    fn a_later_submission_must_start_at_the_recorded_size_and_prove_its_way_from_it() {
        let at = recorded(13);
        for new in [13, 14, 16, 31, 32] {
            let req = signed(13, new, &proof(13, new));
            assert_eq!(check_consistent(&req, Some(&at)), Ok(()), "13 → {new}");
        }
        let refused = check_consistent(&signed(12, 20, &proof(12, 20)), Some(&at)).unwrap_err();
        assert_eq!((refused.status(), refused), (409, Refused::OldMismatch { old: 12, recorded: 13 }));
        // One proof hash changed, one dropped, one too many: 422, kept as evidence.
        let mut bad = proof(13, 20);
        bad[0].0[0] ^= 1;
        let mut short = proof(13, 20);
        short.pop();
        let mut long = proof(13, 20);
        long.push(Hash32([0; 32]));
        for p in [bad, short, long] {
            let refused = check_consistent(&signed(13, 20, &p), Some(&at)).unwrap_err();
            assert_eq!((refused.status(), refused.evidence()), (422, Some("inconsistent")), "{refused}");
        }
    }

    #[test]
    fn the_recorded_size_with_another_root_is_a_fork() {
        let at = recorded(13);
        // The same checkpoint again: taken, with no proof.
        assert_eq!(check_consistent(&signed(13, 13, &[]), Some(&at)), Ok(()));
        let refused = check_consistent(&signed(13, 13, &proof(12, 13)), Some(&at)).unwrap_err();
        assert_eq!(refused.status(), 422, "{refused}");
        // Another root at the recorded size, signed by the log: a fork, 409.
        let other = Checkpoint { origin: ORIGIN.into(), size: 13, root: Hash32([9; 32]) };
        let fork = request(13, &[], &other.sign(&log_key()));
        let refused = check_consistent(&fork, Some(&at)).unwrap_err();
        assert_eq!((refused.status(), refused.evidence()), (409, Some("fork")));
        assert_eq!(refused, Refused::RootConflict { size: 13 });
    }
}

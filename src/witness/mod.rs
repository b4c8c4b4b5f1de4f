//! A C2SP tlog-witness (https://c2sp.org/tlog-witness): `add-checkpoint` checks a log's
//! checkpoint against the latest one it cosigned for that origin and, when it is consistent,
//! records it durably and answers a `cosignature/v1` line (`assay witness serve`; the HTTP
//! route is `http::witness`).
//!
//! - [`logs`]: the logs and their keys (`logs.toml`); [`request`]: the body;
//! - [`judge`]: the decision, pure; the state file is `store::WitnessStateStore`.
//!
//! The record is read, judged and written in one transaction under one lock, and the answer
//! leaves only after the commit: no two roots are ever cosigned for one size, and a cosigned
//! checkpoint is never forgotten, whatever kills the process.

pub mod judge;
pub mod logs;
pub mod request;

use assay_events::cosignature::{Cosigner, TIMESTAMP_MAX};

use crate::store::{Refusal, StoreError, WitnessStateStore, WitnessStep, Witnessed};
use judge::Refused;
use logs::Logs;
use request::AddCheckpoint;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A witness: its key, the logs it knows, its state.
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: Logs,
    state: WitnessStateStore,
    /// For crash tests: abort the process right after the durable write, before answering.
    crash_after_store: bool,
}

impl Witness {
    pub fn new(cosigner: Cosigner, logs: Logs, state: WitnessStateStore) -> Witness {
        Witness { cosigner, logs, state, crash_after_store: false }
    }

    /// Makes every successful `add-checkpoint` abort the process after its commit, before its
    /// answer (what a kill -9 at the worst moment does), for crash tests.
    pub fn crash_after_store(self, crash: bool) -> Witness {
        Witness { crash_after_store: crash, ..self }
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    pub fn state(&self) -> &WitnessStateStore {
        &self.state
    }

    /// One `add-checkpoint` received at `now_ns`: the cosignature line(s) on success.
    pub async fn add_checkpoint(&self, body: &[u8], now_ns: i64) -> Result<String, AddError> {
        let req = AddCheckpoint::parse(body).map_err(Refused::from)?;
        judge::check_signed(&req, self.logs.keys(&req.checkpoint.origin))?;
        let origin = req.checkpoint.origin.clone();
        let verdict = self
            .state
            .step(&origin, now_ns, |recorded| match judge::check_consistent(&req, recorded) {
                Ok(()) => {
                    let unchanged = recorded.is_some_and(|w| w.size == req.checkpoint.size);
                    let step = if unchanged {
                        WitnessStep::Nothing
                    } else {
                        WitnessStep::Record(Witnessed {
                            origin: origin.clone(),
                            size: req.checkpoint.size,
                            root: req.checkpoint.root,
                            note: req.note.clone(),
                        })
                    };
                    (step, Ok(()))
                }
                Err(refused) => {
                    let step = match (refused.evidence(), recorded) {
                        (Some(reason), Some(w)) => WitnessStep::Evidence(Refusal {
                            origin: origin.clone(),
                            received_at_ns: now_ns,
                            reason: reason.to_owned(),
                            old_size: req.old,
                            proof: req.proof_text.clone(),
                            submitted: req.note.clone(),
                            recorded: w.note.clone(),
                        }),
                        _ => WitnessStep::Nothing,
                    };
                    (step, Err(refused))
                }
            })
            .await?;
        verdict?;
        if self.crash_after_store {
            std::process::abort();
        }
        let timestamp = u64::try_from(now_ns / 1_000_000_000).unwrap_or(0).min(TIMESTAMP_MAX);
        Ok(self.cosigner.cosign(&req.checkpoint_body(), timestamp))
    }
}

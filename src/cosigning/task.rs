//! One task per witness: after each checkpoint, post the latest to the witness with a
//! consistency proof from the size it last cosigned, check the answer, keep it.
//!
//! - Coalesced: each try takes the head as it is then; checkpoints signed meanwhile are
//!   skipped, only the latest matters. One request in flight per witness, at most.
//! - Paced: after a cosigned checkpoint the next request waits [`PACE`].
//! - Bounded: a round is at most [`ROUND_TRIES`] tries, spaced by a doubling backoff from
//!   [`BACKOFF_FIRST`]; a failed round rests [`REST`] (or until the next checkpoint). Every
//!   request ends within [`REQUEST_TIMEOUT`].
//! - A 409 `text/x.tlog.size` names the size the witness recorded: the next try proves from
//!   there (it does not count against the round, up to the round's bound).
//! - Nothing here is on the append path: the sequencer never waits for a witness.

use std::sync::Arc;
use std::time::Duration;

use assay_events::note;
use tokio::sync::watch;

use super::{Recent, WitnessState, status::WitnessMetrics};
use crate::ledger::{HeadInfo, Ledger};
use crate::store::{CosignatureRow, Store};
use crate::witness::request::AddCheckpoint;

pub const ROUND_TRIES: u32 = 5;
pub const BACKOFF_FIRST: Duration = Duration::from_millis(200);
pub const REST: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time between two cosigned checkpoints of one witness: under steady appends the
/// log asks at most 10 times a second (checkpoints meanwhile are coalesced), so witnessing
/// costs ingest little; a checkpoint waits at most this long more for its cosignatures.
pub const PACE: Duration = Duration::from_millis(100);
/// The largest answer read from a witness.
const ANSWER_BYTES_MAX: usize = 64 * 1024;
/// Resumes at another size within one round (a witness answering 409 forever).
const RESUMES_MAX: u32 = 3;

/// Why one try failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the witness recorded size {0}, which must be resumed from")]
    Resume(u64),
    #[error("the witness recorded size {witness}, beyond this ledger's head {head}")]
    Ahead { witness: u64, head: u64 },
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the witness answered {status}: {text}")]
    Refused { status: u16, text: String },
    #[error("the answer holds no valid cosignature by {0}")]
    NoCosignature(String),
    #[error("the answer is larger than {ANSWER_BYTES_MAX} bytes")]
    TooLarge,
    #[error("{0}")]
    Ledger(String),
}

pub(super) async fn run(
    ledger: Ledger,
    w: Arc<WitnessState>,
    metrics: Arc<WitnessMetrics>,
    recent: Arc<Recent>,
    mut stopping: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(witness = %w.spec.name, "no HTTP client: {e}");
            return;
        }
    };
    let store = ledger.store().clone();
    // The store write of each cosignature is this witness's writer's: the next request need
    // not wait for the ledger's write lock (the sequencer holds it most of the time under
    // load). Only the latest row waits there (a watch holds one); one skipped is not served
    // from the store, but the witness still holds its record and the next one supersedes it.
    let (to_writer, rows) = watch::channel::<Option<CosignatureRow>>(None);
    tokio::spawn(write_rows(store.clone(), w.spec.name.clone(), rows));
    // What this witness recorded, as far as the store knows (0 when unknown: a 409 corrects it).
    let mut recorded = store.cosigned_size(&w.spec.vkey.keyid()).await.ok().flatten();
    if let Some(size) = recorded {
        w.set_cosigned(size, &metrics);
    }
    let mut heads = ledger.head();
    loop {
        if *stopping.borrow() {
            return;
        }
        let head = heads.borrow_and_update().clone();
        if w.cosigned() == Some(head.size) {
            w.set_behind(false);
            tokio::select! {
                r = heads.changed() => if r.is_err() { return },
                _ = stopping.changed() => return,
            }
            continue;
        }
        w.set_behind(true);
        let mut done = false;
        let (mut tries, mut resumes) = (0, 0);
        while tries < ROUND_TRIES {
            let head = heads.borrow_and_update().clone();
            match submit(&client, &w, &store, recorded.unwrap_or(0), &head).await {
                Ok(row) => {
                    recent.insert(row.clone());
                    to_writer.send_replace(Some(row));
                    recorded = Some(head.size);
                    w.set_cosigned(head.size, &metrics);
                    done = true;
                    tokio::select! {
                        () = tokio::time::sleep(PACE) => {}
                        _ = stopping.changed() => return,
                    }
                    break;
                }
                Err(Failure::Resume(size)) if resumes < RESUMES_MAX && size <= head.size => {
                    tracing::info!(witness = %w.spec.name, size, "resuming from the size the witness recorded");
                    recorded = Some(size);
                    resumes += 1;
                }
                Err(e) => {
                    metrics.failures.get_or_create(&w.label()).inc();
                    tracing::warn!(witness = %w.spec.name, size = head.size, "cosigning failed: {e}");
                    if let Failure::Resume(size) = e {
                        recorded = Some(size);
                    }
                    tries += 1;
                    if tries < ROUND_TRIES {
                        let backoff = BACKOFF_FIRST * 2u32.pow(tries - 1);
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            _ = stopping.changed() => return,
                        }
                    }
                }
            }
        }
        if !done {
            tokio::select! {
                () = tokio::time::sleep(REST) => {}
                r = heads.changed() => if r.is_err() { return },
                _ = stopping.changed() => return,
            }
        }
    }
}

/// One `add-checkpoint` of `head` from `old`; keeps the verified cosignature.
async fn submit(
    client: &reqwest::Client,
    w: &WitnessState,
    store: &Store,
    old: u64,
    head: &HeadInfo,
) -> Result<CosignatureRow, Failure> {
    if old > head.size {
        return Err(Failure::Ahead { witness: old, head: head.size });
    }
    let proof = if old == 0 || old == head.size {
        Vec::new()
    } else {
        crate::proof::consistency(store, old, head.size)
            .await
            .map_err(|e| Failure::Ledger(e.to_string()))?
            .proof
    };
    let body = AddCheckpoint::body(old, &proof, &head.checkpoint);
    let mut response = client.post(format!("{}/add-checkpoint", w.spec.url)).body(body).send().await?;
    let status = response.status();
    let size_answer = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(crate::witness::request::TLOG_SIZE.as_bytes()));
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > ANSWER_BYTES_MAX {
            return Err(Failure::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if status == reqwest::StatusCode::CONFLICT && size_answer {
        let size = text.trim_end_matches('\n').parse::<u64>();
        return match size {
            Ok(size) => Err(Failure::Resume(size)),
            Err(_) => Err(Failure::Refused { status: 409, text }),
        };
    }
    if !status.is_success() {
        return Err(Failure::Refused { status: status.as_u16(), text: text.chars().take(512).collect() });
    }
    let parsed = note::parse(&head.checkpoint).map_err(|e| Failure::Ledger(e.to_string()))?;
    let mut kept = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let Ok(one) = note::parse(&format!("{}\n{line}\n", parsed.text)) else { continue };
        let Some(sig) = one.signatures.first().filter(|s| w.spec.vkey.claims(s)) else { continue };
        if let Ok(ts) = w.spec.vkey.verify(&parsed.text, sig) {
            kept = Some((line.to_owned(), ts));
        }
    }
    let (line, cosigned_at) = kept.ok_or_else(|| Failure::NoCosignature(w.spec.vkey.keyid()))?;
    Ok(CosignatureRow { size: head.size, witness: w.spec.vkey.keyid(), line, cosigned_at })
}

/// Stores the latest verified cosignature of one witness, each as it comes (a failed write is
/// tried again after a pause, unless a newer row replaced it); ends when its task does.
async fn write_rows(store: Store, name: String, mut rows: watch::Receiver<Option<CosignatureRow>>) {
    while rows.changed().await.is_ok() {
        let Some(row) = rows.borrow_and_update().clone() else { continue };
        for pause in [BACKOFF_FIRST, BACKOFF_FIRST * 4, BACKOFF_FIRST * 16] {
            match store.put_cosignature(&row).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(witness = %name, size = row.size, "storing a cosignature failed: {e}");
                    tokio::time::sleep(pause).await;
                    if rows.has_changed().unwrap_or(false) {
                        break;
                    }
                }
            }
        }
    }
}

//! The kernel runner's event sink: events are stamped with the time they are emitted, and a
//! background task signs them with the runner's key (a batch at a time, on every core) and
//! appends them, either into a local [`Ledger`] (signing and checking the next batches
//! while earlier ones commit) or through a server's HTTP API ([`Client`]). Batches are submitted in emission
//! order, so the log holds the events in the order the runner emitted them.
//!
//! [`LedgerSink`] is synchronous (the runner's loops are): call it from a blocking thread
//! (`tokio::task::spawn_blocking` or a plain thread), never from inside an async task.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use assay_events::keys::SignerKey;
use assay_kernels::sink::{EventSink, SinkError};
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::blobs::BlobStore;
use crate::client::{Client, ClientError};
use crate::ledger::{AppendError, AppendOutcome, Incoming, Ledger, Prepared, Rejection, build_envelope};

/// Events per append request (the ledger's request limit is 1000).
pub const BATCH_EVENTS: usize = 1000;
/// Requests queued for the background task.
const QUEUED_BATCHES: usize = 4;
/// Requests submitted to the sequencer and not yet acknowledged.
const IN_FLIGHT_BATCHES: usize = 4;
/// Batches being signed and checked at once.
const PREPARING_BATCHES: usize = 2;

/// An event waiting to be signed.
struct Unsigned {
    ty: String,
    subject: String,
    data: Value,
    time_ns: i64,
}

enum Msg {
    Batch(Vec<Unsigned>),
    Flush(oneshot::Sender<Result<u64, Failure>>),
}

/// Why the sink stopped recording. The first failure is kept and returned by every later
/// call, so it is shared (and cloned) rather than moved.
#[derive(Debug, Clone, thiserror::Error)]
enum Failure {
    /// The signing task died (its join error).
    #[error("signing failed: {0}")]
    Signing(Arc<tokio::task::JoinError>),
    /// The checking task died (its join error).
    #[error("checking a batch failed: {0}")]
    Checking(Arc<tokio::task::JoinError>),
    #[error("the ledger refused an event: {0} [{code}]", code = .0.code())]
    Refused(Rejection),
    #[error("appending failed: {0}")]
    Append(Arc<AppendError>),
    #[error("appending through {base} failed: {error}")]
    Server { base: String, error: Arc<ClientError> },
}

impl From<AppendError> for Failure {
    fn from(error: AppendError) -> Failure {
        match error {
            AppendError::Rejected { reason, .. } => Failure::Refused(reason),
            other => Failure::Append(Arc::new(other)),
        }
    }
}

impl From<Failure> for SinkError {
    fn from(failure: Failure) -> SinkError {
        SinkError(failure.to_string())
    }
}

/// Signs a batch, in parallel when it is large.
fn sign_all(key: &SignerKey, batch: Vec<Unsigned>) -> Vec<Incoming> {
    use rayon::prelude::*;
    let sign = |u: Unsigned| {
        Incoming::Decoded(build_envelope(key, &u.ty, Some(&u.subject), u.data, None, u.time_ns))
    };
    if batch.len() >= 64 {
        batch.into_par_iter().map(sign).collect()
    } else {
        batch.into_iter().map(sign).collect()
    }
}

async fn sign_batch(key: &SignerKey, batch: Vec<Unsigned>) -> Result<Vec<Incoming>, Failure> {
    if batch.len() < 64 {
        return Ok(sign_all(key, batch));
    }
    let key = key.clone();
    tokio::task::spawn_blocking(move || sign_all(&key, batch))
        .await
        .map_err(|e| Failure::Signing(Arc::new(e)))
}

#[derive(Default)]
struct Shared {
    failure: Option<Failure>,
    recorded: u64,
}

/// Signs events with a producer key and appends them to a [`Ledger`] or a server.
pub struct LedgerSink {
    key: SignerKey,
    /// Where evidence files are kept before they are cited; `None`: not kept.
    evidence: Option<Keeper>,
    runtime: Handle,
    batch: usize,
    buffer: Vec<Unsigned>,
    tx: mpsc::Sender<Msg>,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for LedgerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerSink")
            .field("key", &self.key.keyid())
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl LedgerSink {
    /// A sink appending to `ledger`, signing with `key`; its background task runs on
    /// `runtime`.
    pub fn new(ledger: Ledger, key: SignerKey, runtime: &Handle) -> LedgerSink {
        LedgerSink::with_batch(ledger, key, runtime, BATCH_EVENTS)
    }

    /// Like [`LedgerSink::new`] with `batch` events per request (1..=1000).
    pub fn with_batch(ledger: Ledger, key: SignerKey, runtime: &Handle, batch: usize) -> LedgerSink {
        let (tx, rx) = mpsc::channel(QUEUED_BATCHES);
        let shared = Arc::new(Mutex::new(Shared::default()));
        runtime.spawn(pump(ledger, key.clone(), rx, shared.clone()));
        LedgerSink {
            key,
            evidence: None,
            runtime: runtime.clone(),
            batch: batch.clamp(1, BATCH_EVENTS),
            buffer: Vec::new(),
            tx,
            shared,
        }
    }

    /// A sink appending through the HTTP service behind `client` (`POST /v1/events`); it
    /// keeps evidence files in the server's evidence store (`PUT /v1/blobs/{blake3}`).
    pub fn server(client: Client, key: SignerKey, runtime: &Handle) -> LedgerSink {
        let (tx, rx) = mpsc::channel(QUEUED_BATCHES);
        let shared = Arc::new(Mutex::new(Shared::default()));
        runtime.spawn(pump_server(client.clone(), key.clone(), rx, shared.clone()));
        LedgerSink {
            key,
            evidence: Some(Keeper::Server(client)),
            runtime: runtime.clone(),
            batch: BATCH_EVENTS,
            buffer: Vec::new(),
            tx,
            shared,
        }
    }

    /// Keeps evidence files in `blobs` (the local ledger's evidence store) before they are cited.
    pub fn keeping_evidence(mut self, blobs: BlobStore) -> LedgerSink {
        self.evidence = Some(Keeper::Local(blobs));
        self
    }

    /// The signing key's name (events carry `source` = `assay:key/<name>`).
    pub fn producer(&self) -> &str {
        self.key.name()
    }

    /// Events acknowledged by the ledger so far.
    pub fn recorded(&self) -> u64 {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).recorded
    }

    fn failure(&self) -> Option<Failure> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).failure.clone()
    }

    fn send(&mut self) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.buffer);
        self.tx
            .blocking_send(Msg::Batch(batch))
            .map_err(|_| SinkError::new("the ledger's append task has stopped"))
    }
}

/// Where a sink keeps evidence files.
enum Keeper {
    Local(BlobStore),
    Server(Client),
}

impl EventSink for LedgerSink {
    fn keeps_evidence(&self) -> bool {
        self.evidence.is_some()
    }

    fn keep_evidence(&mut self, paths: &[PathBuf]) -> Vec<Result<Option<(String, u64)>, SinkError>> {
        use futures_util::StreamExt;
        let failed = |e: &dyn std::fmt::Display| SinkError::new(e.to_string());
        match &self.evidence {
            None => paths.iter().map(|_| Ok(None)).collect(),
            // Several files at once (`PUTS_IN_FLIGHT`), as `assay evidence put` stores them.
            Some(Keeper::Local(blobs)) => self.runtime.block_on(
                blobs
                    .put_files(paths)
                    .map(|put| put.map(|p| Some((p.name.to_hex(), p.bytes))).map_err(|e| failed(&e)))
                    .collect(),
            ),
            Some(Keeper::Server(client)) => self.runtime.block_on(
                client
                    .put_blobs(&self.key, paths)
                    .map(|put| put.map(|p| Some((p.blake3, p.bytes))).map_err(|e| failed(&e)))
                    .collect(),
            ),
        }
    }

    fn emit(&mut self, ty: &str, subject: &str, data: Value) -> Result<(), SinkError> {
        if let Some(failure) = self.failure() {
            return Err(failure.into());
        }
        self.buffer.push(Unsigned {
            ty: ty.to_owned(),
            subject: subject.to_owned(),
            data,
            time_ns: crate::clock::now_ns(),
        });
        if self.buffer.len() >= self.batch {
            self.send()?;
        }
        Ok(())
    }

    fn submit(&mut self) -> Result<(), SinkError> {
        if let Some(failure) = self.failure() {
            return Err(failure.into());
        }
        self.send()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.send()?;
        let (reply, done) = oneshot::channel();
        self.tx
            .blocking_send(Msg::Flush(reply))
            .map_err(|_| SinkError::new("the ledger's append task has stopped"))?;
        match done.blocking_recv() {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(failure)) => Err(failure.into()),
            Err(_) => Err(SinkError::new("the ledger's append task has stopped")),
        }
    }
}

type Pending = oneshot::Receiver<Result<AppendOutcome, AppendError>>;

async fn settle(pending: Pending, shared: &Mutex<Shared>) {
    let result = pending.await.map_err(|_| AppendError::ShuttingDown).and_then(|r| r);
    let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(outcome) => state.recorded += outcome.acks.len() as u64,
        Err(e) => {
            state.failure.get_or_insert_with(|| e.into());
        }
    }
}

fn failed(shared: &Mutex<Shared>) -> bool {
    shared.lock().unwrap_or_else(|p| p.into_inner()).failure.is_some()
}

fn fail(shared: &Mutex<Shared>, failure: Failure) {
    shared.lock().unwrap_or_else(|p| p.into_inner()).failure.get_or_insert(failure);
}

type Preparing = tokio::task::JoinHandle<Result<Vec<Prepared>, Failure>>;

/// Submits the oldest prepared batch (keeping emission order) and bounds what is in flight.
async fn submit_oldest(
    ledger: &Ledger,
    preparing: &mut VecDeque<Preparing>,
    pending: &mut VecDeque<Pending>,
    shared: &Mutex<Shared>,
) {
    let Some(first) = preparing.pop_front() else { return };
    let prepared = match first.await {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(failure)) => return fail(shared, failure),
        Err(e) => return fail(shared, Failure::Checking(Arc::new(e))),
    };
    if failed(shared) {
        return;
    }
    match ledger.submit(prepared).await {
        Ok(rx) => pending.push_back(rx),
        Err(e) => fail(shared, e.into()),
    }
    while pending.len() > IN_FLIGHT_BATCHES {
        if let Some(oldest) = pending.pop_front() {
            settle(oldest, shared).await;
        }
    }
}

async fn pump(ledger: Ledger, key: SignerKey, mut rx: mpsc::Receiver<Msg>, shared: Arc<Mutex<Shared>>) {
    // Batches are signed and checked concurrently (PREPARING_BATCHES at a time) and
    // submitted to the sequencer strictly in the order they were emitted.
    let mut preparing: VecDeque<Preparing> = VecDeque::new();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Batch(batch) => {
                if failed(&shared) {
                    continue;
                }
                let (ledger_for_task, key) = (ledger.clone(), key.clone());
                preparing.push_back(tokio::spawn(async move {
                    let items = sign_batch(&key, batch).await?;
                    Ok(ledger_for_task.prepare(items).await?)
                }));
                while preparing.len() > PREPARING_BATCHES {
                    submit_oldest(&ledger, &mut preparing, &mut pending, &shared).await;
                }
            }
            Msg::Flush(reply) => {
                while !preparing.is_empty() {
                    submit_oldest(&ledger, &mut preparing, &mut pending, &shared).await;
                }
                while let Some(first) = pending.pop_front() {
                    settle(first, &shared).await;
                }
                let state = shared.lock().unwrap_or_else(|p| p.into_inner());
                let _ = reply.send(match &state.failure {
                    Some(failure) => Err(failure.clone()),
                    None => Ok(state.recorded),
                });
            }
        }
    }
    while !preparing.is_empty() {
        submit_oldest(&ledger, &mut preparing, &mut pending, &shared).await;
    }
    while let Some(first) = pending.pop_front() {
        settle(first, &shared).await;
    }
}

async fn pump_server(
    client: Client,
    key: SignerKey,
    mut rx: mpsc::Receiver<Msg>,
    shared: Arc<Mutex<Shared>>,
) {
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Batch(batch) => {
                if failed(&shared) {
                    continue;
                }
                let items = match sign_batch(&key, batch).await {
                    Ok(items) => items,
                    Err(failure) => {
                        fail(&shared, failure);
                        continue;
                    }
                };
                let envelopes: Vec<Vec<u8>> = items
                    .into_iter()
                    .map(|item| match item {
                        Incoming::Decoded(envelope) => envelope.to_json(),
                        Incoming::Json(bytes) => bytes,
                    })
                    .collect();
                let result = client.append(&envelopes).await;
                let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok(appended) => state.recorded += appended.response.records.len() as u64,
                    Err(e) => {
                        state.failure.get_or_insert_with(|| Failure::Server {
                            base: client.base().to_owned(),
                            error: Arc::new(e),
                        });
                    }
                }
            }
            Msg::Flush(reply) => {
                let state = shared.lock().unwrap_or_else(|p| p.into_inner());
                let _ = reply.send(match &state.failure {
                    Some(failure) => Err(failure.clone()),
                    None => Ok(state.recorded),
                });
            }
        }
    }
}

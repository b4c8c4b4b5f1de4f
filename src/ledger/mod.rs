//! The ledger: open or initialize a store, append through the sequencer, watch the head.
//!
//! Only the sequencer appends. Callers hand envelopes to [`Ledger::append`], which checks them
//! in parallel ([`prepare`]) and then queues them on a bounded channel; the reply comes after
//! the batch holding them is committed and covered by a signed checkpoint.

pub mod error;
pub mod evidence_sync;
pub mod metrics;
pub mod precheck;
pub mod prepare;
mod row_writer;
mod seen_ids;
mod sequencer;
pub mod state;

use std::sync::{Arc, RwLock};

use assay_events::cloudevent::CloudEvent;
use assay_events::dsse::DecodedEnvelope;
use assay_events::keys::{SignerKey, VerifierKey};
use assay_events::merkle::Frontier;
use assay_events::{EventType, Hash32};
use assay_projections::{KeyRegistry, Projections};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use error::{AppendError, OpenError, Rejection, RejectionClass};
pub use evidence_sync::{EvidenceSync, SyncError};
pub use metrics::LedgerMetrics;
pub use prepare::{Incoming, PAYLOAD_BYTES_MAX, Prepared, Signatures};
use sequencer::{Request, Sequencer};
pub use state::LedgerState;

use crate::clock::{now_ns, rfc3339};
use crate::store::Store;

/// Tuning with bounds: every queue and batch is limited.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// Events per committed batch (group commit).
    pub batch_events_max: usize,
    /// Requests waiting for the sequencer.
    pub queue_requests_max: usize,
    /// Envelopes in one append request.
    pub request_envelopes_max: usize,
    /// Look for other writers' commits this often (milliseconds; PostgreSQL notifications
    /// wake it sooner). None for one-shot processes that only append.
    pub follow_poll_ms: Option<u64>,
    /// The dispatch gate refuses a worker whose latest preflight is older than this.
    pub preflight_max_age_ms: u64,
    /// Longest wait for one database call of the sequencer (see [`crate::store::CALL_TIMEOUT`]);
    /// a call that takes longer fails its batch like a failed commit.
    pub store_call_timeout: std::time::Duration,
    /// Keep a copy of the state folded at open, for the service's live read model
    /// ([`Ledger::take_opened_state`]), so the service does not fold the log a second time.
    pub keep_opened_state: bool,
    /// The evidence store whose files the ledger looks up to record `evidence.synced`
    /// ([`evidence_sync`]); without one the fact is never recorded.
    pub evidence: Option<crate::blobs::BlobStore>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            batch_events_max: 4096,
            queue_requests_max: 1024,
            request_envelopes_max: 1000,
            follow_poll_ms: None,
            preflight_max_age_ms: 15 * 60 * 1000,
            store_call_timeout: crate::store::CALL_TIMEOUT,
            keep_opened_state: false,
            evidence: None,
        }
    }
}

/// One acknowledged envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub seq: u64,
    pub digest: Hash32,
    /// True when identical bytes were already in the ledger (no new record).
    pub existed: bool,
    /// The gate's decision on this record (`dispatch.decided`, `artifact.admitted|rejected`),
    /// or the `evidence.synced` that follows an `evidence.captured` whose files are all stored,
    /// appended right after it in the same batch, so a caller that wants the decision need
    /// not read it back. None when no gate applies, and for a resend (`existed`): its
    /// decision is the stored record at `seq + 1`.
    pub decision: Option<Arc<assay_events::record::Record>>,
}

/// The reply to an append: one ack per envelope, in order, and the checkpoint covering them.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    pub acks: Vec<Ack>,
    pub checkpoint: Arc<str>,
}

/// The committed head as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadInfo {
    pub size: u64,
    pub root: Hash32,
    pub checkpoint: Arc<str>,
}

/// One committed batch, as followers receive it: records in seq order and the checkpoint
/// that covers them.
#[derive(Debug, Clone)]
pub struct Committed {
    pub records: Vec<assay_events::record::Record>,
    /// The tree size after this batch.
    pub size: u64,
    pub checkpoint: Arc<str>,
}

/// Committed batches a follower may fall behind by before it must read the store.
const COMMITTED_BATCHES_BUFFERED: usize = 256;

/// A handle on a running ledger. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    origin: String,
    ledger_key: VerifierKey,
    tx: mpsc::Sender<Request>,
    keys: Arc<RwLock<Arc<KeyRegistry>>>,
    head: watch::Receiver<HeadInfo>,
    healthy: Arc<std::sync::atomic::AtomicBool>,
    committed: broadcast::Sender<Arc<Committed>>,
    shutdown: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    options: LedgerOptions,
    metrics: Arc<LedgerMetrics>,
    /// The state at open and a subscription taken before the sequencer started (so no batch
    /// falls between them); taken once.
    opened: std::sync::Mutex<Option<OpenedState>>,
}

/// The projections as the ledger opened, and the committed batches from that point on.
pub type OpenedState = (Projections, broadcast::Receiver<Arc<Committed>>);

impl Ledger {
    /// Writes genesis (`ledger.initialized`) into an empty store and starts the sequencer.
    pub async fn init(
        store: Store,
        origin: &str,
        ledger_key: SignerKey,
        admin_keys: &[VerifierKey],
        options: LedgerOptions,
    ) -> Result<Ledger, OpenError> {
        if let Some(head) = store.head().await? {
            return Err(OpenError::AlreadyInitialized(head.size));
        }
        let ledger = Ledger::start(store, origin.to_owned(), ledger_key.clone(), options).await?;
        let data = serde_json::json!({
            "origin": origin,
            "ledger_key": ledger_key.verifier().to_text(),
            "admin_keys": admin_keys.iter().map(VerifierKey::to_text).collect::<Vec<_>>(),
        });
        let envelope = build_envelope(
            &ledger_key,
            EventType::LedgerInitialized.as_str(),
            Some("ledger"),
            data,
            None,
            now_ns(),
        );
        ledger.append(vec![Incoming::Decoded(envelope)]).await.map_err(OpenError::Genesis)?;
        Ok(ledger)
    }

    /// Opens an initialized ledger: replays the log into the sequencer's state. Refuses
    /// ([`OpenError::Unsigned`]) a log that does not end exactly at a checkpoint this ledger
    /// signed: records past the last signed checkpoint, a head no signed checkpoint matches,
    /// or a record or tree node stored beyond the head.
    pub async fn open(
        store: Store,
        ledger_key: SignerKey,
        options: LedgerOptions,
    ) -> Result<Ledger, OpenError> {
        if store.head().await?.is_none() {
            return Err(OpenError::NotInitialized);
        }
        let genesis = store.records(0, 1).await?;
        let genesis = genesis.first().ok_or(OpenError::NotInitialized)?.to_record()?;
        let origin = genesis.event.data["origin"].as_str().unwrap_or_default().to_owned();
        let expected = genesis.event.data["ledger_key"].as_str().unwrap_or_default();
        if expected != ledger_key.verifier().to_text() {
            return Err(OpenError::WrongLedgerKey {
                given: ledger_key.keyid(),
                expected: VerifierKey::parse(expected)
                    .map(|k| k.keyid())
                    .unwrap_or_else(|_| expected.to_owned()),
            });
        }
        Ledger::start(store, origin, ledger_key, options).await
    }

    async fn start(
        store: Store,
        origin: String,
        ledger_key: SignerKey,
        options: LedgerOptions,
    ) -> Result<Ledger, OpenError> {
        let (tx, rx) = mpsc::channel(options.queue_requests_max);
        let (head_tx, head_rx) = watch::channel(HeadInfo {
            size: 0,
            root: assay_events::merkle::empty_root(),
            checkpoint: Arc::from(""),
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let keys = Arc::new(RwLock::new(Arc::new(KeyRegistry::new())));
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (committed_tx, _) = broadcast::channel(COMMITTED_BATCHES_BUFFERED);
        let metrics = Arc::new(LedgerMetrics::default());
        let mut sequencer = Sequencer {
            store: store.clone(),
            ledger_key: ledger_key.clone(),
            origin: origin.clone(),
            state: LedgerState::new(options.keep_opened_state),
            frontier: Frontier::new(),
            last_hash: Hash32::ZERO,
            last_received_ns: 0,
            checkpoint: Arc::from(""),
            published_keys: keys.clone(),
            head_tx,
            committed_tx: committed_tx.clone(),
            batch_events_max: options.batch_events_max,
            follow_poll: options.follow_poll_ms.map(std::time::Duration::from_millis),
            dirty: false,
            nothing_beyond: false,
            healthy: healthy.clone(),
            write_failing: false,
            preflight_max_age_ns: i64::try_from(options.preflight_max_age_ms.saturating_mul(1_000_000))
                .unwrap_or(i64::MAX),
            call_timeout: options.store_call_timeout,
            metrics: metrics.clone(),
        };
        sequencer.catch_up_quietly().await?;
        sequencer.check_nothing_beyond().await?;
        let opened = options
            .keep_opened_state
            .then(|| (sequencer.state.projections.clone(), committed_tx.subscribe()));
        let task = tokio::spawn(sequencer.run(rx, shutdown_rx));
        Ok(Ledger {
            inner: Arc::new(Inner {
                store,
                origin,
                ledger_key: ledger_key.verifier(),
                tx,
                keys,
                head: head_rx,
                healthy,
                committed: committed_tx,
                shutdown: shutdown_tx,
                task: std::sync::Mutex::new(Some(task)),
                options,
                metrics,
                opened: std::sync::Mutex::new(opened),
            }),
        })
    }

    /// The state folded at open and every committed batch since, once (with
    /// [`LedgerOptions::keep_opened_state`]); None otherwise or when already taken.
    pub fn take_opened_state(&self) -> Option<OpenedState> {
        self.inner.opened.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Checks and appends envelopes as one all-or-nothing request.
    pub async fn append(&self, items: Vec<Incoming>) -> Result<AppendOutcome, AppendError> {
        let prepared = self.prepare(items).await?;
        self.submit(prepared).await?.await.map_err(|_| AppendError::ShuttingDown)?
    }

    /// The stateless checks of [`Ledger::append`], in parallel for many envelopes.
    pub async fn prepare(&self, items: Vec<Incoming>) -> Result<Vec<Prepared>, AppendError> {
        self.prepare_with(items, self.keys(), Signatures::Verify).await
    }

    /// [`Ledger::prepare`] of envelopes that passed it before, their signatures under `keys`
    /// (see [`Signatures::CheckedBefore`]): decoded again, not checked again.
    pub async fn prepare_checked_before(
        &self,
        items: Vec<Incoming>,
        keys: Arc<KeyRegistry>,
    ) -> Result<Vec<Prepared>, AppendError> {
        self.prepare_with(items, keys, Signatures::CheckedBefore).await
    }

    async fn prepare_with(
        &self,
        items: Vec<Incoming>,
        keys: Arc<KeyRegistry>,
        signatures: Signatures,
    ) -> Result<Vec<Prepared>, AppendError> {
        let max = self.inner.options.request_envelopes_max;
        if items.len() > max {
            return Err(AppendError::TooManyEnvelopes { got: items.len(), max });
        }
        let prepared = if items.len() > 1 {
            tokio::task::spawn_blocking(move || prepare::prepare_all(items, &keys, signatures))
                .await
                .map_err(|e| AppendError::Storage(format!("verification task failed: {e}")))?
        } else {
            prepare::prepare_all(items, &keys, signatures)
        };
        let mut ok = Vec::with_capacity(prepared.len());
        for (index, p) in prepared.into_iter().enumerate() {
            ok.push(p.map_err(|reason| {
                self.inner.metrics.rejected(reason.code());
                AppendError::Rejected { index, reason }
            })?);
        }
        Ok(ok)
    }

    /// Starts a check of a whole input, a chunk at a time, against the current keys and
    /// stored ids, before any of it is submitted (see [`precheck`]).
    pub fn precheck(&self) -> precheck::Precheck {
        precheck::Precheck::new(self.keys())
    }

    /// Queues prepared envelopes for the sequencer, in call order; the receiver yields the
    /// outcome once committed. Lets a producer pipeline checking and committing.
    ///
    /// The rules for the strings the store keeps are checked again here (cheaply: no parsing),
    /// so that no item, however it was made, can reach the sequencer with what the store
    /// cannot hold and fail the batch it shares with other requests.
    pub async fn submit(
        &self,
        items: Vec<Prepared>,
    ) -> Result<oneshot::Receiver<Result<AppendOutcome, AppendError>>, AppendError> {
        for (index, p) in items.iter().enumerate() {
            let checked = p
                .envelope
                .check_submitted()
                .map_err(Rejection::from)
                .and_then(|()| p.event.check_submitted().map_err(Rejection::from));
            checked.map_err(|reason| AppendError::Rejected { index, reason })?;
        }
        let stored = self.evidence_stored(&items).await;
        let (reply, rx) = oneshot::channel();
        let request = Request { items, stored, sync: None, reply };
        self.inner.tx.send(request).await.map_err(|_| AppendError::ShuttingDown)?;
        Ok(rx)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The evidence store it records `evidence.synced` from, if it was opened with one.
    pub fn evidence(&self) -> Option<&crate::blobs::BlobStore> {
        self.inner.options.evidence.as_ref()
    }

    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    pub fn ledger_key(&self) -> &VerifierKey {
        &self.inner.ledger_key
    }

    /// The append path's counters and histograms.
    pub fn metrics(&self) -> &Arc<LedgerMetrics> {
        &self.inner.metrics
    }

    /// The key registry as of the last commit.
    pub fn keys(&self) -> Arc<KeyRegistry> {
        self.inner.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// False while the store is failing (the last batch or follow step could not reach it).
    pub fn healthy(&self) -> bool {
        self.inner.healthy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The committed head; changes after every commit.
    pub fn head(&self) -> watch::Receiver<HeadInfo> {
        self.inner.head.clone()
    }

    /// Committed batches from now on. A receiver that lags more than a bounded number of
    /// batches gets `Lagged` and must read the missing records from the store.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.inner.committed.subscribe()
    }

    /// Stops taking requests, sequences everything already queued, and waits for the task.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let task = self.inner.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Builds and signs a CloudEvent envelope as a producer does.
pub fn build_envelope(
    key: &SignerKey,
    ty: &str,
    subject: Option<&str>,
    data: serde_json::Value,
    id: Option<String>,
    time_ns: i64,
) -> DecodedEnvelope {
    let event = CloudEvent {
        specversion: "1.0".to_owned(),
        id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        source: format!("assay:key/{}", key.name()),
        ty: ty.to_owned(),
        subject: subject.map(str::to_owned),
        time: rfc3339(time_ns),
        datacontenttype: Some("application/json".to_owned()),
        dataschema: EventType::parse(ty).ok().map(|t| t.schema_id().to_owned()),
        data,
    };
    DecodedEnvelope::sign(event.to_bytes(), key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    /// A new SQLite ledger in a temporary folder (kept alive by the returned guard), and its
    /// admin key.
    async fn ledger_in_a_folder() -> (tempfile::TempDir, Ledger, SignerKey) {
        let dir = tempfile::tempdir().expect("a folder");
        let target = dir.path().join("l.db");
        let store =
            Store::open(target.to_str().expect("UTF-8"), Durability::Relaxed, true).await.expect("a store");
        let key = SignerKey::from_seed("ledger", [7; 32]).expect("a key");
        let admin = SignerKey::from_seed("admin", [8; 32]).expect("a key");
        let ledger = Ledger::init(store, "t.local/assay", key, &[admin.verifier()], LedgerOptions::default())
            .await
            .expect("genesis");
        (dir, ledger, admin)
    }

    /// An item made without [`Ledger::prepare`] that breaks the identifier rule is refused at
    /// submit, before any SQL, and the ledger keeps appending.
    #[tokio::test]
    async fn submit_refuses_what_the_store_cannot_keep() {
        let (_dir, ledger, admin) = ledger_in_a_folder().await;
        let env = build_envelope(
            &admin,
            "control.paused",
            Some("control"),
            serde_json::json!({"reason": "x"}),
            None,
            now_ns(),
        );
        let good = ledger.prepare(vec![Incoming::Decoded(env)]).await.expect("a good envelope");
        let mut bad = good.clone();
        bad[0].event.id = "a\0b".to_owned();
        match ledger.submit(bad).await {
            Err(AppendError::Rejected { index: 0, reason }) => {
                assert_eq!(reason.code(), "bad_event");
                assert!(reason.to_string().contains("U+0000"), "{reason}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted a NUL id"),
        }
        let mut bad = good.clone();
        let again = bad[0].envelope.signatures[0].clone();
        bad[0].envelope.signatures.push(again);
        assert!(matches!(ledger.submit(bad).await, Err(AppendError::Rejected { index: 0, .. })));
        let outcome = ledger.submit(good).await.expect("queued").await.expect("a reply").expect("appended");
        assert_eq!(outcome.acks[0].seq, 1);
        ledger.shutdown().await;
    }

    /// A gated request's ack carries the decision appended right after it; a resend's does
    /// not (its decision was committed before), nor does an ungated event's.
    #[tokio::test]
    async fn a_gated_requests_ack_carries_its_decision() {
        let (_dir, ledger, admin) = ledger_in_a_folder().await;
        let dispatcher = SignerKey::from_seed("dispatcher", [9; 32]).expect("a key");
        let append = |env| {
            let ledger = &ledger;
            async move {
                let items = ledger.prepare(vec![Incoming::Decoded(env)]).await.expect("a good envelope");
                ledger.submit(items).await.expect("queued").await.expect("a reply").expect("appended")
            }
        };
        let register = build_envelope(
            &admin,
            EventType::KeyRegistered.as_str(),
            Some("key/dispatcher"),
            serde_json::json!({"vkey": dispatcher.verifier().to_text(), "roles": ["dispatcher"]}),
            None,
            now_ns(),
        );
        let registered = append(register).await;
        assert_eq!(registered.acks[0].decision, None, "no gate applies to a key registration");
        let request = build_envelope(
            &dispatcher,
            EventType::DispatchRequested.as_str(),
            Some("run/r-1"),
            serde_json::json!({"run": "r-1", "worker": "node-1", "gpu": "0000:01:00.0"}),
            None,
            now_ns(),
        );
        let first = append(request.clone()).await;
        let ack = &first.acks[0];
        let decided = ack.decision.as_ref().expect("the decision in the ack");
        assert_eq!(decided.seq, ack.seq + 1);
        assert_eq!(decided.event_type(), Some(EventType::DispatchDecided));
        assert_eq!(decided.event.data["request"], ack.digest.to_hex());
        let stored = ledger.store().records(ack.seq + 1, 1).await.expect("a read");
        assert_eq!(stored[0].to_record().expect("a record"), **decided, "the decision the store holds");
        let again = append(request).await;
        assert!(again.acks[0].existed && again.acks[0].decision.is_none(), "{:?}", again.acks[0]);
        ledger.shutdown().await;
    }
}

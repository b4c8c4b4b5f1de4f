//! The sequencer: the one task that appends.
//!
//! It drains requests from a bounded channel into a batch (bounded in events), validates each
//! request against the state as of its position (all-or-nothing per request), assigns seqs,
//! extends the chain and the tree, signs one checkpoint, commits records, nodes, checkpoint and
//! head in one transaction, and only then acknowledges. A failed commit acknowledges nothing
//! and restores the in-memory state to the last commit.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use assay_events::checkpoint::Checkpoint;
use assay_events::cloudevent::{CloudEvent, event_digest};
use assay_events::dsse::{DecodedEnvelope, signatures_canonical_json};
use assay_events::keys::{SignerKey, VerifierKey};
use assay_events::merkle::{Frontier, leaf_hash};
use assay_events::record::{LeafFields, Record};
use assay_events::{EventType, Hash32};
use assay_projections::authorize::{LedgerIdentity, Submission, authorize_submission};
use assay_projections::gates::LedgerDecision;
use assay_projections::{GateError, KeyRegistry, admission_decision, dispatch_decision};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::error::{AppendError, BatchError, OpenError, Rejection};
use super::metrics::LedgerMetrics;
use super::prepare::Prepared;
use super::row_writer::RowWriter;
use super::state::LedgerState;
use super::{Ack, AppendOutcome, Committed, HeadInfo};
use crate::clock::now_ns;
use crate::ledger::build_envelope;
use crate::store::{
    BatchTx, Changes, CheckpointRow, CommitBatch, HeadRow, RecordRow, Store, StoreError, bounded,
};

/// Records read per query while catching up with the store.
const CATCH_UP_PAGE_RECORDS: u32 = 4096;

/// Longest wait for the first read of a batch or follow step while the store is known to fail
/// (see `Sequencer::probe`): long enough for a live database to hand out a fresh connection
/// on a loaded machine, short beside [`crate::store::CALL_TIMEOUT`].
const FAILING_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) struct Request {
    pub items: Vec<Prepared>,
    /// Per item: for an `evidence.captured` whose files were all found in the evidence store
    /// (checked before it was queued, `super::evidence_sync`), how many; the sequencer then
    /// appends `evidence.synced` right after it. Empty, or one per item.
    pub stored: Vec<Option<u64>>,
    /// A request to record `evidence.synced` for the `evidence.captured` with this digest,
    /// whose files (this many) were all found stored; `items` is then empty. Answered with
    /// one ack (the fact, new or `existed`), or none when the log holds no such evidence.
    pub sync: Option<(Hash32, u64)>,
    pub reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
}

pub(crate) struct Sequencer {
    pub store: Store,
    pub ledger_key: SignerKey,
    pub origin: String,
    pub state: LedgerState,
    pub frontier: Frontier,
    pub last_hash: Hash32,
    pub last_received_ns: i64,
    pub checkpoint: Arc<str>,
    pub published_keys: Arc<RwLock<Arc<KeyRegistry>>>,
    pub head_tx: watch::Sender<HeadInfo>,
    /// Committed records, for followers (projections, live streams). Lagging receivers miss
    /// batches and must read the store; the sequencer never waits for them.
    pub committed_tx: broadcast::Sender<Arc<Committed>>,
    pub batch_events_max: usize,
    /// How often to look for other writers' commits; None: never (a one-shot CLI process).
    pub follow_poll: Option<std::time::Duration>,
    /// The in-memory state may be ahead of the store (a batch failed mid-way): rebuild it
    /// before sequencing again.
    pub dirty: bool,
    /// Whether the store was seen, under the writer lock, to hold nothing beyond the head (no
    /// record, no tree node) since the state was last folded from scratch.
    pub nothing_beyond: bool,
    /// False while the store fails (a batch, a rebuild or a follow step did); servers report
    /// it on /healthz and refuse writes with 503 until it clears.
    pub healthy: Arc<std::sync::atomic::AtomicBool>,
    /// A batch failed and no write has succeeded since: the store may read but not write (a
    /// full disk), so rebuilding or following does not make it healthy again; a committed
    /// batch or a write probe on a follow step does.
    pub write_failing: bool,
    /// A worker's latest preflight older than this (at the request's arrival) is stale.
    pub preflight_max_age_ns: i64,
    /// Longest wait for one database call; past it the call counts as failed (see
    /// [`crate::store::CALL_TIMEOUT`]).
    pub call_timeout: std::time::Duration,
    /// The ledger's append metrics (the same handle [`super::Ledger::metrics`] returns).
    pub metrics: Arc<LedgerMetrics>,
}

/// What woke the sequencer.
enum Next {
    Request(Request),
    /// Another writer may have committed; the flag says the listener is still healthy.
    Follow(bool),
}

/// A record already stored or sequenced under a (source, id): what an identical resend must
/// match (the payload bytes and the signatures) and the record it is acknowledged with.
#[derive(Debug, Clone, Copy)]
struct Known {
    seq: u64,
    digest: Hash32,
    signatures_digest: Hash32,
}

impl Known {
    fn of_record(r: &Record) -> Known {
        Known { seq: r.seq, digest: r.digest, signatures_digest: r.signatures_digest() }
    }

    /// The same envelope: the same payload bytes and the same signatures.
    fn same(&self, item: &Prepared) -> bool {
        self.digest == item.digest && self.signatures_digest == item.signatures_digest
    }
}

type KnownIds = HashMap<(String, String), Known>;

/// What one request came to inside a batch.
enum Outcome {
    Done(Vec<Ack>),
    Rejected(AppendError),
}

impl Sequencer {
    /// Runs until the channel closes or `shutdown` turns true; then drains what is queued.
    /// With `follow_poll` set, it also takes in records other writers commit (PostgreSQL
    /// notifications, else polling), so followers see every record in seq order.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut shutdown: watch::Receiver<bool>) {
        let mut changes = match self.follow_poll {
            Some(_) => Some(self.changes().await),
            None => None,
        };
        let poll = self.follow_poll.unwrap_or_default();
        loop {
            let next = tokio::select! {
                biased;
                r = rx.recv() => r.map(Next::Request),
                _ = shutdown.wait_for(|s| *s) => None,
                woke = async {
                    match changes.as_mut() {
                        Some(c) => c.wait(poll).await,
                        None => std::future::pending().await,
                    }
                } => Some(Next::Follow(woke.is_ok())),
            };
            match next {
                None => break,
                Some(Next::Request(first)) => {
                    let batch = self.drain(first, &mut rx);
                    self.run_batch(batch).await;
                }
                Some(Next::Follow(listener_ok)) => {
                    if !listener_ok {
                        // The notification connection broke (e.g. the database restarted):
                        // until the store answers again, ask it quickly (see `probe`) rather
                        // than letting queued appends wait out full call bounds behind us.
                        self.healthy.store(false, std::sync::atomic::Ordering::Relaxed);
                        changes = Some(Changes::Poll);
                    }
                    // A failed batch left the state ahead of the store: rebuild first.
                    let followed = match self.probe().await {
                        Err(e) => Err(e.into()),
                        Ok(()) if self.dirty => self.rebuild().await,
                        Ok(()) => self.catch_up().await,
                    };
                    if let Err(e) = &followed {
                        tracing::warn!(error = %e, "following the store failed; will retry");
                    }
                    // Polling meanwhile; once the database answers, listen again, so followers
                    // go back to hearing of commits at once.
                    if followed.is_ok() && matches!(changes, Some(Changes::Poll)) && self.store.notifies() {
                        changes = Some(self.changes().await);
                    }
                    // Reading works again; whether writing does is for a write to say.
                    if followed.is_ok() && self.write_failing {
                        match bounded("probe write", self.call_timeout, self.store.probe_write()).await {
                            Ok(()) => {
                                tracing::info!("the store takes writes again");
                                self.write_failing = false;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "the store still refuses writes; will retry")
                            }
                        }
                    }
                    let healthy = followed.is_ok() && !self.write_failing;
                    self.healthy.store(healthy, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        // Drain: everything already queued is sequenced before the task ends.
        rx.close();
        while let Some(first) = rx.recv().await {
            let batch = self.drain(first, &mut rx);
            self.run_batch(batch).await;
        }
    }

    /// A listener for other writers' commits, or polling when it cannot be had in time.
    async fn changes(&self) -> Changes {
        bounded("listen", self.call_timeout, self.store.changes()).await.unwrap_or(Changes::Poll)
    }

    fn drain(&self, first: Request, rx: &mut mpsc::Receiver<Request>) -> Vec<Request> {
        let mut events = first.items.len().max(1);
        let mut batch = vec![first];
        while events < self.batch_events_max {
            match rx.try_recv() {
                Ok(r) => {
                    events += r.items.len().max(1);
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        batch
    }

    async fn run_batch(&mut self, mut batch: Vec<Request>) {
        let (size_before, started) = (self.frontier.size(), std::time::Instant::now());
        let outcomes = match self.lock_sequence_commit(&mut batch).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                // Nothing of this batch is acknowledged; the in-memory state may hold some of
                // it, so it is rebuilt from the store before the next batch.
                tracing::error!(error = %e, "batch failed; nothing of it is acknowledged");
                self.dirty = true;
                self.write_failing = true;
                vec_of_errors(batch.len(), &e)
            }
        };
        self.healthy.store(!self.dirty && !self.write_failing, std::sync::atomic::Ordering::Relaxed);
        let committed = if self.dirty { 0 } else { self.frontier.size().saturating_sub(size_before) };
        self.metrics.batch(committed, started.elapsed());
        for (request, outcome) in batch.into_iter().zip(outcomes) {
            let reply = match outcome {
                Outcome::Done(acks) => Ok(AppendOutcome { acks, checkpoint: self.checkpoint.clone() }),
                Outcome::Rejected(e) => Err(e),
            };
            self.metrics.request(&reply);
            // The requester may have gone away; the records are committed regardless.
            let _ = request.reply.send(reply);
        }
    }

    /// Takes the writer lock, folds in whatever other writers committed, sequences the batch
    /// against that head and commits it, all under the lock: seqs stay gap-free and no
    /// other writer can sign a checkpoint in between.
    async fn lock_sequence_commit(&mut self, batch: &mut [Request]) -> Result<Vec<Outcome>, BatchError> {
        self.probe().await?;
        if self.dirty {
            self.rebuild().await?;
        } else if self.store.notifies() {
            // Other servers may write here: fold what they committed before taking the lock,
            // so it is held only for the (usually empty) rest and one writer's catch-up
            // overlaps another's commit instead of waiting for it.
            self.catch_up().await?;
        }
        let limit = self.call_timeout;
        let (mut tx, stored_size) = bounded("lock", limit, self.store.lock()).await?;
        if stored_size != self.frontier.size() {
            self.catch_up().await?;
        }
        // Under the writer lock nobody else commits, so a successful catch-up stands exactly
        // at the locked head: the batch extends what is stored, with no gap and no overlap.
        // (Without a head row the lock reads 0 and the catch-up leaves the state as it was.)
        let base_size = self.frontier.size();
        assert!(
            base_size == stored_size || stored_size == 0,
            "the sequencer's tree ({base_size} leaves) must stand at the head read under the writer lock \
             ({stored_size} records)"
        );
        if !self.nothing_beyond {
            self.refuse_beyond(&mut tx).await?;
        }
        // The batch's rows are inserted as it is sequenced (`row_writer`); a failure there
        // fails the batch, and its state, partly folded, is rebuilt (`run_batch`).
        let mut writer = RowWriter::start(tx, limit);
        let (outcomes, commit) = self.sequence(batch, &mut writer).await?;
        // Every part handed over is inserted (not committed) before the last one is written.
        let (tx, seqs) = writer.finish().await?;
        if let Some((commit, records)) = commit {
            check_batch(&commit, &seqs, &records, base_size, self.frontier.size());
            // Mark dirty until the commit is known to have happened.
            self.dirty = true;
            // A timeout here is a failed commit: the batch may or may not have committed, so
            // nothing is acknowledged and the state is rebuilt from the store.
            bounded("commit", limit, tx.write(&commit)).await?;
            self.dirty = false;
            self.write_failing = false;
            self.published(&commit, records);
        }
        Ok(outcomes)
    }

    /// While the store is known to fail, one cheap read bounded by [`FAILING_PROBE_TIMEOUT`]
    /// before anything else: a database that is down refuses a batch within that bound (503)
    /// instead of after the full call bound of each step, so clients hear of an outage at once
    /// and retry elsewhere. A healthy store is not probed.
    async fn probe(&self) -> Result<(), StoreError> {
        if self.healthy.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        bounded("probe", self.call_timeout.min(FAILING_PROBE_TIMEOUT), self.store.head()).await.map(drop)
    }

    /// Forgets the in-memory state and folds the whole log again.
    async fn rebuild(&mut self) -> Result<(), OpenError> {
        self.state = self.state.emptied();
        self.frontier = Frontier::new();
        self.last_hash = Hash32::ZERO;
        self.last_received_ns = 0;
        self.nothing_beyond = false;
        self.catch_up_quietly().await?;
        self.dirty = false;
        Ok(())
    }

    /// At open, after the first catch-up: under the writer lock, the store must hold nothing
    /// beyond the head. A record or tree node there was not committed by a sequencer (a commit
    /// writes them with the head that covers them) and would make every later commit fail.
    pub async fn check_nothing_beyond(&mut self) -> Result<(), OpenError> {
        if self.frontier.size() == 0 {
            return Ok(());
        }
        let (mut tx, stored_size) = bounded("lock", self.call_timeout, self.store.lock()).await?;
        if stored_size != self.frontier.size() {
            // Another writer committed since the catch-up: fold it in, under the lock now.
            self.catch_up_quietly().await?;
        }
        self.refuse_beyond(&mut tx).await
        // Dropping the transaction rolls it back and frees the lock.
    }

    /// [`OpenError::Unsigned`] if the locked store holds a row beyond the folded head.
    async fn refuse_beyond(&mut self, tx: &mut BatchTx) -> Result<(), OpenError> {
        let size = self.frontier.size();
        match bounded("read beyond the head", self.call_timeout, tx.beyond(size)).await? {
            None => {
                self.nothing_beyond = true;
                Ok(())
            }
            Some(row) => {
                Err(self.unsigned(format!("{row} is stored beyond the head's {size} records"), size).await)
            }
        }
    }

    /// The head must stand at a checkpoint this ledger signed: its size is the checkpoint's,
    /// and the note opens under the ledger key for this origin. Returns that checkpoint.
    async fn signed_head(&self, head: &HeadRow) -> Result<CheckpointRow, OpenError> {
        let limit = self.call_timeout;
        let size = head.size;
        if head.checkpoint_size != size {
            return Err(self
                .unsigned(
                    format!(
                        "the head holds {size} records but its last checkpoint is at size {}",
                        head.checkpoint_size
                    ),
                    size,
                )
                .await);
        }
        let Some(cp) = bounded("read checkpoint", limit, self.store.checkpoint_at(size)).await? else {
            return Err(self
                .unsigned(format!("no checkpoint is stored at the head's size {size}"), size)
                .await);
        };
        match Checkpoint::open(&cp.note, &self.ledger_key.verifier()) {
            Ok(c) if c.size == size && c.root == cp.root && c.origin == self.origin => Ok(cp),
            Ok(_) => Err(self
                .unsigned(
                    format!("the checkpoint stored at size {size} is not this ledger's note for it"),
                    size.saturating_sub(1),
                )
                .await),
            Err(e) => Err(self
                .unsigned(
                    format!(
                        "the checkpoint stored at size {size} does not verify under the ledger key ({e})"
                    ),
                    size.saturating_sub(1),
                )
                .await),
        }
    }

    /// [`OpenError::Unsigned`] for `found`, advising the last checkpoint at most `at_most` that
    /// opens under the ledger key (genesis, size 1, if none is found within a few).
    async fn unsigned(&self, found: String, at_most: u64) -> OpenError {
        const TRIES: usize = 8;
        let key = self.ledger_key.verifier();
        let mut at_most = at_most;
        let mut truncate_to = 1;
        for _ in 0..TRIES {
            let read = bounded("read checkpoint", self.call_timeout, self.store.checkpoint_at_most(at_most));
            let Ok(Some(cp)) = read.await else { break };
            if Checkpoint::open(&cp.note, &key).is_ok_and(|c| c.size == cp.size && c.root == cp.root) {
                truncate_to = cp.size;
                break;
            }
            let Some(below) = cp.size.checked_sub(1) else { break };
            at_most = below;
        }
        OpenError::Unsigned { found, truncate_to }
    }

    /// Validates and sequences every request; returns each request's outcome and the batch
    /// to commit (None when nothing new was sequenced). The requests' items are taken (moved
    /// into the records, not copied): a failed batch is answered with errors, never sequenced
    /// again, so nothing reads them after this.
    #[allow(clippy::type_complexity)]
    async fn sequence(
        &mut self,
        batch: &mut [Request],
        writer: &mut RowWriter,
    ) -> Result<(Vec<Outcome>, Option<(CommitBatch, Vec<Record>)>), StoreError> {
        let base_size = self.frontier.size();
        let existing = self.existing_ids(batch).await?;
        // The store was seen (under this lock) to hold nothing beyond the head, so every id it
        // knows names a record the state has folded.
        if let Some(k) = existing.values().find(|k| k.seq >= base_size) {
            panic!("the store found an id at seq {} beyond the head's {base_size} records", k.seq);
        }
        let mut in_batch: KnownIds = HashMap::new();
        let mut commit = CommitBatch { base_size, ..CommitBatch::default() };
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut keys_changed = false;
        let mut records = Vec::new();
        for request in batch {
            if let Some((evidence, files)) = request.sync {
                let acks =
                    self.sequence_sync(evidence, files, &existing, &mut in_batch, &mut commit, &mut records);
                outcomes.push(Outcome::Done(acks));
                writer.offer(&mut commit).await?;
                continue;
            }
            let items = std::mem::take(&mut request.items);
            match self.validate_request(&items, &existing, &in_batch) {
                Err(e) => outcomes.push(Outcome::Rejected(e)),
                Ok(plan) => {
                    let mut acks = Vec::with_capacity(plan.len());
                    for (i, (item, known)) in items.into_iter().zip(plan).enumerate() {
                        if let Some((seq, digest)) = known {
                            acks.push(Ack { seq, digest, existed: true, decision: None });
                            continue;
                        }
                        // The same envelope earlier in this request: its record, not a second one.
                        // The key is made once, for this lookup and the record's entry below.
                        let id = (item.event.source.clone(), item.event.id.clone());
                        if let Some(k) = in_batch.get(&id) {
                            acks.push(Ack { seq: k.seq, digest: k.digest, existed: true, decision: None });
                            continue;
                        }
                        let stored = request.stored.get(i).copied().flatten();
                        let signatures_digest = item.signatures_digest;
                        let (record, decision) = self.sequence_one(item, stored, &mut commit);
                        keys_changed |=
                            record.event_type().is_some_and(EventType::is_key_change) || record.seq == 0;
                        acks.push(Ack {
                            seq: record.seq,
                            digest: record.digest,
                            existed: false,
                            decision: decision.clone().map(Arc::new),
                        });
                        // The record's signatures are the item's: their digest is known.
                        let record_known =
                            Known { seq: record.seq, digest: record.digest, signatures_digest };
                        debug_assert!(
                            id.0 == record.event.source && id.1 == record.event.id,
                            "the record's id"
                        );
                        let decision = decision.map(|d| {
                            let known = Known::of_record(&d);
                            ((d.event.source.clone(), d.event.id.clone()), d, known)
                        });
                        for (id, r, known) in std::iter::once((id, record, record_known)).chain(decision) {
                            in_batch.insert(id, known);
                            records.push(r);
                        }
                    }
                    outcomes.push(Outcome::Done(acks));
                    writer.offer(&mut commit).await?;
                }
            }
        }
        if commit.records.is_empty() && writer.seqs().is_empty() {
            return Ok((outcomes, None));
        }
        let size = self.frontier.size();
        let root = self.frontier.root();
        let note = Checkpoint { origin: self.origin.clone(), size, root }.sign(&self.ledger_key);
        commit.checkpoints = vec![CheckpointRow { size, root, note, signed_at_ns: now_ns() }];
        commit.head = Some(HeadRow {
            size,
            record_hash: self.last_hash,
            frontier: self.frontier.to_bytes(),
            checkpoint_size: size,
        });
        if keys_changed {
            *self.published_keys.write().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(self.state.keys().clone());
        }
        Ok((outcomes, Some((commit, records))))
    }

    /// Appends one accepted envelope as the next record and folds it into the state; when a
    /// gate applies, appends the ledger's decision right after it, and after an
    /// `evidence.captured` whose files were all found stored (`stored`), `evidence.synced`.
    fn sequence_one(
        &mut self,
        item: Prepared,
        stored: Option<u64>,
        commit: &mut CommitBatch,
    ) -> (Record, Option<Record>) {
        let record = self.append_record(
            item.envelope.payload,
            item.envelope.signatures,
            (item.signatures_json, item.signatures_digest),
            item.event,
            item.digest,
            commit,
        );
        let follower = match (record.event_type(), stored) {
            (Some(EventType::EvidenceCaptured), Some(files)) => {
                let run =
                    record.event.data.get("run").and_then(|r| r.as_str()).unwrap_or_default().to_owned();
                Some(self.synced_envelope(&run, record.digest, files, record.received_at_ns))
            }
            _ => self.gate(&record),
        };
        let follower = follower.map(|env| self.append_ledger_event(env, commit));
        (record, follower)
    }

    /// Appends an event the ledger signed itself (a gate's decision, `evidence.synced`).
    fn append_ledger_event(&mut self, env: DecodedEnvelope, commit: &mut CommitBatch) -> Record {
        let event = CloudEvent::parse(&env.payload).expect("the ledger's own event parses");
        debug_assert!(crate::schema::validate(&event.ty, &event.data).is_ok(), "ledger event off schema");
        let digest = event_digest(&env.payload);
        let signatures_json = signatures_canonical_json(&env.signatures);
        let signatures_digest = Hash32::blake3(&signatures_json);
        self.append_record(
            env.payload,
            env.signatures,
            (signatures_json, signatures_digest),
            event,
            digest,
            commit,
        )
    }

    /// `evidence.synced` for the `evidence.captured` `evidence` of `run`, named (like a
    /// decision) by what it is about, so the log holds at most one per evidence.
    fn synced_envelope(&self, run: &str, evidence: Hash32, files: u64, time_ns: i64) -> DecodedEnvelope {
        let ty = EventType::EvidenceSynced.as_str();
        build_envelope(
            &self.ledger_key,
            ty,
            Some(&format!("run/{run}")),
            serde_json::json!({"run": run, "evidence": evidence.to_hex(), "files": files}),
            Some(format!("{ty}:{evidence}")),
            time_ns,
        )
    }

    /// The (source, id) the ledger's `evidence.synced` for `evidence` is stored under.
    fn synced_id(&self, evidence: Hash32) -> (String, String) {
        (
            format!("{}{}", assay_events::source::SOURCE_KEY_PREFIX, self.ledger_key.name()),
            format!("{}:{evidence}", EventType::EvidenceSynced.as_str()),
        )
    }

    /// A sync request: appends `evidence.synced` for `evidence` unless the log (or this batch)
    /// already holds it, which is then the ack (`existed`). No ack when the log holds no such
    /// `evidence.captured`.
    fn sequence_sync(
        &mut self,
        evidence: Hash32,
        files: u64,
        existing: &KnownIds,
        in_batch: &mut KnownIds,
        commit: &mut CommitBatch,
        records: &mut Vec<Record>,
    ) -> Vec<Ack> {
        let id = self.synced_id(evidence);
        if let Some(k) = existing.get(&id).or_else(|| in_batch.get(&id)) {
            return vec![Ack { seq: k.seq, digest: k.digest, existed: true, decision: None }];
        }
        let Some(run) = self.state.projections.audit.evidence(&evidence.to_hex()).map(|e| e.run.clone())
        else {
            return Vec::new();
        };
        let env = self.synced_envelope(&run, evidence, files, now_ns());
        let record = self.append_ledger_event(env, commit);
        in_batch.insert(id, Known::of_record(&record));
        let ack = Ack { seq: record.seq, digest: record.digest, existed: false, decision: None };
        records.push(record);
        vec![ack]
    }

    /// The ledger's decision on `record`, if a gate applies to its type (DESIGN §6).
    fn gate(&self, record: &Record) -> Option<DecodedEnvelope> {
        let state = &self.state.projections;
        let decided: Result<(&str, String, serde_json::Value), GateError> = match record.event_type() {
            Some(EventType::DispatchRequested) => dispatch_decision(state, record, self.preflight_max_age_ns)
                .map(|d| (d.event_type().as_str(), d.subject(), d.ledger_event_data())),
            Some(EventType::ArtifactSubmitted) => admission_decision(state, record)
                .map(|d| (d.event_type().as_str(), d.subject(), d.ledger_event_data())),
            _ => return None,
        };
        match decided {
            Ok((ty, subject, data)) => Some(build_envelope(
                &self.ledger_key,
                ty,
                Some(&subject),
                data,
                // Derived from the request, so the decision is named by what it decides.
                Some(format!("{ty}:{}", record.digest)),
                record.received_at_ns,
            )),
            Err(e) => {
                // The schema guarantees the fields a gate reads; this is a defect, logged.
                tracing::error!(seq = record.seq, error = %e, "gate could not decide");
                None
            }
        }
    }

    /// Appends the next record. `signatures` come with their canonical JSON (as stored) and
    /// its blake3 (the leaf's signatures digest), made once, by whoever checked them.
    fn append_record(
        &mut self,
        payload: Vec<u8>,
        signatures: Vec<assay_events::dsse::Signature>,
        (signatures_json, signatures_digest): (Vec<u8>, Hash32),
        event: CloudEvent,
        digest: Hash32,
        commit: &mut CommitBatch,
    ) -> Record {
        let seq = self.frontier.size();
        // received_at never goes backwards, whatever the wall clock does.
        let received_at_ns = now_ns().max(self.last_received_ns);
        let fields = LeafFields { seq, received_at_ns, digest, signatures_digest, prev_hash: self.last_hash };
        let record = Record::from_leaf(&fields, payload, signatures, event);
        commit.nodes.extend(self.frontier.push(leaf_hash(&fields.to_bytes())));
        self.last_hash = record.record_hash;
        self.last_received_ns = received_at_ns;
        self.state.apply(&record);
        commit.records.push(RecordRow::from_record(&record, signatures_json));
        record
    }

    /// Checks every item of one request against the state at its position. Ok holds, per
    /// item, the existing (seq, digest) for an identical resend (the same payload bytes and
    /// signatures), or None for a new record.
    fn validate_request(
        &self,
        items: &[Prepared],
        existing: &KnownIds,
        in_batch: &KnownIds,
    ) -> Result<Vec<Option<(u64, Hash32)>>, AppendError> {
        // Keys registered or revoked earlier in this same request count for later items.
        let mut scratch: Option<KeyRegistry> = None;
        let mut mine: HashMap<(String, String), (Hash32, Hash32)> = HashMap::new();
        let mut plan = Vec::with_capacity(items.len());
        let mut position = self.frontier.size();
        for (index, item) in items.iter().enumerate() {
            let reject = |reason| AppendError::Rejected { index, reason };
            let id = (item.event.source.clone(), item.event.id.clone());
            let known = existing.get(&id).or_else(|| in_batch.get(&id)).copied();
            if let Some(k) = known
                && k.same(item)
            {
                plan.push(Some((k.seq, k.digest)));
                continue;
            }
            if let Some(identity) = mine.get(&id) {
                if *identity == (item.digest, item.signatures_digest) {
                    // The same envelope twice in one request: one record.
                    plan.push(None);
                    continue;
                }
                return Err(reject(Rejection::Conflict { event_source: id.0, id: id.1, seq: position }));
            }
            let keys = scratch.as_ref().unwrap_or(self.state.keys());
            self.authorize(item, keys, position).map_err(reject)?;
            if let Some(k) = known {
                return Err(reject(Rejection::Conflict { event_source: id.0, id: id.1, seq: k.seq }));
            }
            if item.event.event_type().is_some_and(EventType::is_key_change) || position == 0 {
                let mut next = scratch.take().unwrap_or_else(|| self.state.keys().clone());
                if let Ok(r) = Record::new(
                    position,
                    0,
                    item.envelope.payload.clone(),
                    item.envelope.signatures.clone(),
                    Hash32::ZERO,
                ) {
                    next.apply(&r);
                }
                scratch = Some(next);
            }
            mine.insert(id, (item.digest, item.signatures_digest));
            plan.push(None);
            position += 1;
        }
        // Duplicates inside the request resolve to the first occurrence's record: mark them
        // so the sequencing pass acknowledges them with that record.
        Ok(plan)
    }

    /// Authorization of one new envelope at `position` (DESIGN §2). A signature that verified
    /// in `prepare` under the same key is not checked again.
    fn authorize(&self, item: &Prepared, keys: &KeyRegistry, position: u64) -> Result<(), Rejection> {
        let ledger_key = self.ledger_key.verifier();
        let ledger = LedgerIdentity { key: &ledger_key, origin: &self.origin };
        let submission = Submission {
            seq: position,
            event: &item.event,
            signer: &item.signer,
            signatures: &item.envelope.signatures,
        };
        let verifies = |keyid: &str, vkey: &str, key: &VerifierKey| {
            let checked = item
                .envelope
                .signatures
                .iter()
                .zip(&item.verified)
                .any(|(s, v)| s.keyid == keyid && v.as_deref() == Some(vkey));
            checked || item.envelope.verify_with(key)
        };
        Ok(authorize_submission(keys, ledger, submission, verifies)?)
    }

    async fn existing_ids(&self, batch: &[Request]) -> Result<KnownIds, StoreError> {
        let synced: Vec<(String, String)> =
            batch.iter().filter_map(|r| r.sync).map(|(evidence, _)| self.synced_id(evidence)).collect();
        let ids: Vec<(&str, &str)> = batch
            .iter()
            .flat_map(|r| r.items.iter())
            .map(|p| (p.event.source.as_str(), p.event.id.as_str()))
            .chain(synced.iter().map(|(s, i)| (s.as_str(), i.as_str())))
            .collect();
        let found = bounded("find ids", self.call_timeout, self.store.find_ids(&ids)).await?;
        Ok(found
            .into_iter()
            .map(|f| {
                let known = Known { seq: f.seq, digest: f.digest, signatures_digest: f.signatures_digest };
                ((f.source, f.event_id), known)
            })
            .collect())
    }

    fn published(&mut self, commit: &CommitBatch, records: Vec<Record>) {
        if let Some(c) = commit.checkpoints.last() {
            assert_eq!(c.size, self.frontier.size(), "a committed checkpoint must cover the whole tree");
            self.checkpoint = Arc::from(c.note.as_str());
            // No receiver is fine: nobody follows this ledger live.
            let _ = self.committed_tx.send(Arc::new(Committed {
                records,
                size: c.size,
                checkpoint: self.checkpoint.clone(),
            }));
            self.head_tx.send_replace(HeadInfo {
                size: c.size,
                root: c.root,
                checkpoint: self.checkpoint.clone(),
            });
        }
    }

    /// Folds records that another writer appended after our head, and hands them to followers.
    pub async fn catch_up(&mut self) -> Result<(), OpenError> {
        self.catch_up_inner(true).await
    }

    /// [`Self::catch_up`] without telling followers (at open, and when rebuilding records
    /// they have already seen).
    pub async fn catch_up_quietly(&mut self) -> Result<(), OpenError> {
        self.catch_up_inner(false).await
    }

    async fn catch_up_inner(&mut self, tell_followers: bool) -> Result<(), OpenError> {
        let caught_up = self.catch_up_steps(tell_followers).await;
        if matches!(caught_up, Err(OpenError::Unsigned { .. } | OpenError::Inconsistent(_))) {
            // The state may hold records the store does not vouch for: fold it again before
            // anything is sequenced (and the check fails again until the store is recovered).
            self.dirty = true;
        }
        caught_up
    }

    /// Folds the records up to the stored head, which must stand at a checkpoint this ledger
    /// signed over exactly those records: the sequencer extends only what it (or another
    /// server of this ledger) committed.
    async fn catch_up_steps(&mut self, tell_followers: bool) -> Result<(), OpenError> {
        let limit = self.call_timeout;
        let Some(head) = bounded("read head", limit, self.store.head()).await? else { return Ok(()) };
        if head.size == self.frontier.size() && head.record_hash == self.last_hash {
            return Ok(());
        }
        let signed = self.signed_head(&head).await?;
        let mut pages_left =
            head.size.saturating_sub(self.frontier.size()) / u64::from(CATCH_UP_PAGE_RECORDS) + 2;
        while self.frontier.size() < head.size && pages_left > 0 {
            pages_left -= 1;
            let page = bounded(
                "read records",
                limit,
                self.store.records_bulk(self.frontier.size(), CATCH_UP_PAGE_RECORDS),
            )
            .await?;
            // The store's own promise (ordered by its key, bounded by the limit), not the
            // data's: a missing seq is reported below as an inconsistency.
            assert!(
                page.len() <= CATCH_UP_PAGE_RECORDS as usize,
                "the store returned more records than asked"
            );
            assert!(
                page.first().is_none_or(|r| r.seq >= self.frontier.size())
                    && page.windows(2).all(|w| w[0].seq < w[1].seq),
                "the store returned records out of seq order or before {}",
                self.frontier.size()
            );
            let mut records = Vec::with_capacity(page.len());
            for stored in page.into_iter().take_while(|r| r.seq < head.size) {
                let record = stored.to_record()?;
                if record.seq != self.frontier.size() || record.prev_hash != self.last_hash {
                    return Err(OpenError::Inconsistent(format!(
                        "record {} does not extend the chain",
                        record.seq
                    )));
                }
                self.frontier.push(leaf_hash(&record.leaf()));
                self.last_hash = record.record_hash;
                self.last_received_ns = self.last_received_ns.max(record.received_at_ns);
                self.state.apply(&record);
                records.push(record);
            }
            if tell_followers && self.committed_tx.receiver_count() > 0 && !records.is_empty() {
                let _ = self.committed_tx.send(Arc::new(Committed {
                    records,
                    size: self.frontier.size(),
                    checkpoint: self.checkpoint.clone(),
                }));
            }
        }
        if self.frontier.size() != head.size || self.last_hash != head.record_hash {
            return Err(OpenError::Inconsistent(format!(
                "replayed {} records but the head says {}",
                self.frontier.size(),
                head.size
            )));
        }
        if self.frontier.root() != signed.root {
            let found = format!("the first {} records do not have the root signed at that size", head.size);
            return Err(self.unsigned(found, head.size.saturating_sub(1)).await);
        }
        self.checkpoint = Arc::from(signed.note.as_str());
        self.head_tx.send_replace(HeadInfo {
            size: signed.size,
            root: signed.root,
            checkpoint: self.checkpoint.clone(),
        });
        *self.published_keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(self.state.keys().clone());
        Ok(())
    }
}

fn vec_of_errors(n: usize, e: &BatchError) -> Vec<Outcome> {
    let e = e.to_string();
    (0..n).map(|_| Outcome::Rejected(AppendError::Storage(e.clone()))).collect()
}

/// The postconditions of sequencing a batch onto a head of `base_size` records: its records
/// (those inserted as it was sequenced, `streamed`, then the rest in `commit`) have the next
/// seqs without a gap, the followers' copies match them, the tree grew by one leaf per record,
/// and the head and the one checkpoint both stand at the tree's new size.
fn check_batch(commit: &CommitBatch, streamed: &[u64], records: &[Record], base_size: u64, tree_size: u64) {
    assert_eq!(commit.base_size, base_size, "a batch must extend the head it was sequenced on");
    let seqs: Vec<u64> = streamed.iter().copied().chain(commit.records.iter().map(|r| r.seq)).collect();
    assert!(
        seqs.iter().zip(base_size..).all(|(s, seq)| *s == seq),
        "a batch's records must have contiguous seqs from {base_size}"
    );
    assert!(
        records.len() == seqs.len() && records.iter().zip(&seqs).all(|(r, s)| r.seq == *s),
        "the records handed to followers must be the batch's records"
    );
    let size = base_size + seqs.len() as u64;
    assert_eq!(tree_size, size, "the tree must grow by one leaf per record of the batch");
    let head = commit.head.as_ref().map(|h| (h.size, h.checkpoint_size));
    assert_eq!(head, Some((size, size)), "the head must stand at the tree's size, at its checkpoint");
    let checkpoints: Vec<u64> = commit.checkpoints.iter().map(|c| c.size).collect();
    assert_eq!(checkpoints, [size], "one checkpoint must cover the batch, at the tree's size");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` records from seq `base` as one batch on a head of `base` records, with the head
    /// and the checkpoint at the new size.
    fn batch(base: u64, n: u64) -> (CommitBatch, Vec<Record>) {
        let key = SignerKey::from_seed("ledger", [7; 32]).expect("a key");
        let mut commit = CommitBatch { base_size: base, ..CommitBatch::default() };
        let mut records = Vec::new();
        for seq in base..base + n {
            let data = serde_json::json!({"reason": "x"});
            let env = build_envelope(&key, "control.paused", Some("control"), data, None, 0);
            let r = Record::new(seq, 0, env.payload, env.signatures, Hash32::ZERO).expect("a record");
            commit.records.push(RecordRow::from_record(&r, signatures_canonical_json(&r.signatures)));
            records.push(r);
        }
        let size = base + n;
        commit.head =
            Some(HeadRow { size, record_hash: Hash32::ZERO, frontier: Vec::new(), checkpoint_size: size });
        commit.checkpoints =
            vec![CheckpointRow { size, root: Hash32::ZERO, note: String::new(), signed_at_ns: 0 }];
        (commit, records)
    }

    #[test]
    fn a_well_formed_batch_passes() {
        let (commit, records) = batch(5, 3);
        check_batch(&commit, &[], &records, 5, 8);
    }

    /// Rows inserted while the batch was sequenced count with the rest.
    #[test]
    fn a_batch_partly_inserted_ahead_passes_and_a_gap_between_the_parts_is_caught() {
        let (mut commit, records) = batch(5, 3);
        commit.records.drain(..2);
        check_batch(&commit, &[5, 6], &records, 5, 8);
        let caught = std::panic::catch_unwind(|| check_batch(&commit, &[5, 5], &records, 5, 8));
        assert!(caught.is_err(), "a repeated seq between the parts must be caught");
    }

    #[test]
    #[should_panic(expected = "contiguous seqs")]
    fn a_gap_in_a_batch_is_caught() {
        let (mut commit, records) = batch(5, 3);
        commit.records[1].seq = 7;
        check_batch(&commit, &[], &records, 5, 8);
    }

    #[test]
    #[should_panic(expected = "one leaf per record")]
    fn a_tree_that_did_not_grow_with_the_batch_is_caught() {
        let (commit, records) = batch(5, 3);
        check_batch(&commit, &[], &records, 5, 9);
    }

    #[test]
    #[should_panic(expected = "the head must stand at the tree's size")]
    fn a_head_behind_the_tree_is_caught() {
        let (mut commit, records) = batch(5, 3);
        if let Some(h) = commit.head.as_mut() {
            h.size = 7;
        }
        check_batch(&commit, &[], &records, 5, 8);
    }

    #[test]
    #[should_panic(expected = "one checkpoint must cover the batch")]
    fn a_checkpoint_short_of_the_tree_is_caught() {
        let (mut commit, records) = batch(5, 3);
        commit.checkpoints[0].size = 7;
        check_batch(&commit, &[], &records, 5, 8);
    }
}

//! Full verification of a stored ledger (DESIGN §9): every signature, key, role and schema,
//! the chain, the tree against every stored checkpoint, coverage of every record by a signed
//! checkpoint, rows stored beyond the head, every field of the head, and optionally consistency
//! with a checkpoint saved earlier. Reports the first bad seq (or the head field).

use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use assay_events::cloudevent::event_digest;
use assay_events::dsse::{DecodedEnvelope, PAYLOAD_TYPE, VERIFY_BATCH_MAX, verify_many};
use assay_events::keys::VerifierKey;
use assay_events::merkle::{Frontier, NodeId, leaf_hash};
use assay_events::record::Record;
use assay_projections::authorize::RecordAuthorizer;
use rayon::prelude::*;
use serde::Serialize;

use crate::ledger::prepare::expected_subject;
use crate::store::{Beyond, CheckpointRow, HeadRow, Store, StoreError, StoredRecord};

/// Records read and checked per page.
const PAGE_RECORDS: u32 = 8192;
const CHECKPOINT_PAGE: u32 = 4096;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    pub first_bad_seq: Option<u64>,
    /// The field of the head that disagrees with the log (`size`, `record_hash`, `frontier`,
    /// `checkpoint_size`), when that is the failure.
    pub head_field: Option<String>,
    pub reason: Option<String>,
    /// Stored checkpoints whose root and signature were checked.
    #[serde(skip)]
    pub checkpoints_checked: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the saved checkpoint cannot be read: {0}")]
    SavedCheckpoint(String),
}

/// A failure: at a seq, or in a field of the head, or neither (a saved checkpoint).
struct Bad {
    seq: Option<u64>,
    head_field: Option<&'static str>,
    reason: String,
}

impl Bad {
    fn at(seq: u64, reason: impl Into<String>) -> Bad {
        Bad { seq: Some(seq), head_field: None, reason: reason.into() }
    }

    fn none(reason: impl Into<String>) -> Bad {
        Bad { seq: None, head_field: None, reason: reason.into() }
    }

    /// A field of the head that disagrees with the log (and the seq it points at, if any).
    fn head(field: &'static str, seq: Option<u64>, reason: impl Into<String>) -> Bad {
        Bad { seq, head_field: Some(field), reason: reason.into() }
    }
}

/// Verifies everything; `progress(done, total)` is called after each page.
///
/// The log is checked as of the head read first: its records, the checkpoints over them and
/// the head's fields. Anything stored beyond that head (a record, a tree node, a checkpoint) is
/// reported unless the head has moved meanwhile (a commit landed during the walk).
pub async fn verify(
    store: &Store,
    saved_checkpoint: Option<&str>,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let head = store.head().await?;
    let total = head.as_ref().map_or(0, |h| h.size);
    // Records past the last stored checkpoint no signed checkpoint covers.
    let covered = store.checkpoint_at_most(u64::MAX).await?.map_or(0, |c| c.size);
    let saved_size =
        saved_checkpoint.and_then(|note| Checkpoint::parse_unverified(note).ok()).map(|c| c.size);
    // The empty tree's root, which no record's push passes.
    let saved_root = (saved_size == Some(0)).then(|| Frontier::new().root());
    let mut v = Verifier { saved_size, saved_root, ..Verifier::default() };
    let mut checkpoints = CheckpointCursor::default();
    let outcome: Result<(), Bad> = async {
        let fetch = store.clone();
        let mut pages = crate::store::read_ahead(0, total, PAGE_RECORDS, move |next, limit| {
            let store = fetch.clone();
            async move { store.records_bulk(next, limit).await }
        });
        // Two pages in flight: the checks of each record alone, the keys and the signatures of
        // page k+1 (stages 1–3, on every core) run while the ordered stage of page k folds the
        // tree and reads the stored nodes and checkpoints. Page k's failures are still reported
        // before any of page k+1's.
        let mut ready: Option<Checked> = None;
        let mut next_seq = 0u64;
        let mut unread: Option<StoreError> = None;
        loop {
            let job = match pages.recv().await {
                Some(Ok(page)) => {
                    let mut auth = std::mem::take(&mut v.auth);
                    let start = next_seq;
                    Some(tokio::task::spawn_blocking(move || {
                        let checked = check_page(&mut auth, start, page);
                        (auth, checked)
                    }))
                }
                Some(Err(e)) => {
                    unread = Some(e);
                    None
                }
                None => None,
            };
            if let Some(checked) = ready.take() {
                match v.ordered(store, checked, &mut checkpoints).await {
                    // A record no checkpoint covers is reported as that, whatever else is wrong with it.
                    Err(Bad { seq: Some(seq), .. }) if seq >= covered => return Err(uncovered(covered)),
                    walked => walked?,
                }
                progress(v.frontier.size(), total);
            }
            let Some(job) = job else { break };
            let (auth, checked) = job.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            v.auth = auth;
            next_seq = checked.start + checked.links.len() as u64;
            ready = Some(checked);
        }
        if let Some(e) = unread {
            return Err(e.into());
        }
        v.finish(store, head.as_ref(), covered, &mut checkpoints).await?;
        if let Some(note) = saved_checkpoint {
            v.saved(store, note).await?;
        }
        Ok(())
    }
    .await;
    let records = v.frontier.size();
    let failed = |bad: Bad| VerifyReport {
        ok: false,
        records,
        first_bad_seq: bad.seq,
        head_field: bad.head_field.map(str::to_owned),
        reason: Some(bad.reason),
        checkpoints_checked: v.checkpoints,
    };
    Ok(match outcome {
        Ok(()) => VerifyReport {
            ok: true,
            records,
            first_bad_seq: None,
            head_field: None,
            reason: None,
            checkpoints_checked: v.checkpoints,
        },
        Err(bad) => failed(bad),
    })
}

/// The failure of a log whose records from `covered` on no stored checkpoint covers.
fn uncovered(covered: u64) -> Bad {
    let last = match covered {
        0 => "no checkpoint is stored".to_owned(),
        n => format!("the last signed checkpoint is at size {n}"),
    };
    Bad::at(covered, format!("no signed checkpoint covers record {covered} or any after it ({last})"))
}

impl From<StoreError> for Bad {
    fn from(e: StoreError) -> Bad {
        Bad::none(format!("storage: {e}"))
    }
}

/// What the ordered stage needs of a record whose signature is being checked.
struct Link {
    seq: u64,
    prev_hash: Hash32,
    record_hash: Hash32,
}

#[derive(Default)]
struct Verifier {
    /// Keys and roles as of the next record; genesis's ledger key and origin.
    auth: RecordAuthorizer,
    frontier: Frontier,
    last_hash: Hash32,
    checkpoints: u64,
    /// The size of the last checkpoint checked.
    checkpoint_size: u64,
    /// The size of the saved checkpoint (`--checkpoint`), read before the walk (unverified: its
    /// signature is checked once the walk has found the ledger key), and the root of the
    /// records' own tree at that size, taken as the walk passes it: the saved checkpoint is
    /// checked against the records without reading them a second time.
    saved_size: Option<u64>,
    saved_root: Option<Hash32>,
}

/// Stored checkpoints, read in pages as the verifier walks the log.
#[derive(Default)]
struct CheckpointCursor {
    buffered: std::collections::VecDeque<CheckpointRow>,
    next_from: u64,
    exhausted: bool,
}

impl CheckpointCursor {
    async fn peek(&mut self, store: &Store) -> Result<Option<&CheckpointRow>, StoreError> {
        if self.buffered.is_empty() && !self.exhausted {
            let page = store.checkpoints(self.next_from, CHECKPOINT_PAGE).await?;
            self.exhausted = page.len() < CHECKPOINT_PAGE as usize;
            if let Some(last) = page.last() {
                self.next_from = last.size + 1;
            }
            self.buffered.extend(page);
        }
        Ok(self.buffered.front())
    }
}

impl Verifier {
    /// Stage 4 of a page whose stages 1–3 are done, in order: chain, tree, checkpoints;
    /// whichever failure comes first wins, then the stored tree nodes, then the failure
    /// stage 1 or 2 left pending.
    async fn ordered(&mut self, store: &Store, page: Checked, cps: &mut CheckpointCursor) -> Result<(), Bad> {
        let mut nodes: Vec<(NodeId, Hash32, u64)> = Vec::with_capacity(2 * page.links.len());
        for (record, leaf) in page.links.iter().zip(page.leaves) {
            if page.bad_sig == Some(record.seq) {
                return Err(Bad::at(record.seq, "signature does not verify"));
            }
            if record.prev_hash != self.last_hash {
                return Err(Bad::at(record.seq, "prev_hash does not link to the previous record"));
            }
            for (id, hash) in self.frontier.push(leaf) {
                nodes.push((id, hash, record.seq));
            }
            if self.saved_size == Some(self.frontier.size()) {
                self.saved_root = Some(self.frontier.root());
            }
            self.last_hash = record.record_hash;
            self.check_checkpoints(store, cps, page.ledger_key.as_ref(), &page.origin).await?;
        }
        // The stored tree must be the one the records make: proofs are served from it. The
        // nodes a page completes are, per level, one contiguous run of indexes.
        let mut levels: std::collections::BTreeMap<u8, Vec<(u64, Hash32, u64)>> =
            std::collections::BTreeMap::new();
        for (id, hash, seq) in nodes {
            levels.entry(id.level).or_default().push((id.index, hash, seq));
        }
        for (level, expected) in levels {
            let (first, last) = (expected[0].0, expected[expected.len() - 1].0);
            let stored = store.nodes_range(level, first, last).await?;
            let mut stored = stored.into_iter().peekable();
            for (index, hash, seq) in expected {
                while stored.next_if(|(i, _)| *i < index).is_some() {}
                if stored.next_if(|(i, h)| *i == index && *h == hash).is_none() {
                    return Err(Bad::at(
                        seq,
                        format!("stored tree node (level {level}, index {index}) does not match the records"),
                    ));
                }
            }
        }
        page.pending.map_or(Ok(()), Err)
    }

    /// The origin genesis names ("" before genesis).
    fn origin(&self) -> &str {
        self.auth.keys().origin().unwrap_or_default()
    }

    /// The checkpoint signed at the tree's present size, if one is stored: it must verify under
    /// `ledger_key` and name `origin` (genesis's, as of the page being folded).
    async fn check_checkpoints(
        &mut self,
        store: &Store,
        cps: &mut CheckpointCursor,
        ledger_key: Option<&VerifierKey>,
        origin: &str,
    ) -> Result<(), Bad> {
        let size = self.frontier.size();
        let Some(cp) = cps.peek(store).await? else { return Ok(()) };
        if cp.size > size {
            return Ok(());
        }
        let cp = cps.buffered.pop_front().expect("peeked");
        if cp.size < size {
            return Err(Bad::none(format!("checkpoint at size {} out of order", cp.size)));
        }
        let seq = size - 1;
        let key = ledger_key.ok_or_else(|| Bad::at(0, "no genesis"))?;
        let opened = Checkpoint::open(&cp.note, key)
            .map_err(|e| Bad::at(seq, format!("checkpoint at size {size}: {e}")))?;
        let root = self.frontier.root();
        if opened.size != size || opened.root != root || cp.root != root || opened.origin != origin {
            return Err(Bad::at(
                seq,
                format!(
                    "the tree of the first {size} records does not match the checkpoint signed at that size"
                ),
            ));
        }
        self.checkpoints += 1;
        self.checkpoint_size = size;
        Ok(())
    }

    /// After the walk over the head's records: records the walk did not reach, coverage by a
    /// signed checkpoint, rows stored beyond the head, and the head's fields.
    async fn finish(
        &mut self,
        store: &Store,
        head: Option<&HeadRow>,
        covered: u64,
        cps: &mut CheckpointCursor,
    ) -> Result<(), Bad> {
        let size = self.frontier.size();
        let head_size = head.map_or(0, |h| h.size);
        if size < head_size {
            if let Some(cp) = cps.peek(store).await?.filter(|cp| cp.size <= head_size) {
                return Err(Bad::at(
                    size,
                    format!("record {size} is missing: a checkpoint was signed at size {}", cp.size),
                ));
            }
            return Err(Bad::head(
                "size",
                Some(size),
                format!("head.size says {head_size} records, the log holds {size}"),
            ));
        }
        if size > covered {
            return Err(uncovered(covered));
        }
        self.beyond_head(store, head, cps).await?;
        let Some(head) = head else { return Ok(()) };
        if head.record_hash != self.last_hash {
            return Err(Bad::head(
                "record_hash",
                Some(size.saturating_sub(1)),
                "head.record_hash does not match the last record",
            ));
        }
        if head.frontier != self.frontier.to_bytes() {
            return Err(Bad::head(
                "frontier",
                None,
                format!("head.frontier does not match the tree of the log's {size} records"),
            ));
        }
        if head.checkpoint_size != self.checkpoint_size {
            return Err(Bad::head(
                "checkpoint_size",
                None,
                format!(
                    "head.checkpoint_size is {}, but the last signed checkpoint is at size {}",
                    head.checkpoint_size, self.checkpoint_size
                ),
            ));
        }
        Ok(())
    }

    /// Rows stored beyond the head's `size` records: none in an honest log, unless a commit
    /// landed during the walk (the head then has moved, and they are left to the next run).
    async fn beyond_head(
        &mut self,
        store: &Store,
        head: Option<&HeadRow>,
        cps: &mut CheckpointCursor,
    ) -> Result<(), Bad> {
        let size = self.frontier.size();
        let record_or_node = store.beyond(size).await?;
        let checkpoint = cps.peek(store).await?.map(|cp| cp.size);
        if (record_or_node.is_none() && checkpoint.is_none()) || store.head().await?.as_ref() != head {
            return Ok(());
        }
        match (record_or_node, checkpoint) {
            (Some(Beyond::Record(seq)), _) if head.is_none() => {
                Err(Bad::at(seq, "records exist but the head is missing"))
            }
            (Some(Beyond::Record(seq)), Some(cp)) => Err(Bad::head(
                "size",
                Some(size),
                format!(
                    "head.size says {size} records, but record {seq} is stored and a checkpoint is signed at size {cp}"
                ),
            )),
            (Some(Beyond::Record(seq)), None) => Err(Bad::at(
                seq,
                format!(
                    "record {seq} is stored beyond the head ({size} records) and no signed checkpoint covers it"
                ),
            )),
            (_, Some(cp)) => {
                Err(Bad::at(size, format!("record {size} is missing: a checkpoint was signed at size {cp}")))
            }
            (Some(node), None) => Err(Bad::at(
                node.first_seq(size),
                format!("{node} is stored beyond the log's {size} records"),
            )),
            (None, None) => Ok(()),
        }
    }

    async fn saved(&mut self, store: &Store, note: &str) -> Result<(), Bad> {
        let key = self.auth.keys().ledger_key().ok_or_else(|| Bad::none("the ledger has no genesis"))?;
        let saved = Checkpoint::open(note, key).map_err(|e| Bad::none(format!("saved checkpoint: {e}")))?;
        if saved.origin != self.origin() {
            return Err(Bad::none(format!(
                "saved checkpoint is for origin {:?}, not {:?}",
                saved.origin,
                self.origin()
            )));
        }
        let size = self.frontier.size();
        if saved.size > size {
            return Err(Bad::at(
                size,
                format!(
                    "checkpoint inconsistency: the saved checkpoint covers {} records but the log holds {size}",
                    saved.size
                ),
            ));
        }
        let root = crate::proof::root_at(store, saved.size).await.map_err(|e| Bad::none(e.to_string()))?;
        // The walk passed every size up to the log's, so it took the root at this one (read
        // from the same note before the walk).
        let recomputed =
            self.saved_root.filter(|_| self.saved_size == Some(saved.size)).ok_or_else(|| {
                Bad::none(format!("the walk took no root at the saved checkpoint's size {}", saved.size))
            })?;
        if root != saved.root || recomputed != saved.root {
            return Err(Bad::none(format!(
                "checkpoint inconsistency: the log's first {} records do not have the root of the saved checkpoint",
                saved.size
            )));
        }
        Ok(())
    }
}

/// What stages 1–3 make of a page, for the ordered stage.
struct Checked {
    /// The seq the page had to start at.
    start: u64,
    links: Vec<Link>,
    leaves: Vec<Hash32>,
    /// The first record whose signature does not verify.
    bad_sig: Option<u64>,
    /// The failure of stage 1 or 2 that ended the page early, reported once everything before
    /// it has passed stage 4.
    pending: Option<Bad>,
    /// The ledger key and origin genesis named, as of the page's last record: checkpoints
    /// signed within the page are checked under them.
    ledger_key: Option<VerifierKey>,
    origin: String,
}

/// Stages 1–3 of a page that must start at seq `start`, `auth` holding the keys and roles as
/// of that seq: each record alone in parallel (hashes, payload, schema, leaf hash), then in
/// order the key that must have signed it, then the signatures in parallel. The page's rows
/// are consumed: each payload moves into its record, and each row is freed on the core that
/// checked it.
fn check_page(auth: &mut RecordAuthorizer, start: u64, page: Vec<StoredRecord>) -> Checked {
    // Stage 1, in parallel: each record alone (hashes, payload, schema).
    // The leaf hash is computed here too, so the ordered stage only folds the tree.
    let parsed: Vec<_> = page.into_par_iter().map(|s| (s.seq, check_alone(s))).collect();
    // Stage 2, in order: the key that must have signed each record, as of its seq.
    // An error here is reported only if no earlier record fails a later stage.
    let mut jobs = Vec::with_capacity(parsed.len());
    let mut leaves = Vec::with_capacity(parsed.len());
    let mut pending: Option<Bad> = None;
    for (stored_seq, record) in parsed {
        let seq = start + jobs.len() as u64;
        if stored_seq != seq {
            pending =
                Some(Bad::at(seq, format!("record {seq} is missing (next stored seq is {stored_seq})")));
            break;
        }
        let checked = record.and_then(|(record, leaf)| {
            let verifier = auth.authorize(&record).map_err(|e| Bad::at(record.seq, e.to_string()))?;
            Ok((record, leaf, verifier))
        });
        match checked {
            Ok((record, leaf, verifier)) => {
                leaves.push(leaf);
                jobs.push((record, verifier));
            }
            Err(bad) => {
                pending = Some(bad);
                break;
            }
        }
    }
    // Stage 3, in parallel: signatures, in Ed25519 batches (the check ingest applies). Each
    // record's payload and signatures move into its envelope (no copy); stage 4 needs only
    // its seq and hashes.
    let (links, checks): (Vec<Link>, Vec<(DecodedEnvelope, VerifierKey)>) = jobs
        .into_par_iter()
        .map(|(r, key)| {
            let link = Link { seq: r.seq, prev_hash: r.prev_hash, record_hash: r.record_hash };
            let envelope = DecodedEnvelope {
                payload_type: PAYLOAD_TYPE.to_owned(),
                payload: r.payload,
                signatures: r.signatures,
            };
            (link, (envelope, key))
        })
        .unzip();
    let pairs: Vec<(&DecodedEnvelope, &VerifierKey)> = checks.iter().map(|(e, k)| (e, k)).collect();
    let verdicts: Vec<bool> = pairs.par_chunks(VERIFY_BATCH_MAX).flat_map_iter(verify_many).collect();
    let bad_sig = verdicts.iter().position(|ok| !ok).map(|i| links[i].seq);
    // Payloads and signatures are freed on every core, not on this one while the others wait.
    drop(pairs);
    checks.into_par_iter().for_each(drop);
    Checked {
        start,
        links,
        leaves,
        bad_sig,
        pending,
        ledger_key: auth.keys().ledger_key().cloned(),
        origin: auth.keys().origin().unwrap_or_default().to_owned(),
    }
}

/// Checks of one record that need nothing else: the stored hashes against the bytes, the
/// columns against the payload, the schema. Ok is the record (its payload moved out of the
/// row) and its Merkle leaf hash.
fn check_alone(mut stored: StoredRecord) -> Result<(Record, Hash32), Bad> {
    let seq = stored.seq;
    let bad = |m: String| Bad::at(seq, m);
    let digest = event_digest(&stored.payload);
    if digest != stored.digest {
        return Err(bad("payload does not match its digest".into()));
    }
    let (record, fields) = stored.take_record_hashed(digest).map_err(|e| bad(e.to_string()))?;
    if record.record_hash != stored.record_hash {
        return Err(bad("record hash does not match the record's leaf".into()));
    }
    let e = &record.event;
    if e.source != stored.source
        || e.id != stored.id_column()
        || e.ty != stored.ty
        || e.subject != stored.subject
        || e.time != stored.time
    {
        return Err(bad("indexed columns disagree with the payload".into()));
    }
    check_content(&record).map_err(|e| bad(e.to_string()))?;
    let leaf = leaf_hash(&fields.to_bytes());
    Ok((record, leaf))
}

/// Checks of a stored record's content that need nothing else: the schema of its `data` (as
/// stored records are read, [`crate::schema::validate_recorded`]) and its subject. Export
/// verification checks exported records with it too.
pub(crate) fn check_content(record: &Record) -> Result<(), ContentError> {
    let e = &record.event;
    crate::schema::validate_recorded(&e.ty, &e.data)?;
    if let Some(expected) = expected_subject(e)
        && e.subject.as_deref() != Some(expected.as_str())
    {
        return Err(ContentError::Subject { expected });
    }
    Ok(())
}

/// Why a record's content is wrong on its own ([`check_content`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContentError {
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error("subject must be {expected}")]
    Subject { expected: String },
}

impl StoredRecord {
    fn id_column(&self) -> &str {
        &self.event_id
    }
}

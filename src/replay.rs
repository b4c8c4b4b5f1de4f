//! Replay: the projections as of any seq, folded from the log.
//!
//! The store reads pages one ahead ([`Store::scan_fold`]: only the columns a record needs).
//! One worker a core takes the next page, parses it into records, waits for its turn (pages
//! are folded in seq order, one at a time), folds it, and frees it. A page is parsed, folded
//! and freed on one thread: no stage waits for another but the fold's turn, and every
//! allocation of a parsed record is freed by the thread that made it (freeing another
//! thread's memory costs mimalloc several times more).

use std::sync::{Condvar, Mutex, PoisonError};

use assay_events::Hash32;
use assay_events::record::Record;
use assay_projections::Projections;
use tokio::sync::{mpsc, watch};

use crate::store::{FoldRecord, Store, StoreError, StoredRecord};

/// Records read per query.
const PAGE_RECORDS: u32 = 8192;

/// Workers at most: past a few, the ordered fold is the bound.
const WORKERS_MAX: usize = 8;

/// Folds records `0..=at` (all when `at` is None); `progress(done, total)` as pages are folded.
pub async fn replay(
    store: &Store,
    at: Option<u64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Projections, StoreError> {
    let head = store.head().await?.map_or(0, |h| h.size);
    let end = at.map_or(head, |a| a.saturating_add(1).min(head));
    let pages = Mutex::new(Pages { rx: store.scan_fold(0, PAGE_RECORDS), taken: 0, next_seq: 0 });
    let (folded_tx, mut folded_rx) = watch::channel(0u64);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, WORKERS_MAX);
    // The workers block (on the reader's channel, on their turn), so they run where blocking
    // is allowed.
    let mut fold = tokio::task::spawn_blocking(move || {
        let turns = Turns::default();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| work(&pages, &turns, end, &folded_tx));
            }
        });
        turns.finish()
    });
    let done = loop {
        tokio::select! {
            done = &mut fold => break done,
            Ok(()) = folded_rx.changed() => progress(*folded_rx.borrow_and_update(), end),
        }
    };
    match done {
        Ok(result) => {
            let projections = result?;
            if end > 0 {
                // The last page's update may have lost the race with the workers' end.
                progress(projections.seq().map_or(0, |s| s + 1), end);
            }
            Ok(projections)
        }
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::Corrupt(format!("the fold did not finish: {e}"))),
    }
}

/// The reader's pages, handed out in order: the n-th page taken has turn n.
struct Pages {
    rx: mpsc::Receiver<Result<Vec<FoldRecord>, StoreError>>,
    /// Pages handed out so far.
    taken: u64,
    /// The seq the next page handed out starts at (records past `end` are not handed out).
    next_seq: u64,
}

/// The fold, taken in turn.
#[derive(Default)]
struct Turns {
    state: Mutex<Fold>,
    turn_done: Condvar,
}

#[derive(Default)]
struct Fold {
    projections: Projections,
    /// The turn (page) whose fold is due.
    turn: u64,
    /// The seq the next record folded must have.
    next: u64,
    /// The first error in page order; once set, later pages are not folded.
    error: Option<StoreError>,
}

impl Turns {
    /// Waits for turn `turn`, runs `f` on the state, and passes the turn on (also if `f`
    /// panics: the workers waiting for later turns then finish, and the panic is the scope's).
    fn take(&self, turn: u64, f: impl FnOnce(&mut Fold)) {
        let mut fold = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while fold.turn != turn {
            fold = self.turn_done.wait(fold).unwrap_or_else(PoisonError::into_inner);
        }
        let mut passing = Passing { turns: self, fold };
        f(&mut passing.fold);
    }

    fn failed(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).error.is_some()
    }

    fn finish(self) -> Result<Projections, StoreError> {
        let fold = self.state.into_inner().unwrap_or_else(PoisonError::into_inner);
        match fold.error {
            Some(e) => Err(e),
            None => Ok(fold.projections),
        }
    }
}

/// The state held for one turn; dropping it passes the turn on.
struct Passing<'a> {
    turns: &'a Turns,
    fold: std::sync::MutexGuard<'a, Fold>,
}

impl Drop for Passing<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && self.fold.error.is_none() {
            self.fold.error =
                Some(StoreError::Corrupt(format!("the fold of turn {} panicked", self.fold.turn)));
        }
        self.fold.turn += 1;
        self.turns.turn_done.notify_all();
    }
}

/// One worker: takes pages until the reader's last (or the first error), each parsed, folded
/// in its turn and freed here.
fn work(pages: &Mutex<Pages>, turns: &Turns, end: u64, folded: &watch::Sender<u64>) {
    // Each pass takes one page; the reader ends after `end` records or at the log's end.
    loop {
        if turns.failed() {
            return;
        }
        let (turn, page) = {
            let mut p = pages.lock().unwrap_or_else(PoisonError::into_inner);
            if p.next_seq >= end {
                return;
            }
            let Some(page) = p.rx.blocking_recv() else { return };
            let page = page.map(|mut page| {
                // A page starts at or after the seq asked for: keep only the records before
                // `end` (by count, as the fold's seq check then finds any gap).
                page.truncate(usize::try_from(end - p.next_seq).unwrap_or(usize::MAX));
                if let Some(last) = page.last() {
                    p.next_seq = last.seq + 1;
                }
                page
            });
            let empty = matches!(&page, Ok(records) if records.is_empty());
            if empty {
                return;
            }
            p.taken += 1;
            (p.taken - 1, page)
        };
        // Parsed before the turn, beside the other workers' parses and the fold. A panic here
        // still takes its turn (so no worker waits for it forever) before it goes on.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            page.and_then(|page| page.into_iter().map(trusted_fold).collect::<Result<Vec<Record>, _>>())
        }));
        let (records, error) = match parsed {
            Ok(Ok(records)) => (records, None),
            Ok(Err(e)) => (Vec::new(), Some(e)),
            Err(panic) => {
                turns.take(turn, |fold| {
                    fold.error
                        .get_or_insert(StoreError::Corrupt(format!("the parse of turn {turn} panicked")));
                });
                std::panic::resume_unwind(panic)
            }
        };
        turns.take(turn, |fold| {
            if fold.error.is_some() {
                return;
            }
            if let Some(e) = error {
                fold.error = Some(e);
                return;
            }
            for r in &records {
                if r.seq != fold.next {
                    fold.error = Some(StoreError::Corrupt(format!("record {} is missing", fold.next)));
                    return;
                }
                fold.projections.apply(r);
                fold.next += 1;
            }
            folded.send_replace(fold.next);
        });
        // Freed on the thread that parsed it, after the turn is passed on.
        drop(records);
    }
}

/// The record as stored, its hashes taken as stored: replay folds state; `assay verify` is
/// what checks hashes and signatures. The payload is copied into the record; the signatures
/// are parsed from the stored JSON in place.
pub(crate) fn trusted(stored: &StoredRecord) -> Result<Record, StoreError> {
    let hashes =
        Hashes { prev_hash: stored.prev_hash, digest: stored.digest, record_hash: stored.record_hash };
    record_of(stored.seq, stored.received_at_ns, stored.payload.clone(), &stored.signatures, hashes)
}

/// [`trusted`] of a row read for a fold: its payload moves into the record.
fn trusted_fold(row: FoldRecord) -> Result<Record, StoreError> {
    let hashes = Hashes { prev_hash: row.prev_hash, digest: row.digest, record_hash: row.record_hash };
    record_of(row.seq, row.received_at_ns, row.payload, &row.signatures, hashes)
}

/// A record's three stored hashes, taken as stored.
struct Hashes {
    prev_hash: Hash32,
    digest: Hash32,
    record_hash: Hash32,
}

/// The one place a stored row becomes a [`Record`] without checks: [`trusted`] and
/// [`trusted_fold`] differ only in whether the payload is theirs to move.
fn record_of(
    seq: u64,
    received_at_ns: i64,
    payload: Vec<u8>,
    signatures_json: &[u8],
    hashes: Hashes,
) -> Result<Record, StoreError> {
    let signatures = assay_events::dsse::signatures_from_json(signatures_json)
        .map_err(|e| StoreError::Corrupt(format!("seq {seq}: {e}")))?;
    let event = assay_events::cloudevent::CloudEvent::parse(&payload)
        .map_err(|e| StoreError::Corrupt(format!("seq {seq}: {e}")))?;
    Ok(Record {
        seq,
        received_at_ns,
        payload,
        signatures,
        prev_hash: hashes.prev_hash,
        digest: hashes.digest,
        record_hash: hashes.record_hash,
        event,
    })
}

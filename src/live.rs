//! Live projections: every projection folded from the log and kept current from the ledger's
//! committed batches ([`Ledger::subscribe`]). A follower that falls behind the broadcast, or
//! sees a gap, reads the missing records from the store, so it applies every record once, in
//! seq order.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use assay_events::record::Record;
use assay_projections::Projections;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::ledger::{Committed, Ledger};
use crate::store::{Store, StoreError};

/// Records read per query while catching up.
const CATCH_UP_PAGE_RECORDS: u32 = 4096;

/// Projections kept current with the ledger's head. Dropping it stops the follower.
pub struct LiveProjections {
    state: Arc<RwLock<Projections>>,
    task: JoinHandle<()>,
}

impl LiveProjections {
    /// Folds the whole log, then follows the ledger.
    pub async fn start(ledger: &Ledger) -> Result<LiveProjections, StoreError> {
        let (folded, rx) = match ledger.take_opened_state() {
            // The sequencer's fold at open, with the batches committed since: no second replay.
            Some(opened) => opened,
            None => {
                // Subscribe first: nothing committed after the fold below can be missed.
                let rx = ledger.subscribe();
                (crate::replay::replay(ledger.store(), None, |_, _| {}).await?, rx)
            }
        };
        let state = Arc::new(RwLock::new(folded));
        let task = tokio::spawn(follow(ledger.store().clone(), rx, state.clone()));
        Ok(LiveProjections { state, task })
    }

    /// The current state; hold the guard briefly (the follower waits for it).
    pub fn read(&self) -> RwLockReadGuard<'_, Projections> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state, unless the follower is applying a batch right now.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, Projections>> {
        match self.state.try_read() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The seq of the last record applied.
    pub fn seq(&self) -> Option<u64> {
        self.read().seq()
    }
}

impl Drop for LiveProjections {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(
    store: Store,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Committed>>,
    state: Arc<RwLock<Projections>>,
) {
    let next_of = |state: &RwLock<Projections>| {
        state.read().unwrap_or_else(|p| p.into_inner()).seq().map_or(0, |s| s + 1)
    };
    loop {
        let behind = match rx.recv().await {
            Ok(batch) => {
                let next = next_of(&state);
                match batch.records.first() {
                    Some(first) if first.seq > next => true,
                    _ => {
                        apply(&state, batch.records.iter().filter(|r| r.seq >= next));
                        false
                    }
                }
            }
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => return,
        };
        if behind && let Err(e) = catch_up(&store, &state, next_of(&state)).await {
            tracing::warn!(error = %e, "live projections could not read the store; retrying");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

fn apply<'a>(state: &RwLock<Projections>, records: impl Iterator<Item = &'a Record>) {
    let mut p = state.write().unwrap_or_else(|p| p.into_inner());
    for r in records {
        p.apply(r);
    }
}

/// Applies every stored record from `next` on.
async fn catch_up(store: &Store, state: &RwLock<Projections>, mut next: u64) -> Result<(), StoreError> {
    loop {
        let page = store.records(next, CATCH_UP_PAGE_RECORDS).await?;
        let records: Vec<Record> = page.iter().map(crate::replay::trusted).collect::<Result<_, _>>()?;
        if records.first().is_some_and(|r| r.seq != next) {
            return Err(StoreError::Corrupt(format!("record {next} is missing")));
        }
        apply(state, records.iter());
        match records.last() {
            Some(last) if records.len() == CATCH_UP_PAGE_RECORDS as usize => next = last.seq + 1,
            _ => return Ok(()),
        }
    }
}

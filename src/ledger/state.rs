//! The state the sequencer decides with: every projection, folded from every record in seq
//! order. Authorization reads its key registry; gates read the queue, the corpus, the GPUs
//! and the audit's runs, evidence and claims.

use assay_events::record::Record;
use assay_projections::{KeyRegistry, Projections};

#[derive(Debug, Clone)]
pub struct LedgerState {
    pub projections: Projections,
    /// Every projection whole; else only what gates read ([`Projections::for_gates`]).
    full: bool,
}

impl LedgerState {
    /// The empty state. `full`: every projection whole, for a service that takes the state
    /// folded at open as its read model; otherwise the audit keeps no metric points (no gate
    /// reads them), so a one-shot append does not hold one per metric of the ledger.
    pub fn new(full: bool) -> LedgerState {
        let projections = if full { Projections::new() } else { Projections::for_gates() };
        LedgerState { projections, full }
    }

    /// The empty state of the same kind.
    pub fn emptied(&self) -> LedgerState {
        LedgerState::new(self.full)
    }

    pub fn apply(&mut self, record: &Record) {
        self.projections.apply(record);
    }

    pub fn keys(&self) -> &KeyRegistry {
        &self.projections.keys
    }
}

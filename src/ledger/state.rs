//! The state the sequencer decides with: every projection, folded from every record in seq
//! order. Authorization reads its key registry; gates read the queue and the corpus.

use assay_events::record::Record;
use assay_projections::{KeyRegistry, Projections};

#[derive(Debug, Clone, Default)]
pub struct LedgerState {
    pub projections: Projections,
}

impl LedgerState {
    pub fn apply(&mut self, record: &Record) {
        self.projections.apply(record);
    }

    pub fn keys(&self) -> &KeyRegistry {
        &self.projections.keys
    }
}

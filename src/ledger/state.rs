//! The state the sequencer decides with: folded from every record, in seq order.

use assay_events::record::Record;
use assay_projections::KeyRegistry;

/// What gates and authorization consult. Rebuilt from the log at open.
#[derive(Debug, Clone, Default)]
pub struct LedgerState {
    pub keys: KeyRegistry,
}

impl LedgerState {
    pub fn apply(&mut self, record: &Record) {
        self.keys.apply(record);
    }
}

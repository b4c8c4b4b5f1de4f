//! All projections together, folded from the same records.

use std::collections::BTreeMap;

use assay_events::Hash32;
use assay_events::record::Record;
use serde::Serialize;
use serde_json::Value;

use crate::audit::{Audit, AuditReport};
use crate::corpus::Corpus;
use crate::digest::state_digest;
use crate::gpus::Gpus;
use crate::kernels::Kernels;
use crate::keys::KeyRegistry;
use crate::queue::Queue;

/// Projection names, in display order. `verdicts` is the audit report (evaluated from
/// `audit`, `keys` and `corpus`), listed so that its digest can be compared too.
pub const NAMES: &[&str] = &["keys", "queue", "corpus", "audit", "gpus", "kernels", "verdicts"];

/// The state folded from records `0..=seq`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Projections {
    pub keys: KeyRegistry,
    pub queue: Queue,
    pub corpus: Corpus,
    pub audit: Audit,
    pub gpus: Gpus,
    pub kernels: Kernels,
    /// Seq of the last record applied.
    seq: Option<u64>,
}

impl Projections {
    pub fn new() -> Projections {
        Projections::default()
    }

    /// Folds records in order from the empty state.
    pub fn replay<'a>(records: impl IntoIterator<Item = &'a Record>) -> Projections {
        let mut p = Projections::new();
        for r in records {
            p.apply(r);
        }
        p
    }

    /// Folds one record. Records must come in seq order.
    pub fn apply(&mut self, record: &Record) {
        self.keys.apply(record);
        self.queue.apply(record);
        self.corpus.apply(record);
        self.audit.apply(record);
        self.gpus.apply(record);
        self.kernels.apply(record);
        self.seq = Some(record.seq);
    }

    /// Seq of the last record applied (`None` before genesis).
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    pub fn names() -> &'static [&'static str] {
        NAMES
    }

    /// The audit report of this state.
    pub fn audit_report(&self) -> AuditReport {
        self.audit.report(&self.keys, &self.corpus)
    }

    /// One digest per name in [`NAMES`]: blake3 of the canonical JSON of each state.
    pub fn digests(&self) -> BTreeMap<&'static str, Hash32> {
        NAMES.iter().filter_map(|n| Some((*n, self.digest(n)?))).collect()
    }

    /// The digest of one projection; `None` for an unknown name.
    pub fn digest(&self, name: &str) -> Option<Hash32> {
        Some(match name {
            "keys" => self.keys.digest(),
            "queue" => self.queue.digest(),
            "corpus" => self.corpus.digest(),
            "audit" => self.audit.digest(),
            "gpus" => self.gpus.digest(),
            "kernels" => self.kernels.digest(),
            "verdicts" => state_digest(&self.audit_report()),
            _ => return None,
        })
    }

    /// The state of one projection as JSON (the bytes its digest covers); `None` for an
    /// unknown name.
    pub fn state_json(&self, name: &str) -> Option<Value> {
        match name {
            "keys" => serde_json::to_value(&self.keys).ok(),
            "queue" => serde_json::to_value(&self.queue).ok(),
            "corpus" => serde_json::to_value(&self.corpus).ok(),
            "audit" => serde_json::to_value(&self.audit).ok(),
            "gpus" => serde_json::to_value(&self.gpus).ok(),
            "kernels" => serde_json::to_value(&self.kernels).ok(),
            "verdicts" => serde_json::to_value(self.audit_report()).ok(),
            _ => None,
        }
    }
}

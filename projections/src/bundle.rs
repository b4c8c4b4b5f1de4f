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
use crate::name::ProjectionName;
use crate::queue::Queue;

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

    /// The state gates are decided with: every projection, the audit without metric
    /// points ([`Audit::for_gates`]), so it does not grow with metric events. Its audit
    /// digest and report are not the ledger's.
    pub fn for_gates() -> Projections {
        Projections { audit: Audit::for_gates(), ..Projections::default() }
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

    /// Every projection, in display order.
    pub fn names() -> &'static [ProjectionName] {
        ProjectionName::ALL
    }

    /// The audit report of this state.
    pub fn audit_report(&self) -> AuditReport {
        self.audit.report(&self.keys, &self.corpus)
    }

    /// One digest per projection, keyed by its name: blake3 of the canonical JSON of each
    /// state.
    pub fn digests(&self) -> BTreeMap<&'static str, Hash32> {
        ProjectionName::ALL.iter().map(|n| (n.as_str(), self.digest(*n))).collect()
    }

    /// The digest of one projection.
    pub fn digest(&self, name: ProjectionName) -> Hash32 {
        match name {
            ProjectionName::Keys => self.keys.digest(),
            ProjectionName::Queue => self.queue.digest(),
            ProjectionName::Corpus => self.corpus.digest(),
            ProjectionName::Audit => self.audit.digest(),
            ProjectionName::Gpus => self.gpus.digest(),
            ProjectionName::Kernels => self.kernels.digest(),
            ProjectionName::Verdicts => state_digest(&self.audit_report()),
        }
    }

    /// The state of one projection as JSON (the bytes its digest covers); `None` if it does
    /// not serialize.
    pub fn state_json(&self, name: ProjectionName) -> Option<Value> {
        match name {
            ProjectionName::Keys => serde_json::to_value(&self.keys).ok(),
            ProjectionName::Queue => serde_json::to_value(&self.queue).ok(),
            ProjectionName::Corpus => serde_json::to_value(&self.corpus).ok(),
            ProjectionName::Audit => serde_json::to_value(&self.audit).ok(),
            ProjectionName::Gpus => serde_json::to_value(&self.gpus).ok(),
            ProjectionName::Kernels => serde_json::to_value(&self.kernels).ok(),
            ProjectionName::Verdicts => serde_json::to_value(self.audit_report()).ok(),
        }
    }
}

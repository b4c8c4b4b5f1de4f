//! The append path's counters and histograms (Prometheus types; the HTTP service exposes
//! them at `/metrics`).
//!
//! Each ledger owns one [`LedgerMetrics`]: [`crate::ledger::Ledger::prepare`] counts the
//! envelopes it refuses, and the sequencer, which holds the same handle as a field, counts
//! batches and replies.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{AppendError, AppendOutcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Result_ {
    result: &'static str,
}

/// Counters and histograms of one ledger.
#[derive(Debug)]
pub struct LedgerMetrics {
    appended: Counter,
    resent: Counter,
    requests: Family<Result_, Counter>,
    rejections: Family<Reason, Counter>,
    batch_records: Histogram,
    commit_seconds: Histogram,
}

impl Default for LedgerMetrics {
    fn default() -> Self {
        LedgerMetrics {
            appended: Counter::default(),
            resent: Counter::default(),
            requests: Family::default(),
            rejections: Family::default(),
            // 1, 2, 4 … 8192 records.
            batch_records: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            // 100 µs … ~3.3 s.
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }
}

impl LedgerMetrics {
    /// Adds every metric to `registry` (names get the `assay_` prefix there).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("appended_records", "Records appended (new, not resends)", self.appended.clone());
        registry.register(
            "resent_envelopes",
            "Envelopes acknowledged as identical resends of stored records",
            self.resent.clone(),
        );
        registry.register(
            "append_requests",
            "Append requests by result: committed, rejected (bad input) or failed (storage)",
            self.requests.clone(),
        );
        registry.register(
            "rejections",
            "Envelopes refused, by reason (bad_signature, unknown_key, schema_violation, ...)",
            self.rejections.clone(),
        );
        registry.register(
            "batch_records",
            "Records committed per sequencer batch (group commit size)",
            self.batch_records.clone(),
        );
        registry.register(
            "batch_commit_seconds",
            "Time to sequence, sign and commit one batch",
            self.commit_seconds.clone(),
        );
    }

    /// One refused envelope.
    pub fn rejected(&self, code: &str) {
        self.rejections.get_or_create(&Reason { reason: code.to_owned() }).inc();
    }

    /// The reply to one append request, as the sequencer sends it.
    pub(crate) fn request(&self, reply: &Result<AppendOutcome, AppendError>) {
        let result = match reply {
            Ok(outcome) => {
                let resent = outcome.acks.iter().filter(|a| a.existed).count() as u64;
                self.resent.inc_by(resent);
                self.appended.inc_by(outcome.acks.len() as u64 - resent);
                "committed"
            }
            Err(AppendError::Rejected { reason, .. }) => {
                self.rejected(reason.code());
                "rejected"
            }
            Err(AppendError::TooManyEnvelopes { .. }) => "rejected",
            Err(_) => "failed",
        };
        self.requests.get_or_create(&Result_ { result }).inc();
    }

    /// One committed batch of `records` records that took `elapsed` to sequence and commit.
    pub(crate) fn batch(&self, records: u64, elapsed: Duration) {
        if records > 0 {
            self.batch_records.observe(records as f64);
            self.commit_seconds.observe(elapsed.as_secs_f64());
        }
    }
}

//! The campaign runs a ledger recorded launches for, most recently active first: the index
//! the dashboard's kernels page lists runs from (a run's cells are then read from the store,
//! see [`crate::campaign_diff`]).
//!
//! It lives beside the [`crate::kernels`] matrix but is not part of that projection's state:
//! it is skipped when the state is serialized, so the digest of every ledger stays what it
//! was, and it is rebuilt from the same records by any replay. Only the [`RUNS_KEPT`] runs
//! with the latest launches are kept; a run that dropped out and launches again counts its
//! launches from its return.

use std::collections::BTreeMap;

use assay_events::record::Record;

use crate::data::event_time_ns;

/// Runs kept, at most (the least recently active are dropped beyond).
pub const RUNS_KEPT: usize = 10_000;

/// One campaign run's launches (primaries and fallbacks alike).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub run: String,
    pub launches: u64,
    pub passed: u64,
    pub failed: u64,
    pub faulted: u64,
    /// The seq of its latest launch.
    pub last_seq: u64,
    /// When the producer says its latest launch happened (the event's `time`).
    pub last_time_ns: i64,
    /// When the ledger received its latest launch.
    pub last_received_at_ns: i64,
}

/// How a launch ended, as [`RecentRuns::record`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Passed,
    Failed,
    Faulted,
}

/// The runs by their latest launch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentRuns {
    by_run: BTreeMap<String, RunSummary>,
    /// Latest launch seq → run.
    by_last: BTreeMap<u64, String>,
}

impl RecentRuns {
    /// Counts a launch of `run`, the record at `seq` (records come in seq order).
    pub fn record(&mut self, run: &str, record: &Record, ended: Ended) {
        let seq = record.seq;
        let summary = self
            .by_run
            .entry(run.to_owned())
            .or_insert_with(|| RunSummary { run: run.to_owned(), ..RunSummary::default() });
        if summary.launches > 0 {
            self.by_last.remove(&summary.last_seq);
        }
        summary.launches += 1;
        match ended {
            Ended::Passed => summary.passed += 1,
            Ended::Failed => summary.failed += 1,
            Ended::Faulted => summary.faulted += 1,
        }
        if seq >= summary.last_seq {
            summary.last_seq = seq;
            summary.last_time_ns = event_time_ns(record);
            summary.last_received_at_ns = record.received_at_ns;
        }
        self.by_last.insert(summary.last_seq, run.to_owned());
        // Bounded: one run added per call, so at most one is dropped.
        if self.by_run.len() > RUNS_KEPT
            && let Some((_, oldest)) = self.by_last.pop_first()
        {
            self.by_run.remove(&oldest);
        }
    }

    /// The runs, the one with the latest launch first.
    pub fn latest_first(&self) -> impl Iterator<Item = &RunSummary> {
        self.by_last.values().rev().filter_map(|run| self.by_run.get(run))
    }

    pub fn len(&self) -> usize {
        self.by_run.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_run.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testkit::{Ledger, ev};

    /// The records of a ledger whose record `seq` was received at `seq * 10` ns.
    fn records(n: u64) -> Vec<Record> {
        let mut ledger = Ledger::bare();
        (0..n)
            .map(|i| {
                let mut r = ledger
                    .push(ev("metric.recorded", json!({"run": "x", "name": "m", "step": i, "value": 1.0})));
                r.received_at_ns = i as i64 * 10;
                r
            })
            .collect()
    }

    #[test]
    fn runs_come_latest_first_with_their_counts() {
        let r = records(4);
        let mut runs = RecentRuns::default();
        runs.record("a", &r[1], Ended::Passed);
        runs.record("b", &r[2], Ended::Faulted);
        runs.record("a", &r[3], Ended::Failed);
        let order: Vec<(&str, u64, u64, u64, u64)> = runs
            .latest_first()
            .map(|r| (r.run.as_str(), r.launches, r.passed, r.failed, r.faulted))
            .collect();
        assert_eq!(order, vec![("a", 2, 1, 1, 0), ("b", 1, 0, 0, 1)]);
        let a = runs.latest_first().next().expect("a");
        assert_eq!((a.last_seq, a.last_received_at_ns), (3, 30));
        assert_eq!(a.last_time_ns, event_time_ns(&r[3]), "the producer's time");
    }

    #[test]
    fn the_least_recently_active_run_is_dropped_past_the_bound() {
        let r = records(1);
        let mut runs = RecentRuns::default();
        for i in 0..=RUNS_KEPT as u64 {
            let record = Record { seq: i, ..r[0].clone() };
            runs.record(&format!("r{i}"), &record, Ended::Passed);
        }
        assert_eq!(runs.len(), RUNS_KEPT);
        assert!(runs.latest_first().all(|r| r.run != "r0"), "r0 was the least recently active");
        assert_eq!(runs.latest_first().next().map(|r| r.run.as_str()), Some(&*format!("r{RUNS_KEPT}")));
    }
}

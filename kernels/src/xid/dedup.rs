//! Deduplicating Xids reported by two sources: the kernel log and NVML's critical-Xid events.
//!
//! The driver reports each Xid once to the kernel log and (for critical Xids) once to NVML.
//! [`XidDeduper`] pairs reports one-to-one: a report is a duplicate when the *other* source
//! already reported the same `(pci, code)` within the window and that report has not been
//! paired yet. Reports from one source are never merged with each other (the driver often
//! prints several lines for one Xid 13, and each is kept).
//!
//! Time is data: callers pass a timestamp in nanoseconds on one clock for both sources.
//! Memory is bounded by `capacity` remembered reports.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::parse::normalize_pci;

/// Where an Xid report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum XidSource {
    /// The kernel log (`/dev/kmsg`, `journalctl -k`, or a file).
    Kmsg,
    /// NVML critical-Xid events.
    Nvml,
}

impl XidSource {
    /// The lowercase name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            XidSource::Kmsg => "kmsg",
            XidSource::Nvml => "nvml",
        }
    }
}

/// The deduplicator's verdict on one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Seen {
    /// First report of this Xid: record it.
    New,
    /// The other source already reported it within the window: skip it.
    Duplicate,
}

#[derive(Debug, Clone)]
struct Report {
    source: XidSource,
    pci: String,
    code: u32,
    at_ns: i64,
    paired: bool,
}

/// Pairs kernel-log and NVML reports of the same Xid; see the module docs.
#[derive(Debug, Clone)]
pub struct XidDeduper {
    window_ns: i64,
    capacity: usize,
    recent: VecDeque<Report>,
}

impl XidDeduper {
    /// Default number of reports remembered.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A deduplicator that pairs reports at most `window_ns` apart, remembering at most
    /// `capacity` reports (at least one).
    pub fn new(window_ns: i64, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        XidDeduper {
            window_ns: window_ns.max(0),
            capacity,
            recent: VecDeque::with_capacity(capacity.min(Self::DEFAULT_CAPACITY)),
        }
    }

    /// Number of reports remembered now.
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    /// Judges one report. `pci` may be in any form [`normalize_pci`] accepts (NVML's
    /// `00000000:3B:00.0` and the kernel log's `0000:3b:00` compare equal).
    pub fn observe(&mut self, source: XidSource, pci: &str, code: u32, at_ns: i64) -> Seen {
        let pci = normalize_pci(pci).unwrap_or_else(|| pci.trim().to_ascii_lowercase());
        let oldest_ns = at_ns.saturating_sub(self.window_ns);
        while self.recent.front().is_some_and(|report| report.at_ns < oldest_ns) {
            self.recent.pop_front();
        }
        let window_ns = self.window_ns;
        let partner = self.recent.iter_mut().find(|report| {
            !report.paired
                && report.source != source
                && report.code == code
                && report.pci == pci
                && report.at_ns.abs_diff(at_ns) <= window_ns.unsigned_abs()
        });
        if let Some(report) = partner {
            report.paired = true;
            return Seen::Duplicate;
        }
        if self.recent.len() >= self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(Report { source, pci, code, at_ns, paired: false });
        Seen::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND_NS: i64 = 1_000_000_000;

    #[test]
    fn pairs_one_report_from_each_source() {
        let mut dedup = XidDeduper::new(5 * SECOND_NS, 16);
        assert_eq!(dedup.observe(XidSource::Kmsg, "0000:3b:00.0", 79, 0), Seen::New);
        assert_eq!(dedup.observe(XidSource::Nvml, "00000000:3B:00.0", 79, SECOND_NS), Seen::Duplicate);
        // A second NVML report has nothing left to pair with.
        assert_eq!(dedup.observe(XidSource::Nvml, "00000000:3B:00.0", 79, 2 * SECOND_NS), Seen::New);
    }

    #[test]
    fn same_source_repeats_are_kept() {
        let mut dedup = XidDeduper::new(5 * SECOND_NS, 16);
        for at in 0..3 {
            assert_eq!(dedup.observe(XidSource::Kmsg, "0000:41:00.0", 13, at), Seen::New);
        }
        assert_eq!(dedup.observe(XidSource::Nvml, "0000:41:00.0", 13, 10), Seen::Duplicate);
        assert_eq!(dedup.observe(XidSource::Nvml, "0000:41:00.0", 13, 11), Seen::Duplicate);
    }

    #[test]
    fn different_keys_and_old_reports_do_not_pair() {
        let mut dedup = XidDeduper::new(SECOND_NS, 16);
        dedup.observe(XidSource::Nvml, "0000:01:00.0", 48, 0);
        assert_eq!(dedup.observe(XidSource::Kmsg, "0000:02:00.0", 48, 1), Seen::New);
        assert_eq!(dedup.observe(XidSource::Kmsg, "0000:01:00.0", 63, 2), Seen::New);
        assert_eq!(dedup.observe(XidSource::Kmsg, "0000:01:00.0", 48, 3 * SECOND_NS), Seen::New);
    }

    #[test]
    fn memory_is_bounded() {
        let mut dedup = XidDeduper::new(i64::MAX, 4);
        for at in 0..100 {
            dedup.observe(XidSource::Kmsg, "0000:01:00.0", 13, at);
        }
        assert_eq!(dedup.len(), 4);
        let mut tiny = XidDeduper::new(-5, 0);
        assert_eq!(tiny.observe(XidSource::Kmsg, "0000:01:00.0", 13, i64::MIN), Seen::New);
        assert_eq!(tiny.observe(XidSource::Nvml, "0000:01:00.0", 13, i64::MIN), Seen::Duplicate);
        assert_eq!(tiny.len(), 1);
    }
}

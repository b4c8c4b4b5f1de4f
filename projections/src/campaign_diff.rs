//! A campaign run's cells and the regression diff of two runs (`assay campaign diff`,
//! `GET /v1/campaigns/{run}/diff`): after a patch or a driver update a lab reruns the matrix
//! and wants exactly the cells that changed, with an answer CI can gate on.
//!
//! [`RunLaunches`] folds one run's `kernel.launch.completed` / `kernel.launch.faulted` records
//! (subject `run/<run>`) into cells keyed by (kernel, canonical variant JSON). A launch with
//! `fallback_of` re-ran the primary launch whose `launch` ordinal it names, on the fallback's
//! axis overrides (so its variant differs); it is kept beside that primary, never as a cell of
//! its own. Ledgers written before `launch`, `fallback_of` and `repeats` existed have none of
//! them: every launch is then a primary, and timing has no spread.
//!
//! A `gpu.xid` whose `run` is the run and whose `launch` names a launch's ordinal was attached
//! to that launch by the runner (it happened on the launch's GPU in its window): its code is
//! shown on the launch, primary or fallback, so a cell reads "CUDA_ERROR_ILLEGAL_ADDRESS with
//! Xid 13".
//!
//! [`diff`] matches the cells of two runs by key and classes each; see [`Class`] and
//! [`TimingChange`] for the rules.

use std::collections::{BTreeMap, BTreeSet};

use assay_events::EventType;
use assay_events::record::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canon::{canonical, canonical_string};
use crate::data::{bool_of, str_of, u64_of};

/// The most launches read of one run: a campaign matrix is far smaller, and the diff holds
/// both runs in memory.
pub const LAUNCHES_PER_RUN_MAX: usize = 1_000_000;

/// Distinct Xid codes kept per launch: a faulting launch logs one or two; the bound only stops
/// a runaway producer (further codes are not shown).
pub const XIDS_PER_LAUNCH_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// The run holds more launches than a diff reads.
    #[error("run {run:?} has more than {launches_max} kernel launches, the most a campaign diff reads")]
    TooManyLaunches { run: String, launches_max: usize },
    /// More `gpu.xid` events are attached to the run's launches than it has launches at most.
    #[error(
        "run {run:?} has more than {xids_max} Xids attached to its launches, the most a campaign diff reads"
    )]
    TooManyXids { run: String, xids_max: usize },
}

/// How one launch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Completed, and `passed` is true.
    Passed,
    /// Completed with `passed` false (an error over tolerance, or a non-finite output).
    Failed,
    /// `kernel.launch.faulted`: no output (its `error` names why).
    Faulted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Faulted => "faulted",
        }
    }
}

/// The spread of a launch repeated `count` times (`duration_us` is then the median).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeats {
    pub count: u64,
    pub min_us: u64,
    pub median_us: u64,
    pub p90_us: u64,
}

/// One launch as the diff sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    pub outcome: Outcome,
    /// The fault's upper-snake name (faulted launches only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Completed launches only; the median when the launch was repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Repeats>,
    /// The codes of the `gpu.xid` events attached to this launch, distinct and ascending (at
    /// most [`XIDS_PER_LAUNCH_MAX`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xids: Vec<u64>,
    /// The launch's ordinal within its run, when the runner recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<u64>,
    /// The record's seq.
    pub seq: u64,
}

impl Launch {
    /// `passed`, `failed`, or `faulted: ERROR`, then ` with Xid 13, 31` when Xids are
    /// attached (the runner's summary says it so).
    pub fn outcome_text(&self) -> String {
        let outcome = match &self.error {
            Some(e) if self.outcome == Outcome::Faulted => format!("faulted: {e}"),
            _ => self.outcome.as_str().to_owned(),
        };
        match self.xids_text() {
            Some(xids) => format!("{outcome} with {xids}"),
            None => outcome,
        }
    }

    /// `Xid 13, 31`, or `None` when no Xid is attached.
    pub fn xids_text(&self) -> Option<String> {
        if self.xids.is_empty() {
            return None;
        }
        let codes: Vec<String> = self.xids.iter().map(u64::to_string).collect();
        Some(format!("Xid {}", codes.join(", ")))
    }
}

/// The launch that re-ran a failed or faulted primary on the fallback's axis overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// The fallback's own variant (the primary's with the overrides applied).
    pub variant: Value,
    #[serde(flatten)]
    pub launch: Launch,
}

/// A cell of one run: its primary launch, and the fallback that re-ran it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    #[serde(flatten)]
    pub launch: Launch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// One cell of a run, for `GET /v1/campaigns/{run}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCell {
    pub kernel: String,
    /// The variant with its keys sorted.
    pub variant: Value,
    #[serde(flatten)]
    pub side: Side,
}

/// (kernel, canonical variant JSON).
type Key = (String, String);

/// A launch of the run with the kernel and variant it ran.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kernel: String,
    variant: Value,
    launch: Launch,
}

/// One run's launches, folded record by record.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLaunches {
    run: String,
    subject: String,
    launches_max: usize,
    launches: usize,
    /// The primary launch of each cell: the one with the highest seq.
    primaries: BTreeMap<Key, Seen>,
    /// Fallback launches by the ordinal of the primary they re-ran (highest seq wins).
    fallbacks: BTreeMap<u64, Seen>,
    /// The lowest seq of a launch folded in.
    first_seq: Option<u64>,
    /// Attached `gpu.xid` events folded in (at most `launches_max`).
    xid_events: usize,
    /// Xid codes by the ordinal of the launch they are attached to.
    xids: BTreeMap<u64, BTreeSet<u64>>,
}

impl RunLaunches {
    /// The launches of `run`, at most [`LAUNCHES_PER_RUN_MAX`].
    pub fn new(run: &str) -> RunLaunches {
        RunLaunches::with_launches_max(run, LAUNCHES_PER_RUN_MAX)
    }

    /// The launches of `run`, at most `launches_max` (tests use a small bound).
    pub fn with_launches_max(run: &str, launches_max: usize) -> RunLaunches {
        RunLaunches {
            run: run.to_owned(),
            subject: format!("run/{run}"),
            launches_max,
            launches: 0,
            primaries: BTreeMap::new(),
            fallbacks: BTreeMap::new(),
            first_seq: None,
            xid_events: 0,
            xids: BTreeMap::new(),
        }
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    /// Launches folded in (primaries, fallbacks and primaries a later one replaced).
    pub fn launches(&self) -> usize {
        self.launches
    }

    /// No launch of this run was folded in (Xids alone make no run).
    pub fn is_empty(&self) -> bool {
        self.launches == 0
    }

    /// The lowest seq of the run's launches folded in.
    pub fn first_seq(&self) -> Option<u64> {
        self.first_seq
    }

    /// Folds in a record: a launch of this run (by subject) counts, and a `gpu.xid` attached
    /// to one of its launches (by `run`); anything else is ignored. Records may come in any
    /// order: the primary (and fallback) with the highest seq wins, and an Xid is matched to
    /// its launch's ordinal when the cells are read.
    pub fn apply(&mut self, record: &Record) -> Result<(), CampaignError> {
        let faulted = match record.event_type() {
            Some(EventType::KernelLaunchCompleted) => false,
            Some(EventType::KernelLaunchFaulted) => true,
            Some(EventType::GpuXid) => return self.apply_xid(&record.event.data),
            _ => return Ok(()),
        };
        if record.event.subject.as_deref() != Some(self.subject.as_str()) {
            return Ok(());
        }
        let data = &record.event.data;
        let (Some(kernel), Some(variant)) = (str_of(data, "kernel"), data.get("variant")) else {
            return Ok(());
        };
        if self.launches >= self.launches_max {
            return Err(CampaignError::TooManyLaunches {
                run: self.run.clone(),
                launches_max: self.launches_max,
            });
        }
        self.launches += 1;
        self.first_seq = Some(self.first_seq.map_or(record.seq, |s| s.min(record.seq)));
        let outcome = if faulted {
            Outcome::Faulted
        } else if bool_of(data, "passed") == Some(true) {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        let launch = Launch {
            outcome,
            error: if faulted { str_of(data, "error").map(str::to_owned) } else { None },
            duration_us: if faulted { None } else { u64_of(data, "duration_us") },
            repeats: data.get("repeats").and_then(|r| serde_json::from_value(r.clone()).ok()),
            xids: Vec::new(),
            launch: u64_of(data, "launch"),
            seq: record.seq,
        };
        let seen = Seen { kernel: kernel.to_owned(), variant: canonical(variant), launch };
        match u64_of(data, "fallback_of") {
            Some(of) => keep_latest(self.fallbacks.entry(of), seen),
            None => keep_latest(self.primaries.entry((kernel.to_owned(), canonical_string(variant))), seen),
        }
        Ok(())
    }

    /// Folds in a `gpu.xid`'s data: its code, when it names this run and a launch.
    fn apply_xid(&mut self, data: &Value) -> Result<(), CampaignError> {
        if str_of(data, "run") != Some(self.run.as_str()) {
            return Ok(());
        }
        let (Some(launch), Some(code)) = (u64_of(data, "launch"), u64_of(data, "code")) else {
            return Ok(());
        };
        if self.xid_events >= self.launches_max {
            return Err(CampaignError::TooManyXids { run: self.run.clone(), xids_max: self.launches_max });
        }
        self.xid_events += 1;
        let codes = self.xids.entry(launch).or_default();
        if codes.len() < XIDS_PER_LAUNCH_MAX {
            codes.insert(code);
        }
        Ok(())
    }

    /// `launch` with the codes of the Xids attached to its ordinal.
    fn with_xids(&self, launch: &Launch) -> Launch {
        let codes = launch.launch.and_then(|ordinal| self.xids.get(&ordinal));
        Launch { xids: codes.map(|c| c.iter().copied().collect()).unwrap_or_default(), ..launch.clone() }
    }

    /// The cell's side: its primary and the fallback naming the primary's ordinal (of the same
    /// kernel), each with its attached Xids.
    fn side(&self, primary: &Seen) -> Side {
        let fallback = primary
            .launch
            .launch
            .and_then(|ordinal| self.fallbacks.get(&ordinal))
            .filter(|f| f.kernel == primary.kernel)
            .map(|f| Fallback { variant: f.variant.clone(), launch: self.with_xids(&f.launch) });
        Side { launch: self.with_xids(&primary.launch), fallback }
    }

    /// Every cell, sorted by (kernel, canonical variant JSON).
    pub fn cells(&self) -> Vec<RunCell> {
        self.primaries
            .values()
            .map(|p| RunCell { kernel: p.kernel.clone(), variant: p.variant.clone(), side: self.side(p) })
            .collect()
    }

    /// The cells whose primary launch failed or faulted, as (kernel, variant), sorted by
    /// (kernel, canonical variant JSON): what `--only-failed-of RUN` reruns.
    pub fn not_passed(&self) -> Vec<(String, Value)> {
        self.primaries
            .values()
            .filter(|p| p.launch.outcome != Outcome::Passed)
            .map(|p| (p.kernel.clone(), p.variant.clone()))
            .collect()
    }
}

/// Keeps the launch with the higher seq: the last one recorded.
fn keep_latest<K: Ord>(slot: std::collections::btree_map::Entry<'_, K, Seen>, seen: Seen) {
    match slot {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(seen);
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            if o.get().launch.seq <= seen.launch.seq {
                o.insert(seen);
            }
        }
    }
}

/// How a cell changed from the base run to the new one (primary launches compared).
///
/// Faulted → failed is `unchanged`: the cell still does not pass, and a fault turning into a
/// wrong answer is neither a fix nor a regression; both outcomes are shown. Faulted → faulted
/// with another error name is `unchanged` too. A cell only in the new run is `new` whatever
/// its outcome (it has nothing to regress from), so it never fails the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The same outcome on both sides.
    Unchanged,
    /// Passes now, did not before.
    Fixed,
    /// Passed before, fails now.
    Regressed,
    /// Faults now, did not before.
    NewlyFaulted,
    /// Only in the base run.
    Gone,
    /// Only in the new run.
    New,
}

impl Class {
    /// Where a cell of this class is listed: what fails the gate first (the CLI and the
    /// dashboard list cells in this order).
    pub fn rank(self) -> u8 {
        match self {
            Class::Regressed => 0,
            Class::NewlyFaulted => 1,
            Class::Fixed => 2,
            Class::Gone => 3,
            Class::New => 4,
            Class::Unchanged => 5,
        }
    }

    pub const ALL: [Class; 6] =
        [Class::Unchanged, Class::Fixed, Class::Regressed, Class::NewlyFaulted, Class::Gone, Class::New];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Unchanged => "unchanged",
            Class::Fixed => "fixed",
            Class::Regressed => "regressed",
            Class::NewlyFaulted => "newly_faulted",
            Class::Gone => "gone",
            Class::New => "new",
        }
    }

    /// Whether a cell of this class fails the gate.
    pub fn fails_gate(self) -> bool {
        matches!(self, Class::Regressed | Class::NewlyFaulted)
    }

    fn of(base: Outcome, new: Outcome) -> Class {
        match (base, new) {
            (b, n) if b == n => Class::Unchanged,
            (_, Outcome::Passed) => Class::Fixed,
            (_, Outcome::Faulted) => Class::NewlyFaulted,
            (Outcome::Passed, Outcome::Failed) => Class::Regressed,
            (_, Outcome::Failed) => Class::Unchanged,
        }
    }
}

/// A timing change of a cell that passed on both sides with durations.
///
/// With `repeats` on both sides: `slower` when the new run's fastest repeat is slower than the
/// base's p90, `faster` when the new run's p90 is faster than the base's fastest, else
/// `within_spread`. Without repeats on both sides there is no spread to judge by: `no_spread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingChange {
    Slower,
    Faster,
    WithinSpread,
    NoSpread,
}

impl TimingChange {
    pub fn as_str(self) -> &'static str {
        match self {
            TimingChange::Slower => "slower",
            TimingChange::Faster => "faster",
            TimingChange::WithinSpread => "within_spread",
            TimingChange::NoSpread => "no_spread",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub change: TimingChange,
    /// The medians' ratio new / base; null when the base's is 0.
    pub ratio: Option<f64>,
    pub base_us: u64,
    pub new_us: u64,
}

impl Timing {
    fn of(base: &Launch, new: &Launch) -> Option<Timing> {
        if base.outcome != Outcome::Passed || new.outcome != Outcome::Passed {
            return None;
        }
        let (base_us, new_us) = (base.duration_us?, new.duration_us?);
        let change = match (&base.repeats, &new.repeats) {
            (Some(b), Some(n)) if n.min_us > b.p90_us => TimingChange::Slower,
            (Some(b), Some(n)) if n.p90_us < b.min_us => TimingChange::Faster,
            (Some(_), Some(_)) => TimingChange::WithinSpread,
            _ => TimingChange::NoSpread,
        };
        let ratio = (base_us > 0).then(|| new_us as f64 / base_us as f64);
        Some(Timing { change, ratio, base_us, new_us })
    }
}

/// One cell of the diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellDiff {
    pub kernel: String,
    /// The variant with its keys sorted.
    pub variant: Value,
    pub class: Class,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Side>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Side>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

/// Cells per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub unchanged: u64,
    pub fixed: u64,
    pub regressed: u64,
    pub newly_faulted: u64,
    pub gone: u64,
    pub new: u64,
}

impl Counts {
    pub fn get(&self, class: Class) -> u64 {
        match class {
            Class::Unchanged => self.unchanged,
            Class::Fixed => self.fixed,
            Class::Regressed => self.regressed,
            Class::NewlyFaulted => self.newly_faulted,
            Class::Gone => self.gone,
            Class::New => self.new,
        }
    }

    fn add(&mut self, class: Class) {
        let n = match class {
            Class::Unchanged => &mut self.unchanged,
            Class::Fixed => &mut self.fixed,
            Class::Regressed => &mut self.regressed,
            Class::NewlyFaulted => &mut self.newly_faulted,
            Class::Gone => &mut self.gone,
            Class::New => &mut self.new,
        };
        *n += 1;
    }
}

/// The diff of two runs: `{"base","new","counts","cells"}`, cells sorted by (kernel,
/// canonical variant JSON), so the same two runs always give the same JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignDiff {
    pub base: String,
    pub new: String,
    pub counts: Counts,
    pub cells: Vec<CellDiff>,
}

impl CampaignDiff {
    /// Whether a cell regressed or newly faulted: what CI gates on (exit status 1).
    pub fn gate_failed(&self) -> bool {
        self.counts.regressed > 0 || self.counts.newly_faulted > 0
    }
}

/// Matches the cells of `base` and `new` by (kernel, variant) and classes each.
pub fn diff(base: &RunLaunches, new: &RunLaunches) -> CampaignDiff {
    let mut counts = Counts::default();
    let mut cells = Vec::with_capacity(base.primaries.len().max(new.primaries.len()));
    let keys: std::collections::BTreeSet<&Key> = base.primaries.keys().chain(new.primaries.keys()).collect();
    for key in keys {
        let (b, n) = (base.primaries.get(key), new.primaries.get(key));
        let (class, timing) = match (b, n) {
            (Some(b), Some(n)) => {
                (Class::of(b.launch.outcome, n.launch.outcome), Timing::of(&b.launch, &n.launch))
            }
            (Some(_), None) => (Class::Gone, None),
            (None, _) => (Class::New, None),
        };
        let Some(any) = n.or(b) else { continue };
        counts.add(class);
        cells.push(CellDiff {
            kernel: any.kernel.clone(),
            variant: any.variant.clone(),
            class,
            base: b.map(|b| base.side(b)),
            new: n.map(|n| new.side(n)),
            timing,
        });
    }
    CampaignDiff { base: base.run.clone(), new: new.run.clone(), counts, cells }
}

#[cfg(test)]
mod tests;

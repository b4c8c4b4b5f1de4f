//! The run queue: runs by state, GPU lanes and their holders, pause and maintenance, the
//! last preflight per worker, and recent dispatch decisions.
//!
//! Lanes: a (worker, GPU) lane is held from the ledger's accepted `dispatch.decided` until
//! that run's `run.quiesced` or `run.cancelled`. A run that exits (even failing) keeps its
//! lane until it quiesces: its process tree may still be using the GPU; the runner records
//! `run.quiesced` after any exit once the tree is quiet, and the dispatcher can cancel a run
//! whose runner is gone. CPU-only dispatches (`gpu: null`) hold no lane.

use std::collections::{BTreeMap, VecDeque};

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use serde::Serialize;
use serde_json::Value;

use crate::canon::canonical;
use crate::data::{bool_of, f64_of, i64_of, owned, reason_code, str_of, strs_of, u64_of};
use crate::pci;

/// How many dispatch decisions `recent` keeps.
pub const RECENT_DECISIONS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// `run.queued`, not yet dispatched.
    Queued,
    /// The ledger accepted a dispatch; not started yet.
    Dispatched,
    /// `run.started`.
    Running,
    /// `run.finished` with exit code 0, not yet quiesced.
    Finished,
    /// Finished with exit 0 and quiesced.
    Quiesced,
    /// `run.finished` with a nonzero exit code or a signal (stays `failed` once quiesced;
    /// see `quiesced_at_ns`).
    Failed,
    /// `run.cancelled` (any time before quiescing).
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 7] = [
        RunState::Queued,
        RunState::Dispatched,
        RunState::Running,
        RunState::Finished,
        RunState::Quiesced,
        RunState::Failed,
        RunState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Dispatched => "dispatched",
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Quiesced => "quiesced",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }
}

/// One run. `*_at_ns` are the ledger's `received_at_ns` of the record that set them: when the
/// ledger heard. [`Run::producer_time`] holds when the producer says it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub state: RunState,
    pub project: Option<String>,
    pub needs_gpu: Option<bool>,
    /// The `run.queued` spec, keys sorted.
    pub spec: Option<Value>,
    pub queued_seq: Option<u64>,
    pub queued_at_ns: Option<i64>,
    pub worker: Option<String>,
    /// Normalized PCI id (`0000:01:00`).
    pub gpu: Option<String>,
    pub dispatched_seq: Option<u64>,
    pub dispatched_at_ns: Option<i64>,
    pub started_at_ns: Option<i64>,
    pub pid: Option<u64>,
    pub finished_at_ns: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub duration_ms: Option<u64>,
    pub quiesced_at_ns: Option<i64>,
    pub cancelled_at_ns: Option<i64>,
    pub cancel_reason: Option<String>,
    pub heartbeat: Option<Heartbeat>,
    pub last_seq: u64,
    pub producer_time: ProducerTimes,
}

/// The CloudEvents `time` (verbatim) of the records that set a run's `*_at_ns`: when the
/// dispatcher and the runner say it happened. They differ from the ledger's receive times
/// when events are uploaded late (a runner that was offline, a backfill). The dispatch
/// decision has none: the ledger itself makes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProducerTimes {
    pub queued: Option<String>,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub quiesced: Option<String>,
    pub cancelled: Option<String>,
}

impl Run {
    fn new(seq: u64) -> Run {
        Run {
            state: RunState::Queued,
            project: None,
            needs_gpu: None,
            spec: None,
            queued_seq: None,
            queued_at_ns: None,
            worker: None,
            gpu: None,
            dispatched_seq: None,
            dispatched_at_ns: None,
            started_at_ns: None,
            pid: None,
            finished_at_ns: None,
            exit_code: None,
            signal: None,
            duration_ms: None,
            quiesced_at_ns: None,
            cancelled_at_ns: None,
            cancel_reason: None,
            heartbeat: None,
            last_seq: seq,
            producer_time: ProducerTimes::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heartbeat {
    pub at_ns: i64,
    pub cpu_pct: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub gpu_util_pct: Option<f64>,
    pub processes: Option<u64>,
}

/// A (worker, GPU) lane.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lane {
    /// The run holding the lane, from its accepted dispatch until it quiesces or is cancelled.
    pub holder: Option<String>,
    pub held_since_seq: Option<u64>,
    /// Listed in the worker's latest `worker.preflight`.
    pub offered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pause {
    pub reason: Option<String>,
    pub seq: u64,
    pub at_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceEntry {
    pub reason: Option<String>,
    pub seq: u64,
}

/// Maintenance scopes (schemas/events/README.md): everything; all lanes of a worker; some
/// GPUs on every worker; some lanes of one worker. `on: true` adds the scope, `on: false`
/// removes exactly that scope, `on: false` without scope clears all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    pub all: Option<MaintenanceEntry>,
    pub workers: BTreeMap<String, MaintenanceEntry>,
    /// Normalized PCI id → entry.
    pub gpus: BTreeMap<String, MaintenanceEntry>,
    /// worker → normalized PCI id → entry.
    pub lanes: BTreeMap<String, BTreeMap<String, MaintenanceEntry>>,
}

impl Maintenance {
    fn apply(&mut self, on: bool, worker: Option<&str>, gpus: &[String], entry: MaintenanceEntry) {
        match (worker, gpus.is_empty()) {
            (None, true) if on => self.all = Some(entry),
            (None, true) => *self = Maintenance::default(),
            (Some(w), true) if on => {
                self.workers.insert(w.to_owned(), entry);
            }
            (Some(w), true) => {
                self.workers.remove(w);
            }
            (None, false) => {
                for g in gpus {
                    if on {
                        self.gpus.insert(g.clone(), entry.clone());
                    } else {
                        self.gpus.remove(g);
                    }
                }
            }
            (Some(w), false) => {
                let lanes = self.lanes.entry(w.to_owned()).or_default();
                for g in gpus {
                    if on {
                        lanes.insert(g.clone(), entry.clone());
                    } else {
                        lanes.remove(g);
                    }
                }
                if lanes.is_empty() {
                    self.lanes.remove(w);
                }
            }
        }
    }

    /// The entry that puts the lane (`worker`, normalized `gpu`) in maintenance, if any. A
    /// CPU-only lane (`gpu: None`) is covered by the global and the worker scopes only.
    pub fn covering(&self, worker: &str, gpu: Option<&str>) -> Option<&MaintenanceEntry> {
        self.all
            .as_ref()
            .or_else(|| self.workers.get(worker))
            .or_else(|| gpu.and_then(|g| self.gpus.get(g)))
            .or_else(|| gpu.and_then(|g| self.lanes.get(worker).and_then(|l| l.get(g))))
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.workers.is_empty() && self.gpus.is_empty() && self.lanes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightCheck {
    pub name: String,
    pub ok: bool,
    pub detail: Option<String>,
}

/// A worker's latest `worker.preflight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preflight {
    pub healthy: bool,
    pub seq: u64,
    pub received_at_ns: i64,
    pub checks: Vec<PreflightCheck>,
    /// Offered GPU lanes, normalized PCI ids.
    pub gpus: Vec<String>,
}

/// One `dispatch.decided`, as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionEntry {
    pub seq: u64,
    pub run: String,
    pub worker: String,
    /// As requested (not normalized), `None` for a CPU-only dispatch.
    pub gpu: Option<String>,
    pub accepted: bool,
    pub reasons: Vec<String>,
    /// Digest of the `dispatch.requested` event.
    pub request: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decisions {
    pub accepted: u64,
    pub refused: u64,
    /// Refusals by reason code (`lane_held_by`, `paused`, ...).
    pub refusals_by_reason: BTreeMap<String, u64>,
    /// The latest [`RECENT_DECISIONS`], oldest first.
    pub recent: VecDeque<DecisionEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Queue {
    paused: Option<Pause>,
    maintenance: Maintenance,
    runs: BTreeMap<String, Run>,
    /// worker → normalized PCI id → lane.
    lanes: BTreeMap<String, BTreeMap<String, Lane>>,
    preflights: BTreeMap<String, Preflight>,
    decisions: Decisions,
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    pub fn apply(&mut self, record: &Record) {
        let data = &record.event.data;
        let at = record.received_at_ns;
        let time = || Some(record.event.time.clone());
        let Some(ty) = record.event_type() else { return };
        match ty {
            EventType::ControlPaused => {
                self.paused =
                    Some(Pause { reason: owned(str_of(data, "reason")), seq: record.seq, at_ns: at });
            }
            EventType::ControlResumed => self.paused = None,
            EventType::ControlMaintenance => {
                let Some(on) = bool_of(data, "on") else { return };
                let gpus: Vec<String> = strs_of(data, "gpus").filter_map(pci::canonical).collect();
                let entry = MaintenanceEntry { reason: owned(str_of(data, "reason")), seq: record.seq };
                self.maintenance.apply(on, str_of(data, "worker"), &gpus, entry);
            }
            EventType::WorkerPreflight => self.apply_preflight(record),
            EventType::RunQueued => {
                let Some(id) = str_of(data, "run") else { return };
                if self.runs.contains_key(id) {
                    return;
                }
                let mut run = Run::new(record.seq);
                run.project = owned(str_of(data, "project"));
                run.needs_gpu = bool_of(data, "needs_gpu");
                run.spec = data.get("spec").map(canonical);
                run.queued_seq = Some(record.seq);
                run.queued_at_ns = Some(at);
                run.producer_time.queued = time();
                self.runs.insert(id.to_owned(), run);
            }
            EventType::DispatchDecided => self.apply_decision(record),
            EventType::RunStarted => {
                let Some(run) = self.run_mut(record) else { return };
                if run.started_at_ns.is_none() {
                    run.started_at_ns = Some(at);
                    run.producer_time.started = time();
                }
                run.pid = run.pid.or(u64_of(data, "pid"));
                if run.worker.is_none() {
                    run.worker = owned(str_of(data, "worker"));
                }
                if run.gpu.is_none() {
                    run.gpu = str_of(data, "gpu").and_then(pci::canonical);
                }
                if matches!(run.state, RunState::Queued | RunState::Dispatched) {
                    run.state = RunState::Running;
                }
            }
            EventType::RunHeartbeat => {
                let Some(run) = self.run_mut(record) else { return };
                run.heartbeat = Some(Heartbeat {
                    at_ns: at,
                    cpu_pct: f64_of(data, "cpu_pct"),
                    rss_bytes: u64_of(data, "rss_bytes"),
                    gpu_util_pct: f64_of(data, "gpu_util_pct"),
                    processes: u64_of(data, "processes"),
                });
            }
            EventType::RunFinished => {
                let Some(run) = self.run_mut(record) else { return };
                run.finished_at_ns = Some(at);
                run.producer_time.finished = time();
                run.exit_code = i64_of(data, "exit_code");
                run.signal = i64_of(data, "signal");
                run.duration_ms = u64_of(data, "duration_ms");
                if !matches!(run.state, RunState::Cancelled | RunState::Quiesced) {
                    run.state = if run.exit_code == Some(0) { RunState::Finished } else { RunState::Failed };
                }
            }
            EventType::RunQuiesced => {
                let Some(run) = self.run_mut(record) else { return };
                run.quiesced_at_ns = Some(at);
                run.producer_time.quiesced = time();
                if !matches!(run.state, RunState::Cancelled | RunState::Failed) {
                    run.state = RunState::Quiesced;
                }
                self.release_lane(record);
            }
            EventType::RunCancelled => {
                let Some(run) = self.run_mut(record) else { return };
                run.cancelled_at_ns = Some(at);
                run.producer_time.cancelled = time();
                run.cancel_reason = owned(str_of(data, "reason"));
                if run.state != RunState::Quiesced {
                    run.state = RunState::Cancelled;
                }
                self.release_lane(record);
            }
            _ => {}
        }
    }

    /// The run named by `data.run`, created (as queued) if the log never queued it.
    fn run_mut(&mut self, record: &Record) -> Option<&mut Run> {
        let id = str_of(&record.event.data, "run")?;
        // Looked up by `&str` first: a known run (the common case) costs no allocation.
        if !self.runs.contains_key(id) {
            self.runs.insert(id.to_owned(), Run::new(record.seq));
        }
        let run = self.runs.get_mut(id)?;
        run.last_seq = record.seq;
        Some(run)
    }

    fn apply_preflight(&mut self, record: &Record) {
        let data = &record.event.data;
        let (Some(worker), Some(healthy)) = (str_of(data, "worker"), bool_of(data, "healthy")) else {
            return;
        };
        let checks = data
            .get("checks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(PreflightCheck {
                    name: str_of(c, "name")?.to_owned(),
                    ok: bool_of(c, "ok")?,
                    detail: owned(str_of(c, "detail")),
                })
            })
            .collect();
        let mut gpus: Vec<String> = strs_of(data, "gpus").filter_map(pci::canonical).collect();
        gpus.sort();
        gpus.dedup();
        let lanes = self.lanes.entry(worker.to_owned()).or_default();
        for (gpu, lane) in lanes.iter_mut() {
            lane.offered = gpus.contains(gpu);
        }
        for gpu in &gpus {
            lanes.entry(gpu.clone()).or_default().offered = true;
        }
        self.preflights.insert(
            worker.to_owned(),
            Preflight { healthy, seq: record.seq, received_at_ns: record.received_at_ns, checks, gpus },
        );
    }

    fn apply_decision(&mut self, record: &Record) {
        let data = &record.event.data;
        let (Some(run_id), Some(worker), Some(accepted)) =
            (str_of(data, "run"), str_of(data, "worker"), bool_of(data, "accepted"))
        else {
            return;
        };
        let gpu = str_of(data, "gpu");
        let reasons: Vec<String> = strs_of(data, "reasons").map(str::to_owned).collect();
        let decisions = &mut self.decisions;
        if accepted {
            decisions.accepted += 1;
        } else {
            decisions.refused += 1;
            for r in &reasons {
                *decisions.refusals_by_reason.entry(reason_code(r).to_owned()).or_default() += 1;
            }
        }
        if decisions.recent.len() == RECENT_DECISIONS {
            decisions.recent.pop_front();
        }
        decisions.recent.push_back(DecisionEntry {
            seq: record.seq,
            run: run_id.to_owned(),
            worker: worker.to_owned(),
            gpu: owned(gpu),
            accepted,
            reasons,
            request: owned(str_of(data, "request")),
        });
        if !accepted {
            return;
        }
        let gpu = gpu.and_then(pci::canonical);
        let Some(run) = self.run_mut(record) else { return };
        run.worker = Some(worker.to_owned());
        run.gpu.clone_from(&gpu);
        run.dispatched_seq = Some(record.seq);
        run.dispatched_at_ns = Some(record.received_at_ns);
        if run.state == RunState::Queued {
            run.state = RunState::Dispatched;
        }
        if let Some(gpu) = gpu {
            let lane = self.lanes.entry(worker.to_owned()).or_default().entry(gpu).or_default();
            lane.holder = Some(run_id.to_owned());
            lane.held_since_seq = Some(record.seq);
        }
    }

    /// Frees the lane the run holds (found through its dispatch's worker and GPU).
    fn release_lane(&mut self, record: &Record) {
        let Some(id) = str_of(&record.event.data, "run") else { return };
        let Some(Run { worker: Some(worker), gpu: Some(gpu), .. }) = self.runs.get(id) else { return };
        if let Some(lane) = self.lanes.get_mut(worker).and_then(|l| l.get_mut(gpu))
            && lane.holder.as_deref() == Some(id)
        {
            lane.holder = None;
            lane.held_since_seq = None;
        }
    }

    pub fn paused(&self) -> Option<&Pause> {
        self.paused.as_ref()
    }

    pub fn maintenance(&self) -> &Maintenance {
        &self.maintenance
    }

    pub fn runs(&self) -> &BTreeMap<String, Run> {
        &self.runs
    }

    pub fn run(&self, id: &str) -> Option<&Run> {
        self.runs.get(id)
    }

    /// Run ids in `state`, sorted.
    pub fn runs_in(&self, state: RunState) -> impl Iterator<Item = &str> {
        self.runs.iter().filter(move |(_, r)| r.state == state).map(|(id, _)| id.as_str())
    }

    /// Number of runs per state (every state listed, zeros included).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut out: BTreeMap<&'static str, u64> = RunState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for run in self.runs.values() {
            *out.entry(run.state.as_str()).or_default() += 1;
        }
        out
    }

    /// worker → normalized PCI id → lane.
    pub fn lanes(&self) -> &BTreeMap<String, BTreeMap<String, Lane>> {
        &self.lanes
    }

    /// The run holding lane (`worker`, `gpu`); `gpu` in either PCI form.
    pub fn lane_holder(&self, worker: &str, gpu: &str) -> Option<&str> {
        let gpu = pci::canonical(gpu)?;
        self.lanes.get(worker)?.get(&gpu)?.holder.as_deref()
    }

    pub fn preflights(&self) -> &BTreeMap<String, Preflight> {
        &self.preflights
    }

    pub fn preflight(&self, worker: &str) -> Option<&Preflight> {
        self.preflights.get(worker)
    }

    pub fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    pub fn digest(&self) -> Hash32 {
        crate::digest::state_digest(self)
    }
}

//! The lab's operations as a discrete-event simulation: runs are queued, the dispatcher asks
//! for GPU lanes (after each worker's preflight) and the ledger's dispatch gate answers;
//! runs start, log metrics and heartbeats, exit, capture evidence and quiesce; the admin
//! pauses the lab and puts a node in maintenance after its GPU falls off the bus; one node's
//! preflight fails for a few hours, another's preflight agent dies.
//!
//! The dispatcher is optimistic: it learns of a pause, a maintenance or a failed preflight
//! from the gate's refusal, and stops asking until it sees that end. The simulation keeps
//! its own model of the gate (the ledger's state that the gate reads) so that it knows what
//! the ledger will decide; the demo checks that model against the ledger afterwards.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;

use assay_projections::xid_class::action_needs_reset;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::evidence::FileSet;
use super::gpus;
use super::kernels;
use super::lab::{
    BLACKWELL_WORKER, DRIVER, HOUR, Keys, MAINTENANCE_WORKER, MIN, PREFLIGHT_FAIL_WORKER, Project, SEC,
    Scale, Worker,
};
use super::metrics;
use super::runs::{AGENT_STOPS_AT, Outcome, PAUSE_AT, PREFLIGHT_FAIL_AT, Probe, Run, XID79_AT};
use super::timeline::Timeline;

#[derive(Debug, Clone, Copy)]
enum Ev {
    Queue(usize),
    Finish(usize),
    Evidence(usize),
    Quiesce(usize),
    Cancel(usize),
    Killed(usize),
    Pause,
    Resume,
    XidWatch,
    Xid79,
    GpuReset,
    MaintenanceOn,
    MaintenanceOff,
    PreflightFails,
    PreflightRecovers,
    AgentStops,
    /// NVLink errors on an idle Blackwell GPU late in the history; nobody resets it.
    LateNvlink,
}

#[derive(Debug, Clone, Default)]
struct Lane {
    holder: Option<usize>,
    /// Out of the dispatcher's rotation: drained by the admin for rising correctable-error
    /// counts (where it then falls off the bus), and under repair.
    reserved: bool,
    /// The gate's input: (time, set) for each Xid asking for a reset (set) and each
    /// `gpu.preflight` finding the device working (cleared), in emission order; the ledger
    /// orders them by (time, emission order), as [`Sim::needs_reset`] reads them.
    resets: Vec<(i64, bool)>,
    /// The dispatcher learned from a refusal that the GPU needs a reset, and has not seen one.
    knows_reset: bool,
}

/// What the ledger's gates are expected to decide, for the check against the ledger.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub accepted: u64,
    pub refused: u64,
    /// Refusals by reason code.
    pub refusals: BTreeMap<String, u64>,
}

pub struct Sim<'k> {
    keys: &'k Keys,
    pub workers: Vec<Worker>,
    pub runs: Vec<Run>,
    pub tl: Timeline,
    /// The last request, appended once the ledger measures preflight freshness strictly.
    pub final_tl: Timeline,
    rng: StdRng,
    scale: Scale,
    evidence_dir: PathBuf,
    start: i64,
    end: i64,
    now: i64,
    sub: i64,
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    events: Vec<Ev>,
    waiting: Vec<usize>,
    lanes: Vec<Vec<Lane>>,
    // The gate's inputs, as the ledger will have them.
    paused: bool,
    maintenance: Vec<bool>,
    healthy: Vec<Option<bool>>,
    final_phase: bool,
    // The dispatcher's knowledge.
    knows_paused: bool,
    knows_maintenance: Vec<bool>,
    knows_unhealthy: Vec<bool>,
    // The scenario.
    preflight_fails: Vec<bool>,
    agent_alive: Vec<bool>,
    xid79_pending: bool,
    driver: Vec<&'static str>,
    pub expected: Expected,
    pub problems: Vec<String>,
    /// gpu.xid events: (code, taints, inside some run's window).
    pub xids: Vec<(u32, bool, bool)>,
}

impl<'k> Sim<'k> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        keys: &'k Keys,
        workers: Vec<Worker>,
        runs: Vec<Run>,
        tl: Timeline,
        final_tl: Timeline,
        rng: StdRng,
        scale: Scale,
        evidence_dir: PathBuf,
        start: i64,
    ) -> Sim<'k> {
        let n = workers.len();
        let lanes = workers.iter().map(|w| vec![Lane::default(); w.gpus.len()]).collect();
        Sim {
            keys,
            workers,
            runs,
            tl,
            final_tl,
            rng,
            scale,
            evidence_dir,
            start,
            end: start + scale.span_ns(),
            now: start,
            sub: 0,
            heap: BinaryHeap::new(),
            events: Vec::new(),
            waiting: Vec::new(),
            lanes,
            paused: false,
            maintenance: vec![false; n],
            healthy: vec![None; n],
            final_phase: false,
            knows_paused: false,
            knows_maintenance: vec![false; n],
            knows_unhealthy: vec![false; n],
            preflight_fails: vec![false; n],
            agent_alive: vec![true; n],
            xid79_pending: false,
            driver: vec![DRIVER; n],
            expected: Expected::default(),
            problems: Vec::new(),
            xids: Vec::new(),
        }
    }

    fn at(&self, fraction: f64) -> i64 {
        self.start + (self.scale.span_ns() as f64 * fraction) as i64
    }

    /// Schedules `ev` at `time`, rounded up to a whole second (see [`Sim::stamp`]).
    fn schedule(&mut self, time: i64, ev: Ev) {
        let time = (time.max(self.now) + SEC - 1).div_euclid(SEC) * SEC;
        self.events.push(ev);
        self.heap.push(Reverse((time, (self.events.len() - 1) as u64)));
    }

    /// The time of the next gate-relevant event of this step: steps are whole seconds apart
    /// and the events of one step take increasing sub-second offsets, so their time order is
    /// the order the simulation decided them in.
    fn stamp(&mut self) -> i64 {
        self.sub = (self.sub + self.rng.gen_range(11..47) * 1_000_000).min(999 * 1_000_000);
        self.now + self.sub
    }

    fn problem(&mut self, what: String) {
        self.problems.push(what);
    }

    /// Runs the whole history, then the last request (into `final_tl`).
    pub fn run(&mut self) {
        let before = self.start - 3 * HOUR;
        for w in 0..self.workers.len() {
            self.gpu_preflight(w, before + w as i64 * MIN);
        }
        for i in 0..self.runs.len() {
            if self.runs[i].probe.is_none() {
                let at = self.runs[i].queue_at;
                self.schedule(at, Ev::Queue(i));
            }
        }
        self.schedule(self.at(PAUSE_AT), Ev::Pause);
        self.schedule(self.at(XID79_AT), Ev::XidWatch);
        self.schedule(self.at(PREFLIGHT_FAIL_AT), Ev::PreflightFails);
        self.schedule(self.at(AGENT_STOPS_AT), Ev::AgentStops);
        self.schedule(self.at(0.9), Ev::LateNvlink);
        while let Some(Reverse((time, index))) = self.heap.pop() {
            if time >= self.end {
                break;
            }
            self.now = time;
            self.sub = 0;
            let ev = self.events[index as usize];
            self.handle(ev);
        }
        self.last_request();
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Queue(i) => self.queue(i),
            Ev::Finish(i) => self.finish(i),
            Ev::Evidence(i) => self.capture(i),
            Ev::Quiesce(i) => self.quiesce(i),
            Ev::Cancel(i) => self.cancel(i),
            Ev::Killed(i) => self.killed(i),
            Ev::Pause => {
                let t = self.stamp();
                let data = json!({"reason": "storage migration: /datasets moves to the new NFS cluster; no new runs until the mounts are switched"});
                self.tl.emit(&self.keys.admin, "control.paused", "control", data, t);
                self.paused = true;
                let probe = self.probe_run(Probe::Pause);
                self.schedule(self.now + 10 * MIN, Ev::Queue(probe));
                let length = if self.scale.days < 20 { 4 * HOUR } else { 5 * HOUR };
                self.schedule(self.now + length, Ev::Resume);
            }
            Ev::Resume => {
                let t = self.stamp();
                let data = json!({"reason": "/datasets remounted from nfs-2; checksums verified"});
                self.tl.emit(&self.keys.admin, "control.resumed", "control", data, t);
                self.paused = false;
                self.knows_paused = false;
                self.try_dispatch();
            }
            Ev::XidWatch => {
                self.lanes[MAINTENANCE_WORKER][0].reserved = true;
                if self.lanes[MAINTENANCE_WORKER][0].holder.is_none() {
                    self.schedule(self.now + 7 * MIN, Ev::Xid79);
                } else {
                    self.xid79_pending = true;
                }
            }
            Ev::Xid79 => {
                let t = self.stamp();
                self.xid(MAINTENANCE_WORKER, 0, 79, None, t, false);
                self.schedule(self.now + 20 * MIN, Ev::MaintenanceOn);
                self.schedule(self.now + 70 * MIN, Ev::GpuReset);
            }
            Ev::GpuReset => {
                let t = self.stamp();
                self.gpu_preflight(MAINTENANCE_WORKER, t);
            }
            Ev::MaintenanceOn => {
                let w = MAINTENANCE_WORKER;
                let gpu = self.workers[w].gpus[0].pci.clone();
                let data = json!({
                    "on": true, "worker": self.workers[w].name,
                    "reason": format!("Xid 79 on {gpu}: GPU fell off the bus; reseat the riser and run dcgmi diag -r 3 before it takes work again"),
                });
                let t = self.stamp();
                self.tl.emit(&self.keys.admin, "control.maintenance", "control", data, t);
                self.maintenance[w] = true;
                let probe = self.probe_run(Probe::Maintenance);
                self.schedule(self.now + 50 * MIN, Ev::Queue(probe));
                let length = if self.scale.days < 20 { 10 * HOUR } else { 16 * HOUR };
                self.schedule(self.now + length, Ev::MaintenanceOff);
            }
            Ev::MaintenanceOff => {
                let w = MAINTENANCE_WORKER;
                let data = json!({
                    "on": false, "worker": self.workers[w].name,
                    "reason": "riser reseated; dcgmi diag -r 3 passed on both GPUs",
                });
                let t = self.stamp();
                self.tl.emit(&self.keys.admin, "control.maintenance", "control", data, t);
                self.maintenance[w] = false;
                self.knows_maintenance[w] = false;
                self.lanes[w][0].reserved = false;
                self.try_dispatch();
            }
            Ev::PreflightFails => {
                self.preflight_fails[PREFLIGHT_FAIL_WORKER] = true;
                let probe = self.probe_run(Probe::PreflightFail);
                self.schedule(self.now + 20 * MIN, Ev::Queue(probe));
                self.schedule(self.now + 7 * HOUR, Ev::PreflightRecovers);
            }
            Ev::PreflightRecovers => {
                let w = PREFLIGHT_FAIL_WORKER;
                self.preflight_fails[w] = false;
                self.preflight(w);
                self.knows_unhealthy[w] = false;
                self.try_dispatch();
            }
            Ev::LateNvlink => {
                let w = BLACKWELL_WORKER;
                let idle = (0..self.lanes[w].len()).find(|&g| self.lanes[w][g].holder.is_none());
                match idle {
                    Some(g) => {
                        let t = self.stamp();
                        self.xid(w, g, 145, None, t, false);
                        self.xid(w, g, 154, None, t + SEC, false);
                    }
                    None => self.schedule(self.now + 2 * HOUR, Ev::LateNvlink),
                }
            }
            Ev::AgentStops => {
                let w = BLACKWELL_WORKER;
                // Its last preflight; the agent hangs afterwards and never reports again.
                self.preflight(w);
                self.agent_alive[w] = false;
            }
        }
    }

    fn probe_run(&mut self, probe: Probe) -> usize {
        match self.runs.iter().position(|r| r.probe == Some(probe)) {
            Some(i) => i,
            None => {
                self.problem(format!("no run planned for probe {probe:?}"));
                0
            }
        }
    }

    fn queue(&mut self, i: usize) {
        let t = self.stamp();
        let r = &self.runs[i];
        let data = json!({
            "run": r.id,
            "project": r.project.name(),
            "needs_gpu": r.needs_gpu,
            "spec": {
                "command": r.project.command(r.config, r.seed),
                "image": "registry.lab.internal/research/train:2026.02-cu128",
                "config": r.config,
                "seed": r.seed,
                "resources": {"gpus": u8::from(r.needs_gpu), "cpus": 16, "mem_gb": 160},
            },
        });
        let subject = format!("run/{}", r.id);
        self.tl.emit(&self.keys.dispatcher, "run.queued", &subject, data, t);
        self.runs[i].queued = Some(t);
        match self.runs[i].outcome {
            Outcome::CancelQueued => {
                self.schedule(self.now + 3 * HOUR, Ev::Cancel(i));
            }
            Outcome::Stale => {}
            _ => {
                if let Some(probe) = self.runs[i].probe {
                    self.probe(i, probe);
                }
                self.waiting.push(i);
                self.try_dispatch();
            }
        }
    }

    /// The dispatcher's request that the scenario knows the gate refuses.
    fn probe(&mut self, i: usize, probe: Probe) {
        let lane = match probe {
            Probe::LaneHeld { holder } => self.runs[holder].worker.zip(self.runs[holder].gpu),
            Probe::Maintenance => Some((MAINTENANCE_WORKER, 0)),
            Probe::PreflightFail => {
                let w = PREFLIGHT_FAIL_WORKER;
                let g = (0..self.lanes[w].len()).find(|&g| self.lanes[w][g].holder.is_none()).unwrap_or(0);
                Some((w, g))
            }
            Probe::Pause => {
                let free = self.free_lanes(i);
                free.first().copied().or(Some((0, 0)))
            }
        };
        let Some((w, g)) = lane else {
            self.problem(format!("probe {probe:?} of {} has no lane", self.runs[i].id));
            return;
        };
        if self.attempt(i, w, Some(g)) {
            self.problem(format!("probe {probe:?}: the gate would accept {}", self.runs[i].id));
            self.launch(i, w, Some(g));
        }
    }

    /// Lanes the dispatcher believes it may use for run `i`.
    fn free_lanes(&self, i: usize) -> Vec<(usize, usize)> {
        let r = &self.runs[i];
        let mut out = Vec::new();
        for (w, lanes) in self.lanes.iter().enumerate() {
            if !self.usable_worker(r, w) {
                continue;
            }
            for (g, lane) in lanes.iter().enumerate() {
                if lane.holder.is_none() && !lane.reserved && !lane.knows_reset {
                    out.push((w, g));
                }
            }
        }
        out
    }

    fn usable_worker(&self, r: &Run, w: usize) -> bool {
        self.agent_alive[w]
            && !self.knows_maintenance[w]
            && !self.knows_unhealthy[w]
            && r.worker_only.is_none_or(|o| o == w)
            && r.worker_not != Some(w)
    }

    /// Dispatches waiting runs while the dispatcher sees room.
    fn try_dispatch(&mut self) {
        'again: loop {
            if self.knows_paused || self.final_phase {
                return;
            }
            for k in 0..self.waiting.len() {
                let i = self.waiting[k];
                let choice = if self.runs[i].needs_gpu {
                    let free = self.free_lanes(i);
                    free.choose(&mut self.rng).map(|&(w, g)| (w, Some(g)))
                } else {
                    let workers: Vec<usize> =
                        (0..self.workers.len()).filter(|&w| self.usable_worker(&self.runs[i], w)).collect();
                    workers.choose(&mut self.rng).map(|&w| (w, None))
                };
                let Some((w, g)) = choice else { continue };
                if self.attempt(i, w, g) {
                    self.waiting.remove(k);
                    self.launch(i, w, g);
                }
                // Accepted or refused (and the dispatcher learned why): look again.
                continue 'again;
            }
            return;
        }
    }

    /// A worker preflight (the dispatcher asks for one before each request).
    fn preflight(&mut self, w: usize) {
        let healthy = !self.preflight_fails[w];
        let worker = &self.workers[w];
        let disk = if healthy {
            json!({"name": "disk_free", "ok": true, "detail": format!("/scratch: {:.2} TiB free", self.rng.gen_range(0.9..2.4))})
        } else {
            json!({"name": "disk_free", "ok": false, "detail": format!("/scratch: {:.1} GiB free (< 200 GiB required): checkpoint shards of a crashed run", self.rng.gen_range(3.0..19.0))})
        };
        let data = json!({
            "worker": worker.name,
            "healthy": healthy,
            "checks": [
                {"name": "nvml", "ok": true, "detail": format!("{}x {}, driver {}", worker.gpus.len(), worker.model.name, self.driver[w])},
                disk,
                {"name": "ecc_uncorrectable", "ok": true, "detail": "0 since boot"},
                {"name": "nccl_loopback", "ok": true},
            ],
            "gpus": worker.gpus.iter().map(|g| g.pci.clone()).collect::<Vec<_>>(),
        });
        let subject = format!("worker/{}", worker.name);
        let t = self.stamp();
        self.tl.emit(&self.keys.runners[w], "worker.preflight", &subject, data, t);
        self.healthy[w] = Some(healthy);
    }

    /// Preflight and request; returns whether the gate accepts (by the model), and learns
    /// from a refusal.
    fn attempt(&mut self, i: usize, w: usize, g: Option<usize>) -> bool {
        if self.agent_alive[w] {
            self.preflight(w);
        }
        let r = &self.runs[i];
        let pci = g.map(|g| self.workers[w].gpus[g].pci.clone());
        let data = json!({"run": r.id, "worker": self.workers[w].name, "gpu": pci});
        let subject = format!("run/{}", r.id);
        let mut reasons: Vec<String> = Vec::new();
        if r.dispatched.is_some() || r.cancelled.is_some() || r.queued.is_none() {
            reasons.push("run_not_queued".into());
        }
        if self.paused {
            reasons.push("paused".into());
        }
        if self.maintenance[w] {
            reasons.push("maintenance".into());
        }
        match self.healthy[w] {
            None => reasons.push("preflight_missing".into()),
            Some(false) => reasons.push("preflight_failed".into()),
            Some(true) => {}
        }
        if self.final_phase {
            reasons.push("preflight_stale".into());
        }
        // The final request follows the whole history in the ledger.
        let t = if self.final_phase { self.now + self.sub + MIN } else { self.stamp() };
        let state_at = if self.final_phase { i64::MAX } else { t };
        if let (Some(g), Some(pci)) = (g, &pci)
            && self.needs_reset(w, g, state_at)
        {
            reasons.push(format!("gpu_needs_reset:{pci}"));
        }
        if let Some(holder) = g.and_then(|g| self.lanes[w][g].holder) {
            reasons.push(format!("lane_held_by:{}", self.runs[holder].id));
        }
        if self.final_phase {
            self.final_tl.emit(&self.keys.dispatcher, "dispatch.requested", &subject, data, t);
        } else {
            self.tl.emit(&self.keys.dispatcher, "dispatch.requested", &subject, data, t);
        }
        if reasons.is_empty() {
            self.expected.accepted += 1;
            let t = self.now + self.sub;
            let r = &mut self.runs[i];
            r.dispatched = Some(t);
            r.worker = Some(w);
            r.gpu = g;
            if let Some(g) = g {
                self.lanes[w][g].holder = Some(i);
            }
            return true;
        }
        self.expected.refused += 1;
        self.runs[i].refusals += 1;
        for reason in &reasons {
            let code = reason.split(':').next().unwrap_or(reason).to_owned();
            *self.expected.refusals.entry(code).or_default() += 1;
        }
        self.knows_paused |= self.paused;
        self.knows_maintenance[w] |= self.maintenance[w];
        self.knows_unhealthy[w] |= self.healthy[w] == Some(false);
        if let Some(g) = g
            && reasons.iter().any(|r| r.starts_with("gpu_needs_reset:"))
        {
            self.lanes[w][g].knows_reset = true;
        }
        false
    }

    /// Whether the ledger's GPU state at `time` says (`w`, `g`) needs a reset: the latest of
    /// its reset Xids and clearing preflights at or before `time` (ties: the later emitted).
    fn needs_reset(&self, w: usize, g: usize, time: i64) -> bool {
        let mut latest: Option<(i64, bool)> = None;
        for &(at, set) in &self.lanes[w][g].resets {
            if at <= time && latest.is_none_or(|(seen, _)| at >= seen) {
                latest = Some((at, set));
            }
        }
        latest.is_some_and(|(_, set)| set)
    }

    /// The runner's `gpu.preflight` for worker `w` at `time`: every device works, so any
    /// reset it needed is done (for the gate, and for the dispatcher, which reads GPU health).
    fn gpu_preflight(&mut self, w: usize, time: i64) {
        let data = gpus::preflight(&self.workers[w], self.driver[w]);
        let subject = format!("worker/{}", self.workers[w].name);
        self.tl.emit(&self.keys.runners[w], "gpu.preflight", &subject, data, time);
        for lane in &mut self.lanes[w] {
            lane.resets.push((time, false));
            lane.knows_reset = false;
        }
    }

    /// The final request: a run for the Blackwell node, whose preflight agent stopped.
    fn last_request(&mut self) {
        let Some(i) = self.runs.iter().position(|r| r.outcome == Outcome::Stale) else {
            self.problem("no run planned for the stale preflight".into());
            return;
        };
        self.final_phase = true;
        self.now = self.end;
        self.sub = 0;
        let w = BLACKWELL_WORKER;
        let g = (0..self.lanes[w].len()).find(|&g| self.lanes[w][g].holder.is_none()).unwrap_or(0);
        if self.attempt(i, w, Some(g)) {
            self.problem("the stale preflight request would be accepted".into());
        }
    }

    fn worker_key(&self, i: usize) -> &'k assay_events::keys::SignerKey {
        &self.keys.runners[self.runs[i].worker.unwrap_or(0)]
    }

    /// The run was accepted at `now`: it starts, and everything it logs while it runs is
    /// emitted now (times inside its window); its exit, evidence and quiescence are
    /// scheduled.
    fn launch(&mut self, i: usize, w: usize, g: Option<usize>) {
        let start = self.now + self.rng.gen_range(35..110) * SEC + self.rng.gen_range(0..SEC);
        let pid = self.rng.gen_range(20_000..4_000_000);
        let duration = self.runs[i].duration_ns;
        let outcome = self.runs[i].outcome;
        let (stop, stop_ev) = match outcome {
            Outcome::Failed { at, .. } => (start + (duration as f64 * at) as i64, Ev::Finish(i)),
            Outcome::CancelRunning { at } => (start + (duration as f64 * at) as i64, Ev::Cancel(i)),
            _ => (start + duration, Ev::Finish(i)),
        };
        let r = &mut self.runs[i];
        r.started = Some(start).filter(|s| *s < self.end);
        r.pid = pid;
        if r.started.is_none() {
            return;
        }
        let key = &self.keys.runners[w];
        let subject = format!("run/{}", r.id);
        let mut started = json!({
            "run": r.id, "worker": self.workers[w].name, "pid": pid,
            "command": r.project.command(r.config, r.seed),
        });
        if let Some(g) = g {
            started["gpu"] = json!(self.workers[w].gpus[g].pci);
        }
        self.tl.emit(key, "run.started", &subject, started, start);
        if stop < self.end {
            self.schedule(stop, stop_ev);
        }
        // Everything below happens while it runs: at most until it stops or the history ends.
        let until = stop.min(self.end);
        let speed = self.workers[w].model.speed;
        if let Outcome::Campaign { blackwell } = outcome {
            self.campaign(i, w, g, start, until, blackwell);
        } else {
            let done = ((until - start) as f64 / duration as f64).min(1.0);
            let r = &self.runs[i];
            let mut series = metrics::series(
                r.project,
                r.offset,
                r.seed_offset,
                speed,
                self.scale.points,
                done,
                &mut self.rng,
            );
            for s in &mut series {
                s.points.retain(|p| start + (duration as f64 * p.frac) as i64 - 5 * SEC < until);
                for p in &s.points {
                    let t = start + (duration as f64 * p.frac) as i64 - 5 * SEC - self.rng.gen_range(0..SEC);
                    let data = json!({
                        "run": self.runs[i].id, "name": s.def.name, "step": p.step, "value": p.value, "unit": s.def.unit,
                    });
                    self.tl.emit(key, "metric.recorded", &subject, data, t);
                }
            }
            self.runs[i].series = series;
        }
        // Heartbeats of the process tree.
        let beats = ((until - start) / (90 * MIN)).clamp(2, 24);
        for b in 0..beats {
            let t = start + (until - start) * (2 * b + 1) / (2 * beats);
            let mut data = json!({
                "run": self.runs[i].id,
                "cpu_pct": (self.rng.gen_range(140.0..890.0_f64) * 10.0).round() / 10.0,
                "rss_bytes": self.rng.gen_range(18u64..96) << 30,
                "processes": self.rng.gen_range(6..18),
            });
            if g.is_some() {
                data["gpu_util_pct"] = json!(self.rng.gen_range(86.0..99.5_f64).round());
            }
            self.tl.emit(key, "run.heartbeat", &subject, data, t);
        }
        // GPU telemetry while it runs.
        if let Some(g) = g {
            let samples = ((until - start) / (2 * HOUR)).clamp(1, 12);
            let mem = match self.runs[i].project {
                Project::FlashAttn => 0.35,
                Project::Vit => 0.55,
                _ => 0.92,
            };
            for s in 0..samples {
                let t = start + (until - start) * (2 * s + 1) / (2 * samples) + 17 * SEC;
                let util = self.rng.gen_range(88.0..99.5);
                let data =
                    gpus::telemetry(&self.workers[w], &self.workers[w].gpus[g], util, mem, &mut self.rng);
                let pci = self.workers[w].gpus[g].pci.clone();
                self.tl.emit(key, "gpu.telemetry", &format!("gpu/{pci}"), data, t);
            }
            self.in_window_xids(i, w, g, start, stop);
        }
    }

    /// The Xids that happen on a run's GPU while it runs.
    fn in_window_xids(&mut self, i: usize, w: usize, g: usize, start: i64, stop: i64) {
        let pid = self.runs[i].pid;
        let inside = |frac: f64| start + ((stop - start) as f64 * frac) as i64;
        match self.runs[i].outcome {
            Outcome::Tainted { code } => {
                let t = inside(self.rng.gen_range(0.25..0.75));
                self.xid(w, g, code, None, t, true);
                if code == 48 {
                    self.xid(w, g, 154, None, t + 2 * SEC, true);
                }
            }
            Outcome::AppXid { code } => {
                let t = inside(self.rng.gen_range(0.2..0.8));
                self.xid(w, g, code, Some((pid, "python3")), t, true);
            }
            Outcome::Failed { xid: Some(code), .. } => {
                let process = (code != 79).then_some((pid, "pt_main_thread"));
                self.xid(w, g, code, process, stop - 3 * SEC, true);
            }
            Outcome::CancelRunning { .. } => {
                // The driver cleans up the killed process's channels.
                self.xid(w, g, 45, Some((pid, "pt_main_thread")), stop + 12 * SEC, true);
            }
            _ => {}
        }
    }

    /// Records one Xid on (`w`, `g`) at `time`, from its kernel-log line.
    fn xid(
        &mut self,
        w: usize,
        g: usize,
        code: u32,
        process: Option<(u64, &str)>,
        time: i64,
        in_window: bool,
    ) {
        if time >= self.end {
            return;
        }
        let worker = self.workers[w].clone();
        match gpus::xid_event(&worker, &worker.gpus[g], code, process, time, &mut self.rng) {
            Ok(x) => {
                let subject = format!("gpu/{}", x.data["pci"].as_str().unwrap_or_default());
                let reset = x.data["action"].as_str().is_some_and(action_needs_reset);
                if reset {
                    self.lanes[w][g].resets.push((time, true));
                }
                self.tl.emit(&self.keys.runners[w], "gpu.xid", &subject, x.data, time);
                // The run whose window it falls in (none for `in_window: false`).
                let holder = self.runs.iter_mut().find(|r| {
                    r.worker == Some(w)
                        && r.gpu == Some(g)
                        && r.started.is_some_and(|s| s <= time)
                        && r.finished.is_none_or(|f| time <= f)
                        && r.cancelled.is_none_or(|c| time <= c + 30 * SEC)
                });
                let found = holder.is_some();
                if let Some(r) = holder {
                    r.xids_in_window.push((x.code, x.taints));
                    r.reset_after |= reset;
                }
                if found != in_window {
                    self.problem(format!(
                        "Xid {code} at {time}: inside a run's window is {found}, planned {in_window}"
                    ));
                }
                self.xids.push((x.code, x.taints, found));
            }
            Err(e) => self.problem(e),
        }
    }

    fn campaign(&mut self, i: usize, w: usize, g: Option<usize>, start: i64, until: i64, blackwell: bool) {
        let file = if blackwell { kernels::BRINGUP } else { kernels::REGRESSION };
        let launches = match kernels::run(file, &self.runs[i].id, self.workers[w].name) {
            Ok(launches) => launches,
            Err(e) => return self.problem(e),
        };
        // On the Blackwell node every NVFP4 cell also has a (simulated) CUDA launch.
        let gpu = g.filter(|_| blackwell).map(|g| (g, self.workers[w].gpus[g].clone()));
        let faults =
            if gpu.is_some() { launches.iter().filter(|l| kernels::is_nvfp4(&l.spec)).count() } else { 0 };
        let total = (launches.len() + faults) as i64;
        let key = &self.keys.runners[w];
        let subject = format!("run/{}", self.runs[i].id);
        let mut n = 0i64;
        let mut results = Vec::new();
        for launch in launches {
            let t = start + (until - start) * (n + 1) / (total + 2);
            n += 1;
            results.push(launch.data.clone());
            self.tl.emit(key, &launch.ty, &subject, launch.data.clone(), t);
            self.runs[i].launches.push(launch.fact.clone());
            let Some((g, device)) = gpu.as_ref().filter(|_| kernels::is_nvfp4(&launch.spec)) else {
                continue;
            };
            let t = start + (until - start) * (n + 1) / (total + 2);
            n += 1;
            let (data, fact) = kernels::simulated_fault(&launch, &device.uuid, self.workers[w].model.name);
            results.push(data.clone());
            self.tl.emit(key, "kernel.launch.faulted", &subject, data, t);
            self.runs[i].launches.push(fact);
            // What the kernel log shows for such a fault: an SM exception, then the MMU
            // fault, for the child process.
            let child = (self.rng.gen_range(20_000..4_000_000), "assay");
            self.xid(w, *g, 13, Some(child), t - 2 * SEC, true);
            self.xid(w, *g, 31, Some(child), t - SEC, true);
        }
        self.runs[i].campaign_results = results;
    }

    fn finish(&mut self, i: usize) {
        let t = self.stamp();
        let r = &self.runs[i];
        let (exit, signal) = match r.outcome {
            Outcome::Failed { exit, signal, .. } => (exit, signal),
            _ => (Some(0), None),
        };
        let duration_ms = (t - r.started.unwrap_or(t)) / 1_000_000;
        let data = json!({"run": r.id, "exit_code": exit, "signal": signal, "duration_ms": duration_ms});
        let subject = format!("run/{}", r.id);
        self.tl.emit(self.worker_key(i), "run.finished", &subject, data, t);
        let r = &mut self.runs[i];
        r.finished = Some(t);
        r.exit_code = exit;
        r.signal = signal;
        let after = |sim: &mut Sim, lo: i64, hi: i64| sim.now + sim.rng.gen_range(lo..hi);
        match self.runs[i].outcome {
            Outcome::NoEvidence => {
                let q = after(self, 3 * MIN, 9 * MIN);
                self.schedule(q, Ev::Quiesce(i));
            }
            Outcome::Leaky { probe } => {
                let e = after(self, 50 * SEC, 150 * SEC);
                self.schedule(e, Ev::Evidence(i));
                self.schedule(self.now + 2 * HOUR, Ev::Cancel(i));
                if probe {
                    self.successor(i);
                }
            }
            Outcome::SlowQuiesce { probe } => {
                let e = after(self, 50 * SEC, 150 * SEC);
                self.schedule(e, Ev::Evidence(i));
                let q = after(self, 25 * MIN, 50 * MIN);
                self.schedule(q, Ev::Quiesce(i));
                if probe {
                    self.successor(i);
                }
            }
            Outcome::PostXid => {
                let e = after(self, 50 * SEC, 150 * SEC);
                self.schedule(e, Ev::Evidence(i));
                let q = after(self, 5 * MIN, 9 * MIN);
                self.schedule(q, Ev::Quiesce(i));
                // Row remapping right after the run: outside its window, and before any next.
                if let (Some(w), Some(g)) = (self.runs[i].worker, self.runs[i].gpu) {
                    let x = self.now + 40 * SEC;
                    self.xid(w, g, 63, None, x, false);
                }
            }
            _ => {
                let e = after(self, 50 * SEC, 170 * SEC);
                self.schedule(e, Ev::Evidence(i));
                let q = e + self.rng.gen_range(2 * MIN..10 * MIN);
                self.schedule(q, Ev::Quiesce(i));
            }
        }
    }

    /// Queues the run that asks for `holder`'s lane before it quiesces.
    fn successor(&mut self, holder: usize) {
        match self.runs.iter().position(|r| r.probe == Some(Probe::LaneHeld { holder })) {
            Some(s) => self.schedule(self.now + 2 * MIN, Ev::Queue(s)),
            None => self.problem(format!("no successor planned for {}", self.runs[holder].id)),
        }
    }

    fn killed(&mut self, i: usize) {
        let t = self.stamp();
        let r = &self.runs[i];
        let duration_ms = (t - r.started.unwrap_or(t)) / 1_000_000;
        let data = json!({"run": r.id, "exit_code": null, "signal": 15, "duration_ms": duration_ms});
        let subject = format!("run/{}", r.id);
        self.tl.emit(self.worker_key(i), "run.finished", &subject, data, t);
        let r = &mut self.runs[i];
        r.finished = Some(t);
        r.exit_code = None;
        r.signal = Some(15);
        self.schedule(self.now + 70 * SEC, Ev::Evidence(i));
    }

    fn cancel(&mut self, i: usize) {
        let t = self.stamp();
        let r = &self.runs[i];
        let reason = match r.outcome {
            Outcome::CancelQueued => {
                "config typo (lr 6e-3 for 6e-4); superseded by a corrected run".to_owned()
            }
            Outcome::Leaky { .. } => format!(
                "process tree still busy 2 h after exit ({} orphaned dataloader workers at 100% CPU); lane reclaimed",
                self.rng.gen_range(3..9)
            ),
            _ => "no progress for 2 h: NCCL allreduce hung on rank 3; killed (SIGTERM)".to_owned(),
        };
        let data = json!({"run": r.id, "reason": reason});
        let subject = format!("run/{}", r.id);
        self.tl.emit(&self.keys.dispatcher, "run.cancelled", &subject, data, t);
        self.runs[i].cancelled = Some(t);
        self.waiting.retain(|&k| k != i);
        if matches!(self.runs[i].outcome, Outcome::CancelRunning { .. }) {
            self.schedule(self.now + 20 * SEC, Ev::Killed(i));
        }
        self.release(i);
    }

    fn quiesce(&mut self, i: usize) {
        let t = self.stamp();
        let r = &self.runs[i];
        let gpu_util_max = if r.gpu.is_some() {
            json!((self.rng.gen_range(0.0..2.0_f64) * 10.0).round() / 10.0)
        } else {
            Value::Null
        };
        let data = json!({
            "run": r.id, "quiet_window_ms": 300_000,
            "cpu_pct_max": (self.rng.gen_range(0.2..3.5_f64) * 10.0).round() / 10.0,
            "gpu_util_max": gpu_util_max,
        });
        let subject = format!("run/{}", r.id);
        self.tl.emit(self.worker_key(i), "run.quiesced", &subject, data, t);
        self.runs[i].quiesced = Some(t);
        if let Some(w) = self.runs[i].worker
            && self.runs[i].reset_after
            && t < self.at(0.9)
        {
            // The operator resets the GPU before it takes work again; the runner's preflight
            // finds it healthy (before the lane is released below, so before any request for
            // it). Late in the history nobody has yet: it still needs a reset, and the gate
            // refuses it.
            let t = self.stamp();
            self.gpu_preflight(w, t);
        }
        if let (Some(w), Some(g)) = (self.runs[i].worker, self.runs[i].gpu) {
            // An idle sample once the lane is free.
            let data = gpus::telemetry(&self.workers[w], &self.workers[w].gpus[g], 0.0, 0.0, &mut self.rng);
            let pci = self.workers[w].gpus[g].pci.clone();
            self.tl.emit_before_end(
                &self.keys.runners[w],
                "gpu.telemetry",
                &format!("gpu/{pci}"),
                data,
                t + MIN,
            );
        }
        self.release(i);
    }

    /// Frees the lane `i` holds (quiesced or cancelled) and lets the dispatcher use it.
    fn release(&mut self, i: usize) {
        if let (Some(w), Some(g)) = (self.runs[i].worker, self.runs[i].gpu)
            && self.lanes[w][g].holder == Some(i)
        {
            self.lanes[w][g].holder = None;
            if self.xid79_pending && w == MAINTENANCE_WORKER && g == 0 {
                self.xid79_pending = false;
                self.schedule(self.now + 7 * MIN, Ev::Xid79);
            }
        }
        self.try_dispatch();
    }

    /// Writes the run's evidence folder and records `evidence.captured`.
    fn capture(&mut self, i: usize) {
        let t = self.stamp();
        let folder = self.evidence_dir.join(&self.runs[i].id);
        let files = self.evidence_files(i);
        match files.write(&folder) {
            Ok(written) => {
                let r = &self.runs[i];
                let data = json!({"run": r.id, "files": written.files, "bundle_digest": written.digest});
                let subject = format!("run/{}", r.id);
                let digest = self.tl.emit(self.worker_key(i), "evidence.captured", &subject, data, t);
                self.runs[i].evidence = Some((t, digest.to_hex()));
            }
            Err(e) => self.problem(format!("writing {}: {e}", folder.display())),
        }
    }

    fn evidence_files(&mut self, i: usize) -> FileSet {
        let r = &self.runs[i];
        let mut set = FileSet::new();
        let w = r.worker.unwrap_or(0);
        let config = json!({
            "run": r.id, "project": r.project.name(), "config": r.config, "seed": r.seed,
            "command": r.project.command(r.config, r.seed),
            "worker": self.workers[w].name,
            "gpu": r.gpu.map(|_| self.workers[w].model.name),
        });
        set.add("config.json", format!("{config:#}\n"));
        let mut stdout = String::new();
        if let Outcome::Campaign { .. } = r.outcome {
            // The campaign file as shipped, which the run's command names.
            let file = match r.outcome {
                Outcome::Campaign { blackwell: true } => kernels::BRINGUP,
                _ => kernels::REGRESSION,
            };
            set.add("campaign.toml", file.text);
            let lines: String = r.campaign_results.iter().map(|v| format!("{v}\n")).collect();
            set.add("results.jsonl", lines);
            for l in &r.launches {
                let verdict = if l.faulted {
                    "FAULT"
                } else if l.passed {
                    "pass"
                } else {
                    "FAIL"
                };
                stdout.push_str(&format!("{:<22} {:<5} {:<6} {}\n", l.kernel, l.backend, verdict, l.variant));
            }
        } else {
            let mut lines = Vec::new();
            for s in &r.series {
                for p in &s.points {
                    lines.push((
                        p.step,
                        format!(
                            "{}\n",
                            json!({"name": s.def.name, "step": p.step, "value": p.value, "unit": s.def.unit})
                        ),
                    ));
                }
            }
            lines.sort_by_key(|l| l.0);
            set.add("metrics.jsonl", lines.into_iter().map(|l| l.1).collect::<String>());
            if let Some(main) = r.series.first() {
                for p in &main.points {
                    stdout.push_str(&format!(
                        "[rank0] step {:>6} | {} {:.4}\n",
                        p.step, main.def.name, p.value
                    ));
                }
            }
        }
        set.add("logs/stdout.log", stdout);
        let stderr = match r.outcome {
            Outcome::Campaign { .. } => String::new(),
            Outcome::Failed { why, .. } => match why {
                "oom" => "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.21 GiB is free.\n",
                "oom_killer" => "Killed\n(the kernel's OOM killer ended the dataloader's parent: RSS 1.9 TiB)\n",
                "illegal_address" => "RuntimeError: CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously reported at some other API call.\n",
                "illegal_instruction" => "RuntimeError: CUDA error: an illegal instruction was encountered\n",
                "ecc" => "RuntimeError: CUDA error: uncorrectable ECC error encountered\n",
                "nccl" => "torch.distributed.DistBackendError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)\nAborted (core dumped)\n",
                _ => "ValueError: loss is NaN at step 11840; stopping (grad_norm 3.1e+04)\n",
            }
            .to_owned(),
            Outcome::CancelRunning { .. } => "Terminated\n(SIGTERM from the dispatcher: no progress for 2 h)\n".to_owned(),
            _ => "UserWarning: TypedStorage is deprecated. It will be removed in the future.\n".to_owned(),
        };
        if !stderr.is_empty() {
            set.add("logs/stderr.log", stderr);
        }
        if let Some(g) = r.gpu {
            let gpu = &self.workers[w].gpus[g];
            set.add(
                "env/nvidia-smi.txt",
                format!(
                    "NVIDIA-SMI {d}    Driver Version: {d}    CUDA Version: 12.8\nGPU {} {}  Bus-Id {}\n",
                    gpu.index,
                    self.workers[w].model.name,
                    gpu.nvml_pci,
                    d = self.driver[w]
                ),
            );
        }
        set
    }
}

//! The runs of the lab: experiments (a configuration tried with several seeds), what becomes
//! of each run, and when it is queued. The simulation ([`super::sim`]) dispatches them.

use rand::Rng;
use rand::rngs::StdRng;

use super::kernels::{self, LaunchFact};
use super::lab::{BLACKWELL_WORKER, HOUR, MIN, Project, Scale};
use super::metrics::Series;

/// What becomes of a run once dispatched (or why it never is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Exits 0, captures evidence, quiesces a few minutes later.
    Ok,
    /// Like `Ok`, but its process tree stays busy 25–50 minutes after exit (checkpoint
    /// upload); with `probe`, the dispatcher asks for its lane in between and is refused.
    SlowQuiesce { probe: bool },
    /// Exits nonzero (or by a signal) after `at` of its planned duration; an Xid of `xid`
    /// may come with the failure (13/31: the program's fault; 94/79: the GPU's).
    Failed { at: f64, exit: Option<i64>, signal: Option<i64>, xid: Option<u32>, why: &'static str },
    /// Exits 0 and quiesces, but evidence capture fails (the bundle never reaches the ledger).
    NoEvidence,
    /// Exits 0 and captures evidence; orphaned workers keep its tree busy, it never
    /// quiesces, and the dispatcher cancels it two hours later to reclaim the lane (with
    /// `probe`, after a request for that lane was refused).
    Leaky { probe: bool },
    /// Exits 0, but a hardware Xid hits its GPU while it runs.
    Tainted { code: u32 },
    /// Exits 0 with an application-class Xid (context only) while it runs.
    AppXid { code: u32 },
    /// Exits 0; a hardware Xid (row remapping) follows on its GPU after it ended.
    PostXid,
    /// Cancelled by the dispatcher after `at` of its planned duration; killed (SIGTERM),
    /// evidence captured, never quiesced.
    CancelRunning { at: f64 },
    /// Cancelled while still queued.
    CancelQueued,
    /// Still running when the history ends.
    Long,
    /// A kernel campaign (CPU regression, or the Blackwell bring-up with CUDA cells).
    Campaign { blackwell: bool },
    /// Queued at the end for the Blackwell node, whose preflight agent has gone quiet:
    /// refused for a stale preflight.
    Stale,
}

/// Why a run is queued by the scenario at a fixed moment and tried right away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Queued during the pause.
    Pause,
    /// Queued for the node in maintenance.
    Maintenance,
    /// Queued for the node whose preflight fails.
    PreflightFail,
    /// Queued when run `holder` exits; asks for its lane before it quiesces.
    LaneHeld { holder: usize },
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub project: Project,
    pub config: &'static str,
    pub offset: f64,
    pub seed: u32,
    pub seed_offset: f64,
    pub outcome: Outcome,
    pub needs_gpu: bool,
    /// Planned wall time from start to exit.
    pub duration_ns: i64,
    /// When the scenario queues it (probe runs: set by the simulation).
    pub queue_at: i64,
    pub probe: Option<Probe>,
    /// Only this worker may take it.
    pub worker_only: Option<usize>,
    /// This worker may not take it.
    pub worker_not: Option<usize>,

    // What the simulation made of it.
    pub queued: Option<i64>,
    pub worker: Option<usize>,
    pub gpu: Option<usize>,
    pub dispatched: Option<i64>,
    pub started: Option<i64>,
    pub pid: u64,
    pub finished: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    /// (time, event digest hex) of `evidence.captured`.
    pub evidence: Option<(i64, String)>,
    pub quiesced: Option<i64>,
    pub cancelled: Option<i64>,
    pub series: Vec<Series>,
    /// Xids on its GPU inside its window: (code, taints).
    pub xids_in_window: Vec<(u32, bool)>,
    /// One of those asks for a GPU reset (done once the run has quiesced).
    pub reset_after: bool,
    pub launches: Vec<LaunchFact>,
    /// `kernel.launch.*` data of a campaign, for its evidence.
    pub campaign_results: Vec<serde_json::Value>,
    pub refusals: u32,
}

impl Run {
    fn new(project: Project, config: &'static str, offset: f64, outcome: Outcome) -> Run {
        Run {
            id: String::new(),
            project,
            config,
            offset,
            seed: 0,
            seed_offset: 0.0,
            outcome,
            needs_gpu: true,
            duration_ns: HOUR,
            queue_at: 0,
            probe: None,
            worker_only: None,
            worker_not: None,
            queued: None,
            worker: None,
            gpu: None,
            dispatched: None,
            started: None,
            pid: 0,
            finished: None,
            exit_code: None,
            signal: None,
            evidence: None,
            quiesced: None,
            cancelled: None,
            series: Vec::new(),
            xids_in_window: Vec::new(),
            reset_after: false,
            launches: Vec::new(),
            campaign_results: Vec::new(),
            refusals: 0,
        }
    }

    /// Finished with exit 0.
    pub fn succeeded(&self) -> bool {
        self.finished.is_some() && self.exit_code == Some(0)
    }

    /// Finished, quiesced, with evidence, and no hardware Xid in its window.
    pub fn clean(&self) -> bool {
        self.finished.is_some()
            && self.quiesced.is_some()
            && self.evidence.is_some()
            && !self.xids_in_window.iter().any(|(_, taints)| *taints)
    }

    pub fn tainted(&self) -> bool {
        self.xids_in_window.iter().any(|(_, taints)| *taints)
    }

    pub fn series(&self, name: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.def.name == name && !s.points.is_empty())
    }
}

/// A configuration of a project tried with one or more seeds.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub project: Project,
    pub config: &'static str,
    pub runs: Vec<usize>,
}

/// The plan: runs (ids in queue order) and experiments.
pub struct Plan {
    pub runs: Vec<Run>,
    pub experiments: Vec<Experiment>,
}

/// Scenario moments, as fractions of the history.
pub const PAUSE_AT: f64 = 0.30;
pub const XID79_AT: f64 = 0.47;
pub const PREFLIGHT_FAIL_AT: f64 = 0.64;
pub const AGENT_STOPS_AT: f64 = 0.86;

/// Outcomes every history has at least once, given to the earliest training runs.
const FORCED: [Outcome; 12] = [
    Outcome::Tainted { code: 48 },
    Outcome::Failed { at: 0.55, exit: Some(1), signal: None, xid: None, why: "oom" },
    Outcome::AppXid { code: 13 },
    Outcome::Leaky { probe: true },
    Outcome::NoEvidence,
    Outcome::SlowQuiesce { probe: true },
    Outcome::CancelRunning { at: 0.4 },
    Outcome::Failed { at: 0.7, exit: Some(1), signal: None, xid: Some(31), why: "illegal_address" },
    Outcome::PostXid,
    Outcome::Tainted { code: 48 },
    Outcome::Failed { at: 0.35, exit: None, signal: Some(9), xid: None, why: "oom_killer" },
    Outcome::Failed { at: 0.8, exit: Some(1), signal: None, xid: Some(94), why: "ecc" },
];

fn draw_outcome(rng: &mut StdRng) -> Outcome {
    let x: f64 = rng.gen_range(0.0..1.0);
    match x {
        x if x < 0.05 => {
            let (exit, signal, xid, why) = match rng.gen_range(0..6) {
                0 => (Some(1), None, None, "oom"),
                1 => (None, Some(9), None, "oom_killer"),
                2 => (Some(1), None, Some(31), "illegal_address"),
                3 => (Some(134), None, None, "nccl"),
                4 => (Some(1), None, None, "nan"),
                _ => (Some(1), None, Some(13), "illegal_instruction"),
            };
            Outcome::Failed { at: rng.gen_range(0.2..0.9), exit, signal, xid, why }
        }
        x if x < 0.1 => Outcome::Tainted { code: if rng.gen_bool(0.7) { 48 } else { 63 } },
        x if x < 0.13 => Outcome::AppXid { code: if rng.gen_bool(0.6) { 13 } else { 43 } },
        x if x < 0.15 => Outcome::SlowQuiesce { probe: rng.gen_bool(0.5) },
        x if x < 0.16 => Outcome::NoEvidence,
        x if x < 0.167 => Outcome::Leaky { probe: false },
        x if x < 0.175 => Outcome::PostXid,
        x if x < 0.182 => Outcome::CancelRunning { at: rng.gen_range(0.2..0.7) },
        _ => Outcome::Ok,
    }
}

/// Plans `scale.runs` runs over `[start, start + span)`.
pub fn plan(scale: &Scale, rng: &mut StdRng, start: i64) -> Plan {
    let span = scale.span_ns();
    let at = |f: f64| start + (span as f64 * f) as i64;
    let mut runs: Vec<Run> = Vec::new();
    let mut experiments: Vec<Experiment> = Vec::new();
    let experiment = |project: Project, config: &'static str, experiments: &mut Vec<Experiment>| {
        experiments.push(Experiment { project, config, runs: Vec::new() });
        experiments.len() - 1
    };

    // Runs the scenario needs, whatever the size.
    let campaigns = scale.campaigns.max(2);
    // Two long runs, one cancelled while queued, the stale request, the campaigns.
    let special = 4 + campaigns as usize;
    let budget = (scale.runs as usize).max(special + 16);
    // Training runs, including the successors that probe a held lane.
    let training = budget - special;

    let lanes = 8.0;
    let span_h = span as f64 / HOUR as f64;
    let base_h = (span_h * lanes * 0.5 / training as f64).clamp(1.5, span_h * 0.1);
    let duration = |project: Project, rng: &mut StdRng| {
        let factor = rng.gen_range(0.45..1.6) * if project == Project::FlashAttn { 0.3 } else { 1.0 };
        ((base_h * factor).max(0.75) * HOUR as f64) as i64
    };

    // Training experiments: sweeps of 1–4 seeds, queued over the first 84% of the history.
    let weights: Vec<(Project, u32)> = Project::TRAINING.iter().map(|p| (*p, p.weight())).collect();
    let total_w: u32 = weights.iter().map(|w| w.1).sum();
    let mut forced = FORCED.iter();
    let mut planned = 0usize;
    // Probe runs are single-seed experiments (reruns of a baseline).
    let probes = [Probe::Pause, Probe::Maintenance, Probe::PreflightFail];
    for probe in probes {
        let project = Project::TRAINING[rng.gen_range(0..Project::TRAINING.len())];
        let (config, offset) = project.configs()[0];
        let e = experiment(project, config, &mut experiments);
        let mut r = Run::new(project, config, offset, Outcome::Ok);
        r.probe = Some(probe);
        r.duration_ns = duration(project, rng);
        r.queue_at = at(match probe {
            Probe::Pause => PAUSE_AT,
            Probe::Maintenance => XID79_AT,
            _ => PREFLIGHT_FAIL_AT,
        });
        r.worker_not = Some(BLACKWELL_WORKER);
        experiments[e].runs.push(runs.len());
        runs.push(r);
        planned += 1;
    }
    while planned < training {
        let mut pick = rng.gen_range(0..total_w);
        let project = weights
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(Project::Pretrain, |w| w.0);
        let configs = project.configs();
        let (config, offset) = configs[rng.gen_range(0..configs.len())];
        let seeds = rng.gen_range(1..=4).min(training - planned);
        let e = experiment(project, config, &mut experiments);
        // Forced outcomes go to early experiments so that they end inside the history.
        let queue_at = start + HOUR + (rng.gen_range(0.0..0.84) * span as f64) as i64;
        let queue_at = if forced.len() > 0 { start + HOUR + rng.gen_range(0..span / 2) } else { queue_at };
        for seed in 0..seeds {
            if planned >= training {
                break;
            }
            let mut outcome = forced.next().copied().unwrap_or_else(|| draw_outcome(rng));
            let probes =
                matches!(outcome, Outcome::Leaky { probe: true } | Outcome::SlowQuiesce { probe: true });
            if probes && planned + 2 > training {
                outcome = Outcome::Ok;
            }
            let mut r = Run::new(project, config, offset, outcome);
            r.seed = seed as u32;
            r.seed_offset = rng.gen_range(-0.012..0.012);
            r.duration_ns = duration(project, rng);
            r.queue_at = queue_at + seed as i64 * rng.gen_range(0..3 * MIN);
            if matches!(outcome, Outcome::Leaky { probe: true } | Outcome::SlowQuiesce { probe: true }) {
                // Its successor (below) waits for its lane.
                r.worker_not = Some(BLACKWELL_WORKER);
            }
            experiments[e].runs.push(runs.len());
            runs.push(r);
            planned += 1 + usize::from(probes && outcome != Outcome::Ok);
        }
    }
    // The successors that ask for a lane before its holder quiesces.
    let holders: Vec<usize> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(r.outcome, Outcome::Leaky { probe: true } | Outcome::SlowQuiesce { probe: true })
        })
        .map(|(i, _)| i)
        .collect();
    for holder in holders {
        let project = runs[holder].project;
        let (config, offset) = (runs[holder].config, runs[holder].offset);
        let e = experiment(project, config, &mut experiments);
        let mut r = Run::new(project, config, offset, Outcome::Ok);
        r.seed = 7;
        r.probe = Some(Probe::LaneHeld { holder });
        r.duration_ns = duration(project, rng);
        r.queue_at = runs[holder].queue_at + runs[holder].duration_ns;
        experiments[e].runs.push(runs.len());
        runs.push(r);
    }
    // Two long pretraining runs started late: still running when the history ends.
    for seed in 0..2 {
        let e = experiment(Project::Pretrain, "data-mix-v3", &mut experiments);
        let mut r = Run::new(Project::Pretrain, "data-mix-v3", -0.035, Outcome::Long);
        r.seed = seed;
        r.duration_ns = 4 * span;
        r.queue_at = at(0.80 + 0.03 * f64::from(seed));
        r.worker_not = Some(BLACKWELL_WORKER);
        experiments[e].runs.push(runs.len());
        runs.push(r);
    }
    // A run cancelled while queued (its config had a typo; a fixed run replaced it).
    {
        let e = experiment(Project::Moe, "top2", &mut experiments);
        let mut r = Run::new(Project::Moe, "top2", -0.03, Outcome::CancelQueued);
        r.queue_at = at(0.4);
        experiments[e].runs.push(runs.len());
        runs.push(r);
    }
    // Kernel campaigns: CPU regressions spread over the history, one Blackwell bring-up.
    for c in 0..campaigns {
        let blackwell = c == 1;
        let config = if blackwell { kernels::BRINGUP.name } else { kernels::REGRESSION.name };
        let e = experiment(Project::Kernels, config, &mut experiments);
        let mut r = Run::new(Project::Kernels, config, 0.0, Outcome::Campaign { blackwell });
        r.seed = c;
        r.needs_gpu = blackwell;
        r.duration_ns = rng.gen_range(20 * MIN..50 * MIN);
        r.queue_at = if blackwell {
            at(0.2)
        } else {
            start + 2 * HOUR + (span as f64 * 0.8 * f64::from(c) / f64::from(campaigns)) as i64
        };
        r.worker_only = blackwell.then_some(BLACKWELL_WORKER);
        experiments[e].runs.push(runs.len());
        runs.push(r);
    }
    // The last request of the history: the Blackwell node, whose preflight went stale.
    {
        let e = experiment(Project::FlashAttn, "fp8-fwd", &mut experiments);
        let mut r = Run::new(Project::FlashAttn, "fp8-fwd", -0.12, Outcome::Stale);
        r.queue_at = start + span - 3 * HOUR;
        r.worker_only = Some(BLACKWELL_WORKER);
        experiments[e].runs.push(runs.len());
        runs.push(r);
    }
    // Ids in queue order.
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| (runs[i].queue_at, i));
    for (n, &i) in order.iter().enumerate() {
        runs[i].id = format!("r-{:04}", n + 1);
    }
    for e in &mut experiments {
        e.runs.sort_by_key(|&i| runs[i].seed);
    }
    Plan { runs, experiments }
}

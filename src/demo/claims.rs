//! Research claims: machine-checkable statements about runs, metrics and kernels, with the
//! verdict the scenario expects for each (from the same facts the audit will see). The demo
//! compares these expectations with the ledger's audit once the history is appended.

use std::collections::{BTreeMap, BTreeSet};

use assay_projections::audit::{Agg, Op};
use serde::Serialize;
use serde_json::{Value, json};

use super::groups::{Fit, GroupCheck};
use super::kernels::LaunchFact;
use super::metrics::{Better, aggregate};
use super::runs::Run;

pub use assay_projections::audit::Verdict;

/// How a statement says `op`.
fn words(op: Op) -> &'static str {
    match op {
        Op::Lt => "below",
        Op::Le => "at most",
        Op::Gt => "above",
        Op::Ge => "at least",
        Op::Eq => "exactly",
    }
}

/// Whether `observed op threshold` holds, in binary64 (the demo's model of the audit's exact
/// comparison; its thresholds clear the values by a margin).
fn holds(op: Op, observed: f64, threshold: f64) -> bool {
    match observed.partial_cmp(&threshold) {
        Some(ordering) => op.holds(ordering),
        None => false,
    }
}

/// The name the audit reads for an aggregation or an operator (`last`, `lt`).
fn wire_name(v: impl Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A claim's `check`, with runs by index.
#[derive(Debug, Clone)]
pub enum Check {
    Metric {
        run: usize,
        metric: String,
        agg: Agg,
        op: Op,
        value: String,
    },
    Compare {
        metric: String,
        run: usize,
        baseline: usize,
        agg: Agg,
        op: Op,
        margin: String,
    },
    Kernel {
        kernel: &'static str,
        variant: Option<Value>,
        backend: Option<&'static str>,
    },
    Completed {
        run: usize,
    },
    /// `group`, `compare_groups` or `replicated`.
    Groups(GroupCheck),
}

impl Check {
    pub fn json(&self, runs: &[Run]) -> Value {
        match self {
            Check::Metric { run, metric, agg, op, value } => json!({
                "kind": "metric", "run": runs[*run].id, "metric": metric, "agg": agg,
                "op": op, "value": value,
            }),
            Check::Compare { metric, run, baseline, agg, op, margin } => json!({
                "kind": "compare", "metric": metric, "run": runs[*run].id,
                "baseline_run": runs[*baseline].id, "agg": agg, "op": op, "margin": margin,
            }),
            Check::Kernel { kernel, variant, backend } => {
                let mut v = json!({"kind": "kernel", "kernel": kernel, "expect": "pass"});
                if let Some(variant) = variant {
                    v["variant"] = variant.clone();
                }
                if let Some(b) = backend {
                    v["backend"] = json!(b);
                }
                v
            }
            Check::Completed { run } => json!({"kind": "completed", "run": runs[*run].id}),
            Check::Groups(g) => g.json(runs),
        }
    }

    /// The runs the check rests on (kernel checks: see [`Facts::kernel_runs`]).
    pub fn runs(&self, facts: &Facts) -> Vec<usize> {
        match self {
            Check::Metric { run, .. } | Check::Completed { run } => vec![*run],
            Check::Compare { run, baseline, .. } => vec![*run, *baseline],
            Check::Kernel { kernel, variant, backend } => {
                facts.kernel_runs(kernel, variant.as_ref(), *backend)
            }
            Check::Groups(g) => {
                let mut runs = g.runs();
                runs.sort_unstable();
                runs.dedup();
                runs
            }
        }
    }

    /// The statement as an author would write it.
    pub fn statement(&self, runs: &[Run]) -> String {
        match self {
            Check::Metric { run, metric, agg, op, value } => {
                let r = &runs[*run];
                let what = match agg {
                    Agg::Last => format!("final {metric}"),
                    Agg::Min => format!("best (lowest) {metric}"),
                    Agg::Max => format!("peak {metric}"),
                    Agg::Mean => format!("{metric} averaged over the run"),
                };
                format!(
                    "With {} (seed {}), the {what} is {} {value} ({}).",
                    r.config,
                    r.seed,
                    words(*op),
                    r.id
                )
            }
            Check::Compare { metric, run, baseline, agg, op, margin } => {
                let (r, b) = (&runs[*run], &runs[*baseline]);
                format!(
                    "{} improves on {}: {} {metric} of {} minus that of {} is {} {margin}.",
                    r.config,
                    b.config,
                    wire_name(agg),
                    r.id,
                    b.id,
                    words(*op)
                )
            }
            Check::Kernel { kernel, variant, backend } => {
                let on = backend.map_or("every backend".to_owned(), |b| format!("the {b} backend"));
                let which = variant.as_ref().map_or("every variant".to_owned(), |v| format!("variants {v}"));
                format!("{kernel} matches the f64 reference within tolerance on {on}, {which}.")
            }
            Check::Completed { run } => {
                let r = &runs[*run];
                format!("Run {} ({} seed {}) completed successfully.", r.id, r.config, r.seed)
            }
            Check::Groups(g) => g.statement(runs),
        }
    }
}

/// One claim to assert.
#[derive(Debug, Clone)]
pub struct ClaimPlan {
    pub slug: String,
    pub id: String,
    pub check: Check,
    pub statement: String,
    pub location: String,
    /// `evidence.captured` digests cited.
    pub evidence: Vec<String>,
    pub time: i64,
    /// First asserted (with nothing to cite) at this earlier time, before its runs started.
    pub registered_at: Option<i64>,
    pub author: usize,
    /// Withdrawn later, for this reason.
    pub withdraw: Option<&'static str>,
}

/// The facts claims are judged on: the runs as the simulation left them and every kernel
/// launch.
pub struct Facts<'a> {
    pub runs: &'a [Run],
    launches: Vec<(usize, &'a LaunchFact)>,
}

impl<'a> Facts<'a> {
    pub fn new(runs: &'a [Run]) -> Facts<'a> {
        let launches =
            runs.iter().enumerate().flat_map(|(i, r)| r.launches.iter().map(move |l| (i, l))).collect();
        Facts { runs, launches }
    }

    fn matching(
        &self,
        kernel: &str,
        variant: Option<&Value>,
        backend: Option<&str>,
    ) -> impl Iterator<Item = &(usize, &'a LaunchFact)> {
        self.launches.iter().filter(move |(_, l)| {
            l.kernel == kernel
                && backend.is_none_or(|b| b == l.backend)
                && variant
                    .and_then(Value::as_object)
                    .is_none_or(|want| want.iter().all(|(k, v)| l.variant.get(k) == Some(v)))
        })
    }

    pub fn kernel_runs(&self, kernel: &str, variant: Option<&Value>, backend: Option<&str>) -> Vec<usize> {
        let mut runs: Vec<usize> = self.matching(kernel, variant, backend).map(|(i, _)| *i).collect();
        runs.sort_unstable();
        runs.dedup();
        runs
    }

    /// (passed, failed, faulted) of the matching launches.
    pub fn kernel_counts(
        &self,
        kernel: &str,
        variant: Option<&Value>,
        backend: Option<&str>,
    ) -> (u64, u64, u64) {
        let mut c = (0, 0, 0);
        for (_, l) in self.matching(kernel, variant, backend) {
            if l.faulted {
                c.2 += 1;
            } else if l.passed {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        c
    }

    /// `agg` of the run's metric as it was logged.
    pub fn observed(&self, run: usize, metric: &str, agg: Agg) -> Option<f64> {
        aggregate(agg, &self.runs[run].series(metric)?.points)
    }

    /// Whether a check first asserted at `time` is preregistered: no run it names has
    /// started by then (a kernel check: no matching launch was ever recorded, as every
    /// launch the demo records comes before the claims about it).
    pub fn preregistered(&self, check: &Check, time: i64) -> bool {
        match check {
            Check::Kernel { kernel, variant, backend } => {
                self.kernel_counts(kernel, variant.as_ref(), *backend) == (0, 0, 0)
            }
            _ => check.runs(self).iter().all(|&r| self.runs[r].started.is_none_or(|s| s > time)),
        }
    }

    /// The verdict the audit should reach, with its reason codes.
    pub fn expect(&self, check: &Check, evidence: &[String]) -> (Verdict, Vec<String>) {
        let mut reasons: Vec<(Verdict, String)> = Vec::new();
        if evidence.is_empty() {
            reasons.push((Verdict::Unsupported, "evidence_missing".into()));
        }
        let require = |run: usize, completion: bool, reasons: &mut Vec<(Verdict, String)>| {
            let r = &self.runs[run];
            if r.finished.is_none() {
                reasons.push((Verdict::Unsupported, "run_not_finished".into()));
            } else {
                if r.quiesced.is_none() {
                    reasons.push((Verdict::Unsupported, "run_not_quiesced".into()));
                }
                if completion && !r.succeeded() {
                    reasons.push((Verdict::Contradicted, "run_failed".into()));
                }
            }
            if r.evidence.is_none() {
                reasons.push((Verdict::Unsupported, "run_without_evidence".into()));
            }
        };
        match check {
            Check::Metric { run, metric, agg, op, value } => {
                require(*run, false, &mut reasons);
                match (self.observed(*run, metric, *agg), value.parse::<f64>()) {
                    (Some(observed), Ok(threshold)) => {
                        if !holds(*op, observed, threshold) {
                            reasons.push((Verdict::Contradicted, "value_mismatch".into()));
                        }
                    }
                    _ => reasons.push((Verdict::Unsupported, "metric_missing".into())),
                }
            }
            Check::Compare { metric, run, baseline, agg, op, margin } => {
                require(*run, false, &mut reasons);
                require(*baseline, false, &mut reasons);
                match (self.observed(*run, metric, *agg), self.observed(*baseline, metric, *agg)) {
                    (Some(a), Some(b)) => {
                        if !holds(*op, a - b, margin.parse::<f64>().unwrap_or(f64::NAN)) {
                            reasons.push((Verdict::Contradicted, "value_mismatch".into()));
                        }
                    }
                    _ => reasons.push((Verdict::Unsupported, "metric_missing".into())),
                }
            }
            Check::Kernel { kernel, variant, backend } => {
                let (passed, failed, faulted) = self.kernel_counts(kernel, variant.as_ref(), *backend);
                if passed + failed + faulted == 0 {
                    reasons.push((Verdict::Unsupported, "kernel_missing".into()));
                }
                if failed > 0 {
                    reasons.push((Verdict::Contradicted, "kernel_failed".into()));
                }
                if faulted > 0 {
                    reasons.push((Verdict::Contradicted, "kernel_faulted".into()));
                }
            }
            Check::Completed { run } => require(*run, true, &mut reasons),
            Check::Groups(g) => {
                for run in g.runs() {
                    require(run, false, &mut reasons);
                }
                match g.fit(self.runs) {
                    None => reasons.push((Verdict::Unsupported, "metric_missing".into())),
                    Some(Fit::Inside) => {}
                    Some(Fit::Outside) => reasons.push((Verdict::Contradicted, "value_mismatch".into())),
                    Some(Fit::Straddles) => reasons.push((Verdict::Unsupported, "inconclusive".into())),
                }
            }
        }
        for run in check.runs(self) {
            if self.runs[run].tainted() {
                reasons.push((Verdict::Tainted, "xid_hardware_in_window".into()));
            }
        }
        let verdict = reasons.iter().map(|r| r.0).max().unwrap_or(Verdict::Supported);
        let mut codes: Vec<String> = reasons.into_iter().map(|r| r.1).collect();
        codes.sort();
        codes.dedup();
        (verdict, codes)
    }
}

/// A metric claim about `run` that holds (or, with `wrong`, misses by a clear margin).
pub fn metric_claim(facts: &Facts, run: usize, metric: &str, agg: Agg, wrong: bool) -> Option<Check> {
    let series = facts.runs[run].series(metric)?;
    let observed = aggregate(agg, &series.points)?;
    let better = series.def.better;
    let (op, value) = match (better, wrong) {
        (Better::Lower, false) => (Op::Lt, super::metrics::above(observed, 0.01)),
        (Better::Lower, true) => (Op::Lt, super::metrics::below(observed, 0.03)),
        (Better::Higher, false) => (Op::Gt, super::metrics::below(observed, 0.01)),
        (Better::Higher, true) => (Op::Ge, super::metrics::above(observed, 0.03)),
    };
    Some(Check::Metric { run, metric: metric.to_owned(), agg, op, value })
}

/// A compare claim of `run` against `baseline` that holds (or, with `wrong`, overstates the
/// gain).
pub fn compare_claim(
    facts: &Facts,
    run: usize,
    baseline: usize,
    metric: &str,
    agg: Agg,
    wrong: bool,
) -> Option<Check> {
    let better = facts.runs[run].series(metric)?.def.better;
    let a = facts.observed(run, metric, agg)?;
    let b = facts.observed(baseline, metric, agg)?;
    let delta = a - b;
    let (op, margin) = match (better, wrong) {
        (Better::Lower, false) => (Op::Le, super::metrics::above(delta, 0.25)),
        (Better::Lower, true) => {
            (Op::Le, super::metrics::below(delta - delta.abs().max(b.abs() * 0.01), 0.25))
        }
        (Better::Higher, false) => (Op::Ge, super::metrics::below(delta, 0.25)),
        (Better::Higher, true) => {
            (Op::Ge, super::metrics::above(delta + delta.abs().max(b.abs() * 0.01), 0.25))
        }
    };
    Some(Check::Compare { metric: metric.to_owned(), run, baseline, agg, op, margin })
}

/// Expected verdict counts, claim by claim, for the check against the ledger.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// (slug, claim) → (verdict, reason codes), for claims not withdrawn.
    pub claims: BTreeMap<(String, String), (Verdict, Vec<String>)>,
    /// The claims that are preregistered (every other one is post hoc).
    pub preregistered: BTreeSet<(String, String)>,
}

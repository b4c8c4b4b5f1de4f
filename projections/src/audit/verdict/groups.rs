//! Verdicts of the checks over groups of runs (`group`, `compare_groups`, `replicated`): the
//! rules are in the parent module's docs, the interval in [`crate::audit::bootstrap`].

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::Findings;
use crate::audit::Audit;
use crate::audit::bootstrap::{
    BootstrapError, Interval, Level, Relation, Stat, compare_interval, group_interval,
};
use crate::audit::checks::{Agg, Bounds, Check, GroupPair, aggregate};
use crate::decimal::Decimal;

/// Where an observed interval lies against a claimed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Wholly inside (touching a bound counts as inside).
    Inside,
    /// Wholly outside (touching a bound does not).
    Outside,
    /// Across a bound.
    Straddles,
}

/// `observed` against `claimed`, compared exactly as decimals. `None` if a side does not parse
/// (checks are parsed with their bounds known to) or the interval is not finite.
pub fn fit(observed: &Interval, claimed: &Bounds) -> Option<Fit> {
    let (a, b) = (Decimal::from_f64(observed.lo)?, Decimal::from_f64(observed.hi)?);
    let side = |s: &Option<String>| match s {
        None => Some(None),
        Some(t) => Decimal::parse(t).map(Some),
    };
    let (lo, hi) = (side(&claimed.lo)?, side(&claimed.hi)?);
    let outside = lo.as_ref().is_some_and(|lo| b.cmp(lo) == Ordering::Less)
        || hi.as_ref().is_some_and(|hi| a.cmp(hi) == Ordering::Greater);
    let inside = lo.as_ref().is_none_or(|lo| a.cmp(lo) != Ordering::Less)
        && hi.as_ref().is_none_or(|hi| b.cmp(hi) != Ordering::Greater);
    Some(if outside {
        Fit::Outside
    } else if inside {
        Fit::Inside
    } else {
        Fit::Straddles
    })
}

/// The fixed parts of a group comparison.
struct Spec<'a> {
    metric: &'a str,
    agg: Agg,
    stat: Stat,
    claimed: &'a Bounds,
    level: Level,
}

impl Audit {
    /// Judges a group check; returns the runs it rests on.
    pub(super) fn check_groups(&self, check: &Check, f: &mut Findings) -> BTreeSet<String> {
        let runs: BTreeSet<String> =
            check.named_runs().unwrap_or_default().into_iter().map(str::to_owned).collect();
        for run in &runs {
            self.require_run(run, false, f);
        }
        let (metric, agg, stat, claimed, level) = match check {
            Check::Group { metric, agg, stat, claimed, level, .. }
            | Check::CompareGroups { metric, agg, stat, claimed, level, .. }
            | Check::Replicated { metric, agg, stat, claimed, level, .. } => {
                (metric, agg, stat, claimed, level)
            }
            _ => return runs,
        };
        let Some(level) = Level::parse(level) else {
            f.reason("check_invalid");
            return runs;
        };
        let spec = Spec { metric, agg: *agg, stat: *stat, claimed, level };
        match check {
            Check::Group { runs: group, .. } => {
                let Some(values) = self.values(group, &spec, f) else { return runs };
                f.context(format!("n:{}", values.len()));
                f.context(format!("estimate:{}", spec.stat.of(&mut values.clone())));
                let result = group_interval(&values, spec.stat, spec.level);
                if let Some(fit) = observe(result, claimed, "", f) {
                    flag(fit, f);
                }
            }
            Check::CompareGroups { runs: a, baseline_runs: b, relation, .. } => {
                let pair = GroupPair { runs: a.clone(), baseline_runs: b.clone() };
                if let Some(fit) = self.compare(&pair, *relation, &spec, "", f) {
                    flag(fit, f);
                }
            }
            Check::Replicated { pairs, relation, .. } => {
                let mut fits = Vec::with_capacity(pairs.len());
                for (i, pair) in pairs.iter().enumerate() {
                    fits.push(self.compare(pair, *relation, &spec, &format!(" (pair {})", i + 1), f));
                }
                // Contradicted if any pair is; else inconclusive if any pair is. A pair with
                // no interval has already said why.
                if fits.contains(&Some(Fit::Outside)) {
                    flag(Fit::Outside, f);
                } else if fits.contains(&Some(Fit::Straddles)) {
                    flag(Fit::Straddles, f);
                }
            }
            _ => {}
        }
        runs
    }

    /// One comparison of a pair of groups; `None` when it has no interval (the reason is
    /// recorded).
    fn compare(
        &self,
        pair: &GroupPair,
        relation: Relation,
        spec: &Spec,
        label: &str,
        f: &mut Findings,
    ) -> Option<Fit> {
        let a = self.values(&pair.runs, spec, f);
        let b = self.values(&pair.baseline_runs, spec, f);
        let (a, b) = (a?, b?);
        f.context(format!("n:{}/{}{label}", a.len(), b.len()));
        let estimate = match relation {
            Relation::Difference => spec.stat.of(&mut a.clone()) - spec.stat.of(&mut b.clone()),
            Relation::Ratio => spec.stat.of(&mut a.clone()) / spec.stat.of(&mut b.clone()),
        };
        f.context(format!("estimate:{estimate}{label}"));
        observe(compare_interval(&a, &b, spec.stat, relation, spec.level), spec.claimed, label, f)
    }

    /// Each run's `agg(metric)` as binary64, in the order given; `None` (with
    /// `metric_missing:<run>` for each run lacking it) unless every run has the metric.
    fn values(&self, runs: &[String], spec: &Spec, f: &mut Findings) -> Option<Vec<f64>> {
        let mut values = Vec::with_capacity(runs.len());
        let mut missing = false;
        for run in runs {
            match aggregate(self.series(run, spec.metric), spec.agg) {
                Some(a) => values.push(a.as_f64()),
                None => {
                    f.reason(format!("metric_missing:{run}"));
                    missing = true;
                }
            }
        }
        (!missing).then_some(values)
    }
}

/// Records the interval as context, or why there is none; its fit to `claimed`.
fn observe(
    result: Result<Interval, BootstrapError>,
    claimed: &Bounds,
    label: &str,
    f: &mut Findings,
) -> Option<Fit> {
    match result {
        Ok(interval) => {
            f.context(format!("observed_interval:{}{label}", interval.display()));
            let fit = fit(&interval, claimed);
            if fit.is_none() {
                f.reason("check_invalid");
            }
            fit
        }
        Err(BootstrapError::NotFinite) => {
            f.reason("interval_undefined");
            None
        }
        Err(_) => {
            f.reason("check_invalid");
            None
        }
    }
}

fn flag(fit: Fit, f: &mut Findings) {
    match fit {
        Fit::Inside => {}
        Fit::Outside => f.reason("value_mismatch"),
        Fit::Straddles => f.reason("inconclusive"),
    }
}

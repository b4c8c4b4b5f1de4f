//! Claims over groups of runs (`group`, `compare_groups`, `replicated`): the checks, their
//! statements, and the demo's model of their verdicts. The model takes each run's aggregate as
//! the simulation logged it and asks the audit's own bootstrap
//! ([`assay_projections::audit::bootstrap`]) for the interval; claimed bounds are chosen to
//! clear that interval by a margin (or, for an inconclusive claim, to cut it well inside), so
//! the model and the audit's exact decimal comparison cannot disagree by rounding.

use assay_projections::audit::Agg;
use assay_projections::audit::bootstrap::{
    Interval, Level, Relation, Stat, compare_interval, group_interval,
};
use serde_json::{Value, json};

use super::metrics::{Better, above, below};
use super::runs::Run;

/// A claimed interval; a side left out is unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub lo: Option<String>,
    pub hi: Option<String>,
}

impl Claimed {
    fn json(&self) -> Value {
        let mut v = json!({});
        if let Some(lo) = &self.lo {
            v["lo"] = json!(lo);
        }
        if let Some(hi) = &self.hi {
            v["hi"] = json!(hi);
        }
        v
    }

    fn words(&self) -> String {
        match (&self.lo, &self.hi) {
            (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
            (Some(lo), None) => format!("at least {lo}"),
            (None, Some(hi)) => format!("at most {hi}"),
            (None, None) => "anything".into(),
        }
    }
}

/// Where the observed intervals lie against the claimed one (as the audit judges it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Inside,
    Outside,
    Straddles,
}

/// A check over groups of runs, with runs by index. The statistic is always the mean across
/// runs; comparisons are ratios (`"27–34% faster"`).
#[derive(Debug, Clone, PartialEq)]
pub enum GroupCheck {
    /// Mean across `runs` of each run's `agg(metric)`.
    Group { metric: String, agg: Agg, runs: Vec<usize>, claimed: Claimed },
    /// mean(runs) / mean(baseline).
    Ratio { metric: String, agg: Agg, runs: Vec<usize>, baseline: Vec<usize>, claimed: Claimed },
    /// The ratio in each (screening, confirmation) pair.
    Replicated { metric: String, agg: Agg, pairs: Vec<(Vec<usize>, Vec<usize>)>, claimed: Claimed },
}

fn ids(runs: &[Run], which: &[usize]) -> Vec<String> {
    which.iter().map(|&r| runs[r].id.clone()).collect()
}

impl GroupCheck {
    pub fn json(&self, runs: &[Run]) -> Value {
        match self {
            GroupCheck::Group { metric, agg, runs: group, claimed } => json!({
                "kind": "group", "metric": metric, "runs": ids(runs, group), "agg": agg,
                "stat": "mean", "claimed": claimed.json(),
            }),
            GroupCheck::Ratio { metric, agg, runs: group, baseline, claimed } => json!({
                "kind": "compare_groups", "metric": metric, "runs": ids(runs, group),
                "baseline_runs": ids(runs, baseline), "agg": agg, "stat": "mean", "as": "ratio",
                "claimed": claimed.json(),
            }),
            GroupCheck::Replicated { metric, agg, pairs, claimed } => json!({
                "kind": "replicated", "metric": metric, "agg": agg, "stat": "mean", "as": "ratio",
                "claimed": claimed.json(),
                "pairs": pairs.iter().map(|(a, b)| json!({"runs": ids(runs, a), "baseline_runs": ids(runs, b)})).collect::<Vec<_>>(),
            }),
        }
    }

    /// Every run the check names, in order.
    pub fn runs(&self) -> Vec<usize> {
        match self {
            GroupCheck::Group { runs, .. } => runs.clone(),
            GroupCheck::Ratio { runs, baseline, .. } => runs.iter().chain(baseline).copied().collect(),
            GroupCheck::Replicated { pairs, .. } => {
                pairs.iter().flat_map(|(a, b)| a.iter().chain(b)).copied().collect()
            }
        }
    }

    pub fn statement(&self, runs: &[Run]) -> String {
        let what = |metric: &str, agg: &Agg| match agg {
            Agg::Last => format!("final {metric}"),
            Agg::Min => format!("best (lowest) {metric}"),
            Agg::Max => format!("peak {metric}"),
            Agg::Mean => format!("run-averaged {metric}"),
        };
        let config = |group: &[usize]| group.first().map_or("", |&r| runs[r].config);
        match self {
            GroupCheck::Group { metric, agg, runs: group, claimed } => format!(
                "Across {} seeds of {} ({}), the mean {} is {}.",
                group.len(),
                config(group),
                ids(runs, group).join(", "),
                what(metric, agg),
                claimed.words()
            ),
            GroupCheck::Ratio { metric, agg, runs: group, baseline, claimed } => format!(
                "{} ({}) vs {} ({}): the ratio of mean {} is {}{}.",
                config(group),
                ids(runs, group).join(", "),
                config(baseline),
                ids(runs, baseline).join(", "),
                what(metric, agg),
                claimed.words(),
                percent(claimed)
            ),
            GroupCheck::Replicated { metric, agg, pairs, claimed } => format!(
                "{} beats {} in both screening and confirmation: in each of {} replications the ratio of mean {} is {}{}.",
                pairs.first().map_or("", |p| config(&p.0)),
                pairs.first().map_or("", |p| config(&p.1)),
                pairs.len(),
                what(metric, agg),
                claimed.words(),
                percent(claimed)
            ),
        }
    }

    /// The observed interval of each pair (one for `group` and `ratio`), from the runs as
    /// logged; `None` if a run lacks the metric.
    pub fn observed(&self, runs: &[Run]) -> Option<Vec<Interval>> {
        let values = |group: &[usize], metric: &str, agg: Agg| -> Option<Vec<f64>> {
            group.iter().map(|&r| super::metrics::aggregate(agg, &runs[r].series(metric)?.points)).collect()
        };
        let ratio = |a: &[usize], b: &[usize], metric: &str, agg: Agg| {
            let (a, b) = (values(a, metric, agg)?, values(b, metric, agg)?);
            compare_interval(&a, &b, Stat::Mean, Relation::Ratio, Level::DEFAULT).ok()
        };
        match self {
            GroupCheck::Group { metric, agg, runs: group, .. } => {
                Some(vec![group_interval(&values(group, metric, *agg)?, Stat::Mean, Level::DEFAULT).ok()?])
            }
            GroupCheck::Ratio { metric, agg, runs: group, baseline, .. } => {
                Some(vec![ratio(group, baseline, metric, *agg)?])
            }
            GroupCheck::Replicated { metric, agg, pairs, .. } => {
                pairs.iter().map(|(a, b)| ratio(a, b, metric, *agg)).collect()
            }
        }
    }

    /// The check with the claimed interval that makes it fit as `want` ([`claim_for`]).
    pub fn fitted(mut self, runs: &[Run], want: Fit, better: Better) -> Option<GroupCheck> {
        let claimed = claim_for(&self.observed(runs)?, want, better)?;
        match &mut self {
            GroupCheck::Group { claimed: c, .. }
            | GroupCheck::Ratio { claimed: c, .. }
            | GroupCheck::Replicated { claimed: c, .. } => *c = claimed,
        }
        Some(self)
    }

    fn claimed(&self) -> &Claimed {
        match self {
            GroupCheck::Group { claimed, .. }
            | GroupCheck::Ratio { claimed, .. }
            | GroupCheck::Replicated { claimed, .. } => claimed,
        }
    }

    /// The verdict's fit: outside if any pair is, else straddling if any pair does.
    pub fn fit(&self, runs: &[Run]) -> Option<Fit> {
        let claimed = self.claimed();
        let side = |s: &Option<String>| s.as_deref().map(|t| t.parse::<f64>().unwrap_or(f64::NAN));
        let (lo, hi) = (side(&claimed.lo), side(&claimed.hi));
        let fits: Vec<Fit> = self
            .observed(runs)?
            .iter()
            .map(|i| {
                if lo.is_some_and(|lo| i.hi < lo) || hi.is_some_and(|hi| i.lo > hi) {
                    Fit::Outside
                } else if lo.is_none_or(|lo| i.lo >= lo) && hi.is_none_or(|hi| i.hi <= hi) {
                    Fit::Inside
                } else {
                    Fit::Straddles
                }
            })
            .collect();
        Some(if fits.contains(&Fit::Outside) {
            Fit::Outside
        } else if fits.contains(&Fit::Straddles) {
            Fit::Straddles
        } else {
            Fit::Inside
        })
    }
}

/// `" (27–34% higher)"` for a claimed ratio interval with both sides, else nothing.
fn percent(c: &Claimed) -> String {
    let (Some(lo), Some(hi)) = (&c.lo, &c.hi) else { return String::new() };
    let (Ok(lo), Ok(hi)) = (lo.parse::<f64>(), hi.parse::<f64>()) else { return String::new() };
    let pct = |x: f64| ((x - 1.0) * 100.0).abs();
    if lo >= 1.0 {
        format!(" ({:.0}–{:.0}% higher)", pct(lo), pct(hi))
    } else if hi <= 1.0 {
        format!(" ({:.0}–{:.0}% lower)", pct(hi), pct(lo))
    } else {
        String::new()
    }
}

/// A claimed interval that makes `intervals` fit as `want`: inside with a margin; wholly
/// beyond them on the side an author would overstate (`better`); or cutting the widest one
/// with nothing beyond. `None` when no such bound can be stated (an inconclusive claim needs
/// an interval of some width).
pub fn claim_for(intervals: &[Interval], want: Fit, better: Better) -> Option<Claimed> {
    let lo = intervals.iter().map(|i| i.lo).fold(f64::INFINITY, f64::min);
    let hi = intervals.iter().map(|i| i.hi).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    Some(match (want, better) {
        (Fit::Inside, _) => Claimed { lo: Some(below(lo, 0.01)), hi: Some(above(hi, 0.01)) },
        (Fit::Outside, Better::Higher) => Claimed { lo: Some(above(hi, 0.03)), hi: Some(above(hi, 0.08)) },
        (Fit::Outside, Better::Lower) => Claimed { lo: Some(below(lo, 0.08)), hi: Some(below(lo, 0.03)) },
        // "at least x" with x above some pair's low end and below every pair's high end.
        (Fit::Straddles, Better::Higher) => {
            let top = intervals.iter().map(|i| i.hi).fold(f64::INFINITY, f64::min);
            Claimed { lo: Some(strictly_between(lo, top)?), hi: None }
        }
        (Fit::Straddles, Better::Lower) => {
            let bottom = intervals.iter().map(|i| i.lo).fold(f64::NEG_INFINITY, f64::max);
            Claimed { lo: None, hi: Some(strictly_between(bottom, hi)?) }
        }
    })
}

/// A short decimal well inside `(a, b)` (a quarter of the gap from either end at least).
fn strictly_between(a: f64, b: f64) -> Option<String> {
    let gap = b - a;
    // NaN or too narrow to cut well inside.
    if gap.is_nan() || gap <= a.abs().max(b.abs()) * 1e-9 {
        return None;
    }
    let mid = a + gap / 2.0;
    (0..=12).find_map(|d| {
        let text = format!("{mid:.d$}");
        let x: f64 = text.parse().ok()?;
        (x > a + gap / 4.0 && x < b - gap / 4.0).then_some(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_bounds_fit_as_wanted() {
        let is = [Interval { lo: 1.27, hi: 1.31 }, Interval { lo: 1.25, hi: 1.36 }];
        let check = |c: &Claimed, i: &Interval| {
            let lo = c.lo.as_deref().map(|t| t.parse::<f64>().unwrap());
            let hi = c.hi.as_deref().map(|t| t.parse::<f64>().unwrap());
            (lo, hi, *i)
        };
        let inside = claim_for(&is, Fit::Inside, Better::Higher).unwrap();
        for i in &is {
            let (lo, hi, i) = check(&inside, i);
            assert!(lo.unwrap() < i.lo && hi.unwrap() > i.hi, "{inside:?}");
        }
        let outside = claim_for(&is, Fit::Outside, Better::Lower).unwrap();
        assert!(outside.hi.unwrap().parse::<f64>().unwrap() < 1.25);
        let straddle = claim_for(&is, Fit::Straddles, Better::Higher).unwrap();
        let x: f64 = straddle.lo.unwrap().parse().unwrap();
        assert!(x > 1.25 && x < 1.31, "{x}");
        assert_eq!(claim_for(&[Interval { lo: 2.0, hi: 2.0 }], Fit::Straddles, Better::Lower), None);
        assert_eq!(
            percent(&Claimed { lo: Some("1.27".into()), hi: Some("1.34".into()) }),
            " (27–34% higher)"
        );
    }
}

//! Claim checks (`claim.asserted` `check`) and exact metric aggregation.
//!
//! See [`crate::decimal`] for the number rule: values are the shortest decimals of their
//! binary64, thresholds are exact, nothing is rounded, `eq` is exact.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::Value;

use crate::canon::canonical;
use crate::data::str_of;
use crate::decimal::Decimal;

use super::bootstrap::{GROUP_MAX, Level, Relation, Stat};

/// Pairs of a `replicated` check, at most (each pair is two bootstraps).
pub const PAIRS_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    /// The value at the highest step (latest seq on ties).
    Last,
    Min,
    Max,
    Mean,
}

impl Agg {
    pub fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "last" => Agg::Last,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "mean" => Agg::Mean,
            _ => return None,
        })
    }
}

/// `observed op threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "lt" => Op::Lt,
            "le" => Op::Le,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "eq" => Op::Eq,
            _ => return None,
        })
    }

    /// Whether `observed op threshold` holds, given `observed.cmp(threshold)`.
    pub fn holds(self, observed_vs_threshold: Ordering) -> bool {
        use Ordering::*;
        match self {
            Op::Lt => observed_vs_threshold == Less,
            Op::Le => observed_vs_threshold != Greater,
            Op::Gt => observed_vs_threshold == Greater,
            Op::Ge => observed_vs_threshold != Less,
            Op::Eq => observed_vs_threshold == Equal,
        }
    }
}

/// A parsed check. Decimal thresholds keep their text; they are known to parse.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Check {
    /// Holds iff `agg(metric over run) op value`.
    Metric { run: String, metric: String, agg: Agg, op: Op, value: String },
    /// Holds iff `(agg(run) − agg(baseline_run)) op margin`.
    Compare { metric: String, run: String, baseline_run: String, agg: Agg, op: Op, margin: String },
    /// Holds iff ≥1 completed launch matches, every matching launch passed, none faulted.
    Kernel {
        kernel: String,
        /// Keys sorted; a launch matches when every key given here is equal in its variant.
        variant: Option<Value>,
        backend: Option<String>,
    },
    /// Holds iff the run has a `run.finished` with exit code 0.
    Completed { run: String },
    /// Holds iff the bootstrap interval of `stat` over the runs' `agg(metric)` lies inside
    /// `claimed` ([`super::bootstrap`]).
    Group { metric: String, runs: Vec<String>, agg: Agg, stat: Stat, claimed: Bounds, level: String },
    /// Holds iff the interval of `stat(runs) − stat(baseline_runs)` (`difference`) or
    /// `stat(runs) / stat(baseline_runs)` (`ratio`) lies inside `claimed`.
    #[serde(rename = "compare_groups")]
    CompareGroups {
        metric: String,
        runs: Vec<String>,
        baseline_runs: Vec<String>,
        agg: Agg,
        stat: Stat,
        #[serde(rename = "as")]
        relation: Relation,
        claimed: Bounds,
        level: String,
    },
    /// Holds iff the comparison holds in every pair (e.g. screening and confirmation).
    Replicated {
        metric: String,
        agg: Agg,
        stat: Stat,
        #[serde(rename = "as")]
        relation: Relation,
        claimed: Bounds,
        level: String,
        pairs: Vec<GroupPair>,
    },
}

/// A claimed interval; a side left out is unbounded. Decimal texts known to parse, `lo ≤ hi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hi: Option<String>,
}

impl Bounds {
    /// At least one side, each a decimal, `lo ≤ hi`.
    fn parse(v: &Value) -> Option<Bounds> {
        let side = |k: &str| match v.get(k) {
            None => Some(None),
            Some(t) => t.as_str().filter(|t| Decimal::parse(t).is_some()).map(|t| Some(t.to_owned())),
        };
        let (lo, hi) = (side("lo")?, side("hi")?);
        let known = v.as_object()?.keys().all(|k| k == "lo" || k == "hi");
        let ordered = match (lo.as_deref().and_then(Decimal::parse), hi.as_deref().and_then(Decimal::parse)) {
            (Some(l), Some(h)) => l.cmp(&h) != Ordering::Greater,
            _ => true,
        };
        (known && ordered && (lo.is_some() || hi.is_some())).then_some(Bounds { lo, hi })
    }

    /// `[lo..hi]` with `-inf`/`inf` for an open side.
    pub fn display(&self) -> String {
        format!("{}..{}", self.lo.as_deref().unwrap_or("-inf"), self.hi.as_deref().unwrap_or("inf"))
    }
}

/// One (runs, baseline runs) pair of a `replicated` check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPair {
    pub runs: Vec<String>,
    pub baseline_runs: Vec<String>,
}

/// 1 to [`GROUP_MAX`] distinct run ids.
fn run_list(v: Option<&Value>) -> Option<Vec<String>> {
    let items = v?.as_array()?;
    if items.is_empty() || items.len() > GROUP_MAX {
        return None;
    }
    let runs: Vec<String> = items.iter().map(|r| r.as_str().map(str::to_owned)).collect::<Option<_>>()?;
    let distinct: std::collections::BTreeSet<&String> = runs.iter().collect();
    (distinct.len() == runs.len()).then_some(runs)
}

/// `level`, default `0.95`, known to parse.
fn level_of(v: &Value) -> Option<String> {
    match v.get("level") {
        None => Some("0.95".to_owned()),
        Some(l) => l.as_str().filter(|t| Level::parse(t).is_some()).map(str::to_owned),
    }
}

impl Check {
    /// Parses a `check` object; `None` if it is not one of the seven kinds, a threshold or
    /// bound is not a decimal, a claimed interval is empty or reversed, a level is not
    /// `0.d…`, or a group is empty, too large or names a run twice.
    pub fn parse(v: &Value) -> Option<Check> {
        let s = |k: &str| str_of(v, k).map(str::to_owned);
        let decimal = |k: &str| s(k).filter(|t| Decimal::parse(t).is_some());
        Some(match str_of(v, "kind")? {
            "metric" => Check::Metric {
                run: s("run")?,
                metric: s("metric")?,
                agg: Agg::parse(str_of(v, "agg")?)?,
                op: Op::parse(str_of(v, "op")?)?,
                value: decimal("value")?,
            },
            "compare" => Check::Compare {
                metric: s("metric")?,
                run: s("run")?,
                baseline_run: s("baseline_run")?,
                agg: Agg::parse(str_of(v, "agg")?)?,
                op: Op::parse(str_of(v, "op")?)?,
                margin: decimal("margin")?,
            },
            "kernel" => Check::Kernel {
                kernel: s("kernel")?,
                variant: v.get("variant").filter(|x| x.is_object()).map(canonical),
                backend: s("backend"),
            },
            "completed" => Check::Completed { run: s("run")? },
            "group" => Check::Group {
                metric: s("metric")?,
                runs: run_list(v.get("runs"))?,
                agg: Agg::parse(str_of(v, "agg")?)?,
                stat: Stat::parse(str_of(v, "stat")?)?,
                claimed: Bounds::parse(v.get("claimed")?)?,
                level: level_of(v)?,
            },
            "compare_groups" => Check::CompareGroups {
                metric: s("metric")?,
                runs: run_list(v.get("runs"))?,
                baseline_runs: run_list(v.get("baseline_runs"))?,
                agg: Agg::parse(str_of(v, "agg")?)?,
                stat: Stat::parse(str_of(v, "stat")?)?,
                relation: Relation::parse(str_of(v, "as")?)?,
                claimed: Bounds::parse(v.get("claimed")?)?,
                level: level_of(v)?,
            },
            "replicated" => {
                let pairs = v.get("pairs")?.as_array()?;
                if pairs.is_empty() || pairs.len() > PAIRS_MAX {
                    return None;
                }
                Check::Replicated {
                    metric: s("metric")?,
                    agg: Agg::parse(str_of(v, "agg")?)?,
                    stat: Stat::parse(str_of(v, "stat")?)?,
                    relation: Relation::parse(str_of(v, "as")?)?,
                    claimed: Bounds::parse(v.get("claimed")?)?,
                    level: level_of(v)?,
                    pairs: pairs
                        .iter()
                        .map(|p| {
                            Some(GroupPair {
                                runs: run_list(p.get("runs"))?,
                                baseline_runs: run_list(p.get("baseline_runs"))?,
                            })
                        })
                        .collect::<Option<_>>()?,
                }
            }
            _ => return None,
        })
    }

    /// The runs a check names, in the order it names them; `None` for a kernel check, whose
    /// runs are those of the matching launches.
    pub fn named_runs(&self) -> Option<Vec<&str>> {
        Some(match self {
            Check::Metric { run, .. } | Check::Completed { run } => vec![run],
            Check::Compare { run, baseline_run, .. } => vec![run, baseline_run],
            Check::Kernel { .. } => return None,
            Check::Group { runs, .. } => runs.iter().map(String::as_str).collect(),
            Check::CompareGroups { runs, baseline_runs, .. } => {
                runs.iter().chain(baseline_runs).map(String::as_str).collect()
            }
            Check::Replicated { pairs, .. } => {
                pairs.iter().flat_map(|p| p.runs.iter().chain(&p.baseline_runs)).map(String::as_str).collect()
            }
        })
    }

    /// The metric a check reads, if it reads one.
    pub fn metric(&self) -> Option<&str> {
        match self {
            Check::Metric { metric, .. }
            | Check::Compare { metric, .. }
            | Check::Group { metric, .. }
            | Check::CompareGroups { metric, .. }
            | Check::Replicated { metric, .. } => Some(metric),
            Check::Kernel { .. } | Check::Completed { .. } => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Check::Metric { .. } => "metric",
            Check::Compare { .. } => "compare",
            Check::Kernel { .. } => "kernel",
            Check::Completed { .. } => "completed",
            Check::Group { .. } => "group",
            Check::CompareGroups { .. } => "compare_groups",
            Check::Replicated { .. } => "replicated",
        }
    }
}

/// One `metric.recorded` value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricPoint {
    pub step: u64,
    pub seq: u64,
    pub value: f64,
}

/// An aggregate as an exact fraction `num / den` (`den` > 1 only for `mean`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub num: Decimal,
    pub den: u64,
}

impl Aggregate {
    /// `self.cmp(threshold)`, exactly.
    pub fn cmp_to(&self, threshold: &Decimal) -> Ordering {
        self.num.cmp(&threshold.mul_u64(self.den))
    }

    /// `(self − baseline).cmp(margin)`, exactly.
    pub fn delta_cmp_to(&self, baseline: &Aggregate, margin: &Decimal) -> Ordering {
        let lhs = self.num.mul_u64(baseline.den).sub(&baseline.num.mul_u64(self.den));
        lhs.cmp(&margin.mul_u64(self.den).mul_u64(baseline.den))
    }

    /// The value as binary64: the exact quotient rounded once (what group checks aggregate).
    pub fn as_f64(&self) -> f64 {
        self.num.to_f64_lossy() / self.den as f64
    }

    /// `num` for a single value, `num/den` for a mean (exact either way).
    pub fn display(&self) -> String {
        if self.den == 1 { self.num.to_string() } else { format!("{}/{}", self.num, self.den) }
    }
}

/// `agg` over `points`; `None` for an empty series.
pub fn aggregate(points: &[MetricPoint], agg: Agg) -> Option<Aggregate> {
    let single = |p: Option<&MetricPoint>| {
        p.and_then(|p| Decimal::from_f64(p.value)).map(|num| Aggregate { num, den: 1 })
    };
    match agg {
        Agg::Last => single(points.iter().max_by_key(|p| (p.step, p.seq))),
        // binary64 order agrees with the order of the shortest decimals.
        Agg::Min => single(points.iter().min_by(|a, b| a.value.total_cmp(&b.value))),
        Agg::Max => single(points.iter().max_by(|a, b| a.value.total_cmp(&b.value))),
        Agg::Mean => {
            if points.is_empty() {
                return None;
            }
            let mut sum = Decimal::zero();
            for p in points {
                sum = sum.add(&Decimal::from_f64(p.value)?);
            }
            Some(Aggregate { num: sum, den: points.len() as u64 })
        }
    }
}

/// A claim's variant matches a launch's when every key it names is equal (JSON equality).
pub fn variant_matches(wanted: Option<&Value>, launch: &Value) -> bool {
    let Some(Value::Object(wanted)) = wanted else { return true };
    wanted.iter().all(|(k, v)| launch.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pts(values: &[(u64, f64)]) -> Vec<MetricPoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, (step, value))| MetricPoint { step: *step, seq: i as u64, value: *value })
            .collect()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn aggregates() {
        let p = pts(&[(2, 3.0), (1, 0.1), (3, 0.2), (3, 0.25)]);
        assert_eq!(aggregate(&p, Agg::Last).unwrap().cmp_to(&dec("0.25")), Ordering::Equal);
        assert_eq!(aggregate(&p, Agg::Min).unwrap().cmp_to(&dec("0.1")), Ordering::Equal);
        assert_eq!(aggregate(&p, Agg::Max).unwrap().cmp_to(&dec("3")), Ordering::Equal);
        // (3 + 0.1 + 0.2 + 0.25) / 4 = 0.8875 exactly.
        assert_eq!(aggregate(&p, Agg::Mean).unwrap().cmp_to(&dec("0.8875")), Ordering::Equal);
        assert_eq!(aggregate(&[], Agg::Mean), None);
        // Float noise does not fool eq: f64 mean of 0.1 and 0.2 is 0.15000000000000002.
        let noisy = pts(&[(0, 0.1), (1, 0.2)]);
        assert!(Op::Eq.holds(aggregate(&noisy, Agg::Mean).unwrap().cmp_to(&dec("0.15"))));
    }

    #[test]
    fn deltas() {
        let a = aggregate(&pts(&[(0, 1600.5), (1, 1700.5)]), Agg::Mean).unwrap();
        let b = aggregate(&pts(&[(0, 100.0), (1, 150.0), (2, 50.0)]), Agg::Mean).unwrap();
        assert_eq!(a.delta_cmp_to(&b, &dec("1550.5")), Ordering::Equal);
        assert!(Op::Ge.holds(a.delta_cmp_to(&b, &dec("1500"))));
        assert!(!Op::Gt.holds(a.delta_cmp_to(&b, &dec("1550.5"))));
    }

    #[test]
    fn parse_checks() {
        let c = Check::parse(
            &json!({"kind": "metric", "run": "r", "metric": "m", "agg": "last", "op": "lt", "value": "1.9"}),
        );
        assert_eq!(c.map(|c| c.kind()), Some("metric"));
        assert_eq!(
            Check::parse(
                &json!({"kind": "metric", "run": "r", "metric": "m", "agg": "last", "op": "lt", "value": "x"})
            ),
            None
        );
        assert_eq!(Check::parse(&json!({"kind": "nope"})), None);
        let k = Check::parse(&json!({"kind": "kernel", "kernel": "k", "expect": "pass"})).unwrap();
        assert_eq!(k, Check::Kernel { kernel: "k".into(), variant: None, backend: None });
        assert!(variant_matches(Some(&json!({"dtype": "f32"})), &json!({"dtype": "f32", "n": 4})));
        assert!(!variant_matches(Some(&json!({"dtype": "f16"})), &json!({"dtype": "f32"})));
        assert!(!variant_matches(Some(&json!({"block": 128})), &json!({"dtype": "f32"})));
        assert!(variant_matches(None, &json!({})));
    }
}

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
}

impl Check {
    /// Parses a `check` object; `None` if it is not one of the four kinds or a threshold
    /// is not a decimal.
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
            _ => return None,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Check::Metric { .. } => "metric",
            Check::Compare { .. } => "compare",
            Check::Kernel { .. } => "kernel",
            Check::Completed { .. } => "completed",
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

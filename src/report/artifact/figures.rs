//! The figures of a claim: its metric's series per run (metric and compare checks, drawn by
//! the dashboard's line chart), or each run's aggregate by group with the statistic's observed
//! interval as a band beside the claimed bounds (group checks), as inline SVG.

use assay_projections::audit::checks::{Bounds, GroupPair, aggregate};
use assay_projections::audit::{Agg, Audit, Check};
use maud::{Markup, html};

use super::observed::Observed;
use crate::report::serde_name as name_of;
use crate::web::svg::{Axis, Scale, Series, f1, line_chart, number_ticks, span, tick_text};

/// Each run's value, by run.
pub type Dots = Vec<(String, f64)>;

/// A figure of a claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// A metric's values by step, one line per run.
    Series { title: String, metric: String, series: Vec<(String, Vec<(f64, f64)>)> },
    /// Each run's aggregate, one row per group; and, when known, the statistic's interval.
    Strip { title: String, rows: Vec<(String, Dots)>, band: Option<Band> },
}

/// The statistic's observed interval, its estimate, and the claimed bounds (unbounded sides
/// left out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub lo: f64,
    pub hi: f64,
    pub estimate: Option<f64>,
    pub claimed_lo: Option<f64>,
    pub claimed_hi: Option<f64>,
}

/// The figures of `check`, `observed` being its observed values by pair.
pub fn figures_of(audit: &Audit, check: &Check, observed: &[Observed]) -> Vec<Figure> {
    let series = |runs: &[&String], metric: &str| Figure::Series {
        title: format!("{metric} by step"),
        metric: metric.to_owned(),
        series: runs
            .iter()
            .map(|r| {
                ((*r).clone(), audit.series(r, metric).iter().map(|p| (p.step as f64, p.value)).collect())
            })
            .collect(),
    };
    let values = |runs: &[String], metric: &str, agg: Agg| -> Dots {
        runs.iter()
            .filter_map(|r| aggregate(audit.series(r, metric), agg).map(|a| (r.clone(), a.as_f64())))
            .collect()
    };
    match check {
        Check::Metric { run, metric, .. } => vec![series(&[run], metric)],
        Check::Compare { metric, run, baseline_run, .. } => vec![series(&[run, baseline_run], metric)],
        Check::Group { metric, runs, agg, stat, claimed, .. } => vec![Figure::Strip {
            title: format!("{}({metric}) per run, and the {} with its interval", name_of(agg), name_of(stat)),
            rows: vec![("runs".to_owned(), values(runs, metric, *agg))],
            band: band(observed.first(), claimed),
        }],
        Check::CompareGroups { metric, runs, baseline_runs, agg, stat, relation, claimed, .. } => {
            let pair = GroupPair { runs: runs.clone(), baseline_runs: baseline_runs.clone() };
            let what = (metric.as_str(), *agg, name_of(stat), name_of(relation));
            pair_figures(&pair, None, &what, claimed, observed.first(), &values)
        }
        Check::Replicated { metric, agg, stat, relation, claimed, pairs, .. } => {
            let what = (metric.as_str(), *agg, name_of(stat), name_of(relation));
            pairs
                .iter()
                .enumerate()
                .flat_map(|(i, pair)| {
                    let label = format!("pair {}", i + 1);
                    let seen = observed.iter().find(|o| o.pair.as_deref() == Some(label.as_str()));
                    pair_figures(pair, Some(&label), &what, claimed, seen, &values)
                })
                .collect()
        }
        Check::Kernel { .. } | Check::Completed { .. } => Vec::new(),
    }
}

/// A comparison's two figures: each group's per-run values, and the relation's interval.
fn pair_figures(
    pair: &GroupPair,
    label: Option<&str>,
    (metric, agg, stat, relation): &(&str, Agg, String, String),
    claimed: &Bounds,
    observed: Option<&Observed>,
    values: &dyn Fn(&[String], &str, Agg) -> Dots,
) -> Vec<Figure> {
    let of = label.map(|l| format!(" ({l})")).unwrap_or_default();
    vec![
        Figure::Strip {
            title: format!("{}({metric}) per run{of}", name_of(agg)),
            rows: vec![
                ("runs".to_owned(), values(&pair.runs, metric, *agg)),
                ("baseline".to_owned(), values(&pair.baseline_runs, metric, *agg)),
            ],
            band: None,
        },
        Figure::Strip {
            title: format!("{relation} of the {stat}s with its interval{of}"),
            rows: Vec::new(),
            band: band(observed, claimed),
        },
    ]
}

/// The band of an observed `lo..hi` interval (as the audit's context writes it).
fn band(observed: Option<&Observed>, claimed: &Bounds) -> Option<Band> {
    let o = observed?;
    let (lo, hi) = o.interval.as_deref()?.split_once("..")?;
    let side = |s: &Option<String>| s.as_deref().and_then(|t| t.parse::<f64>().ok());
    Some(Band {
        lo: lo.parse().ok()?,
        hi: hi.parse().ok()?,
        estimate: o.estimate.as_deref().and_then(|e| e.parse().ok()),
        claimed_lo: side(&claimed.lo),
        claimed_hi: side(&claimed.hi),
    })
}

const W: f64 = 640.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 16.0;
const ROW: f64 = 30.0;

/// The figure as inline SVG.
pub fn svg(figure: &Figure) -> Markup {
    match figure {
        Figure::Series { title, metric, series } => {
            let lines: Vec<Series> = series
                .iter()
                .map(|(name, points)| Series { name: name.as_str(), points: points.as_slice() })
                .collect();
            let x = Axis { label: "step", scale: Scale::Number };
            let y = Axis { label: metric, scale: Scale::Number };
            line_chart(title, &lines, &x, &y)
        }
        Figure::Strip { title, rows, band } => strip(title, rows, band.as_ref()),
    }
}

/// Dots per row on a shared value axis; the band row shades the interval, marks the estimate,
/// and draws the claimed bounds as dashed lines.
fn strip(title: &str, rows: &[(String, Dots)], band: Option<&Band>) -> Markup {
    let mut all: Vec<f64> = rows.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).collect();
    if let Some(b) = band {
        all.extend([Some(b.lo), Some(b.hi), b.estimate, b.claimed_lo, b.claimed_hi].into_iter().flatten());
    }
    let (lo, hi) = span(all.into_iter());
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let n_rows = rows.len() + usize::from(band.is_some());
    let height = 16.0 + ROW * n_rows as f64 + 28.0;
    let axis_y = height - 28.0;
    let px = |v: f64| LEFT + (v - lo) / (hi - lo) * (W - LEFT - RIGHT);
    let ticks = number_ticks(lo, hi);
    let step = match ticks.as_slice() {
        [a, b, ..] => b - a,
        _ => 1.0,
    };
    let row_y = |i: usize| 16.0 + ROW * i as f64 + ROW / 2.0;
    html! {
        svg.chart.strip viewBox={ "0 0 " (W) " " (height) } role="img" aria-label=(title) {
            title { (title) }
            @for t in &ticks {
                line.grid x1=(f1(px(*t))) y1="8" x2=(f1(px(*t))) y2=(axis_y) {}
                text.tick x=(f1(px(*t))) y=(axis_y + 16.0) text-anchor="middle" { (tick_text(*t, step)) }
            }
            line.axis x1=(LEFT) y1=(axis_y) x2=(W - RIGHT) y2=(axis_y) {}
            @for (i, (label, dots)) in rows.iter().enumerate() {
                text.tick x=(LEFT - 8.0) y=(f1(row_y(i) + 4.0)) text-anchor="end" { (label) }
                g.series.{ "s" (i) } data-row=(label) data-points=(dots.len()) {
                    @for (run, v) in dots {
                        circle cx=(f1(px(*v))) cy=(f1(row_y(i))) r="4" { title { (run) ": " (v) } }
                    }
                }
            }
            @if let Some(b) = band {
                @let y = row_y(rows.len());
                text.tick x=(LEFT - 8.0) y=(f1(y + 4.0)) text-anchor="end" { "interval" }
                rect.band x=(f1(px(b.lo))) y=(f1(y - 8.0)) width=(f1((px(b.hi) - px(b.lo)).max(1.0))) height="16"
                    data-lo=(b.lo) data-hi=(b.hi) {}
                @if let Some(e) = b.estimate {
                    line.estimate x1=(f1(px(e))) y1=(f1(y - 11.0)) x2=(f1(px(e))) y2=(f1(y + 11.0)) {}
                }
                @for bound in [b.claimed_lo, b.claimed_hi].into_iter().flatten() {
                    line.claimed x1=(f1(px(bound))) y1="8" x2=(f1(px(bound))) y2=(axis_y) data-bound=(bound) {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_the_observed_interval_against_the_claimed_bounds() {
        let observed = Observed {
            interval: Some("1.1..1.3".into()),
            estimate: Some("1.2".into()),
            ..Observed::default()
        };
        let claimed = Bounds { lo: Some("1".into()), hi: None };
        let b = band(Some(&observed), &claimed).expect("a band");
        assert_eq!(
            (b.lo, b.hi, b.estimate, b.claimed_lo, b.claimed_hi),
            (1.1, 1.3, Some(1.2), Some(1.0), None)
        );
        assert_eq!(band(Some(&Observed::default()), &claimed), None, "no interval, no band");

        let rows = vec![("runs".to_owned(), vec![("r-1".to_owned(), 1.15), ("r-2".to_owned(), 1.25)])];
        let figure = Figure::Strip { title: "t".into(), rows, band: Some(b) };
        let drawn = svg(&figure).into_string();
        assert_eq!(drawn.matches("<circle").count(), 2, "a dot per run");
        assert_eq!(drawn.matches("class=\"claimed\"").count(), 1, "the one claimed bound");
        assert!(drawn.contains("data-lo=\"1.1\" data-hi=\"1.3\""), "{drawn}");
        assert_eq!(drawn, svg(&figure).into_string(), "the same figure, the same bytes");
    }
}

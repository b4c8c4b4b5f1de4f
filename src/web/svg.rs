//! Server-rendered SVG charts: line charts with round ticks on both axes, horizontal bars,
//! and the downsampling that keeps every chart under [`POINTS_MAX`] points per line whatever
//! the ledger holds. Written with `maud` like the pages: names and labels are escaped by
//! construction. Every shape has an end tag (`line … {}` writes `<line …></line>`): maud
//! writes no `/>`, and inside `<svg>` an HTML parser keeps a shape without one open, so it
//! would swallow what follows it.

use maud::{Markup, html};

use super::layout::duration;

/// `v` with one decimal: coordinates in the charts' viewBox.
pub fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// Points drawn per series at most.
pub const POINTS_MAX: usize = 400;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;

/// At most `max` points of `points` (sorted by x): the first and last, and in between the
/// lowest and highest of each bucket, so spikes survive.
pub fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points.to_vec();
    }
    let inner = &points[1..points.len() - 1];
    let buckets = (max - 2) / 2;
    let mut out = Vec::with_capacity(max);
    out.push(points[0]);
    for b in 0..buckets {
        let lo = b * inner.len() / buckets;
        let hi = ((b + 1) * inner.len() / buckets).max(lo + 1).min(inner.len());
        let slice = &inner[lo..hi];
        let min = slice.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(i, _)| i);
        let max = slice.iter().enumerate().max_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(i, _)| i);
        if let (Some(i), Some(j)) = (min, max) {
            let (first, second) = if i <= j { (i, j) } else { (j, i) };
            out.push(slice[first]);
            if second != first {
                out.push(slice[second]);
            }
        }
    }
    out.push(points[points.len() - 1]);
    out
}

/// The finite range of `values` (`0..1` for none; one value widened by 1 each side).
pub fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    if lo == hi { (lo - 1.0, hi + 1.0) } else { (lo, hi) }
}

/// Ticks drawn per axis, about.
const TICKS: f64 = 5.0;

/// The smallest of 1, 2, 5 × 10ⁿ at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// Round ticks for numbers in `lo..=hi`: multiples of 1, 2 or 5 × 10ⁿ, about [`TICKS`].
pub fn number_ticks(lo: f64, hi: f64) -> Vec<f64> {
    ticks_every(lo, hi, nice_step((hi - lo) / TICKS))
}

/// Round ticks for seconds in `lo..=hi`: multiples of 1, 2, 5, 10, 15 or 30 s or min, of 1,
/// 2, 3, 6 or 12 h, or of days.
pub fn seconds_ticks(lo: f64, hi: f64) -> Vec<f64> {
    ticks_every(lo, hi, seconds_step((hi - lo) / TICKS))
}

/// The smallest round duration (seconds) at least `raw`.
pub fn seconds_step(raw: f64) -> f64 {
    const STEPS_S: [f64; 20] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0,
        21600.0, 43200.0, 86400.0, 172800.0, 604800.0,
    ];
    if raw < 1.0 {
        return nice_step(raw);
    }
    STEPS_S.into_iter().find(|s| *s >= raw).unwrap_or_else(|| (raw / 86400.0).ceil() * 86400.0)
}

/// The multiples of `step` in `lo..=hi` (at most 50).
fn ticks_every(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    if !(step > 0.0 && lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let first = (lo / step).ceil();
    (0..50).map(|i| (first + i as f64) * step).take_while(|t| *t <= hi + step * 1e-9).collect()
}

/// One line of a [`line_chart`]: its name (the legend says it) and its (x, y) points, sorted
/// by x.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
}

/// What an axis measures, which sets its ticks and how they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Plain numbers: ticks at 1, 2, 5 × 10ⁿ, written with the decimals the step needs.
    Number,
    /// Seconds: ticks at round durations, written as durations (`30 min`, `2 h`).
    Seconds,
}

impl Scale {
    fn ticks(self, lo: f64, hi: f64) -> Vec<f64> {
        match self {
            Scale::Number => number_ticks(lo, hi),
            Scale::Seconds => seconds_ticks(lo, hi),
        }
    }

    /// Tick `v` of ticks `step` apart.
    fn format(self, v: f64, step: f64) -> String {
        match self {
            Scale::Number => tick_text(v, step),
            Scale::Seconds if v <= 0.0 => "0".to_owned(),
            Scale::Seconds => duration(std::time::Duration::from_secs_f64(v)),
        }
    }
}

/// A tick value with as many decimals as ticks `step` apart need; an exponent for huge or
/// tiny values (`3e-4`, `1.5e9`).
pub fn tick_text(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let a = v.abs();
    if !(1e-3..1e9).contains(&a) {
        // As many mantissa digits as the step needs beside the value's magnitude.
        let digits = (a.log10().floor() - step.abs().log10().floor()).clamp(0.0, 6.0) as usize;
        let text = format!("{v:.digits$e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        return format!("{mantissa}e{exponent}");
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 9.0) as usize;
    format!("{v:.decimals$}")
}

/// A chart's axis: its label (with the unit) and its scale.
pub struct Axis<'a> {
    pub label: &'a str,
    pub scale: Scale,
}

/// A line chart of up to four series on shared axes, each downsampled to [`POINTS_MAX`],
/// with ticks and labels on both axes and a legend naming each line (lines differ in dash
/// as well as colour).
pub fn line_chart(title: &str, series: &[Series<'_>], x: &Axis<'_>, y: &Axis<'_>) -> Markup {
    let series = &series[..series.len().min(SERIES_MAX)];
    let drawn: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            downsample(s.points, POINTS_MAX)
                .into_iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect()
        })
        .collect();
    let (x0, x1) = span(drawn.iter().flatten().map(|p| p.0));
    let (y0, y1) = span(drawn.iter().flatten().map(|p| p.1));
    // The y range widened to round ticks, so the top and bottom lines are labelled.
    let step = nice_step((y1 - y0) / TICKS);
    let (y0, y1) = ((y0 / step).floor() * step, (y1 / step).ceil() * step);
    let px = |v: f64| LEFT + (v - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |v: f64| TOP + (1.0 - (v - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
    let total: usize = series.iter().map(|s| s.points.len()).sum();
    let names: Vec<&str> = series.iter().map(|s| s.name).collect();
    let label = format!("{title}: {} ({total} points)", names.join(", "));
    let bottom = H - BOTTOM;
    let y_ticks = y.scale.ticks(y0, y1);
    let y_step = tick_step(&y_ticks);
    let x_ticks = x.scale.ticks(x0, x1);
    let x_step = tick_step(&x_ticks);
    // Labels at the ends stay inside the frame.
    let anchor = |tx: f64| {
        if tx > W - RIGHT - 24.0 {
            "end"
        } else if tx < LEFT + 12.0 {
            "start"
        } else {
            "middle"
        }
    };
    let polyline = |points: &[(f64, f64)]| {
        points.iter().map(|(vx, vy)| format!("{:.1},{:.1}", px(*vx), py(*vy))).collect::<Vec<_>>().join(" ")
    };
    let (y_label_x, y_label_y) = (14.0, (TOP + bottom) / 2.0);
    html! {
        svg.chart.line viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label)
            data-points=(drawn.iter().map(Vec::len).sum::<usize>()) {
            title { (label) }
            // Grid lines and ticks.
            @for t in y_ticks {
                line.grid x1=(LEFT) y1=(f1(py(t))) x2=(W - RIGHT) y2=(f1(py(t))) {}
                text.tick.y x=(LEFT - 6.0) y=(f1(py(t) + 4.0)) text-anchor="end" {
                    (y.scale.format(t, y_step))
                }
            }
            @for t in x_ticks {
                line.axis x1=(f1(px(t))) y1=(bottom) x2=(f1(px(t))) y2=(bottom + 4.0) {}
                text.tick.x x=(f1(px(t))) y=(bottom + 16.0) text-anchor=(anchor(px(t))) {
                    (x.scale.format(t, x_step))
                }
            }
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(bottom) {}
            line.axis x1=(LEFT) y1=(bottom) x2=(W - RIGHT) y2=(bottom) {}
            text.axis-label.x x=((LEFT + W - RIGHT) / 2.0) y=(H - 4.0) text-anchor="middle" { (x.label) }
            text.axis-label.y x=(y_label_x) y=(y_label_y) text-anchor="middle"
                transform={ "rotate(-90 " (y_label_x) " " (y_label_y) ")" } { (y.label) }
            @for (i, (s, points)) in series.iter().zip(&drawn).enumerate() {
                g.series.{ "s" (i) } data-series=(s.name) data-points=(points.len()) {
                    @if let [(vx, vy)] = points.as_slice() {
                        circle cx=(f1(px(*vx))) cy=(f1(py(*vy))) r="3" {}
                    } @else if !points.is_empty() {
                        polyline points=(polyline(points)) {}
                    }
                }
            }
            // The legend, top right, when there is more than one line.
            @if series.len() > 1 {
                @for (i, s) in series.iter().enumerate() {
                    @let (lx, ly) = (W - RIGHT - 150.0, TOP + 4.0 + 14.0 * i as f64);
                    g.legend.series.{ "s" (i) } {
                        line x1=(lx) y1=(ly) x2=(lx + 22.0) y2=(ly) {}
                        text.tick x=(lx + 28.0) y=(ly + 4.0) { (s.name) }
                    }
                }
            }
        }
    }
}

/// The distance between ticks (1 when there are fewer than two).
fn tick_step(ticks: &[f64]) -> f64 {
    match ticks {
        [a, b, ..] => b - a,
        _ => 1.0,
    }
}

/// Lines drawn on one chart at most.
pub const SERIES_MAX: usize = 4;

/// One bar of [`bars`]: label, value, CSS class.
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: u64,
    pub class: &'a str,
}

/// Horizontal bars, each labelled with its name and count.
pub fn bars(title: &str, items: &[Bar<'_>]) -> Markup {
    let row = 26.0;
    let height = row * items.len() as f64 + 8.0;
    let max = items.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let (label_w, width) = (120.0, 480.0);
    html! {
        svg.chart.bars viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(title) {
            title { (title) }
            @for (i, b) in items.iter().enumerate() {
                @let y = 4.0 + row * i as f64;
                @let w = (b.value as f64 / max) * (width - label_w - 60.0);
                text.tick x=(label_w - 8.0) y=(y + 15.0) text-anchor="end" { (b.label) }
                rect class=(b.class) x=(label_w) y=(y) width=(f1(w)) height=(row - 8.0)
                    data-value=(b.value) {}
                text.tick x=(f1(label_w + w + 6.0)) y=(y + 15.0) { (b.value) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_ends_and_spikes_within_the_cap() {
        let mut points: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, 1.0)).collect();
        points[5_000].1 = 100.0;
        let d = downsample(&points, 100);
        assert!(d.len() <= 100, "{}", d.len());
        assert_eq!(d.first(), points.first());
        assert_eq!(d.last(), points.last());
        assert!(d.iter().any(|p| p.1 == 100.0), "the spike survives");
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0), "x stays sorted");
    }

    #[test]
    fn small_series_are_drawn_whole() {
        let points = vec![(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(downsample(&points, 100), points);
    }

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(number_ticks(0.0, 1000.0), vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(number_ticks(1.83, 2.61), vec![2.0, 2.2, 2.4000000000000004, 2.6]);
        assert_eq!(seconds_ticks(0.0, 3.0 * 3600.0), vec![0.0, 3600.0, 7200.0, 10800.0]);
        assert_eq!(seconds_step(400.0), 600.0);
        assert!(number_ticks(0.0, f64::NAN).is_empty());
    }

    #[test]
    fn tick_text_has_the_decimals_its_step_needs() {
        assert_eq!(tick_text(2.4000000000000004, 0.2), "2.4");
        assert_eq!(tick_text(2000.0, 500.0), "2000");
        assert_eq!(tick_text(3e-4, 1e-4), "3e-4");
        assert_eq!(tick_text(2.5e-4, 5e-5), "2.5e-4");
        assert_eq!(tick_text(1.5e9, 5e8), "1.5e9");
        assert_eq!(tick_text(0.0, 1.0), "0");
        assert_eq!(Scale::Seconds.format(5400.0, 1800.0), "1 h 30 min");
    }

    #[test]
    fn a_chart_has_ticks_labels_and_a_legend() {
        let train = [(0.0, 3.0), (500.0, 2.5), (1000.0, 2.0)];
        let val = [(0.0, 3.1), (1000.0, 2.2)];
        let x = Axis { label: "step", scale: Scale::Number };
        let y = Axis { label: "loss (nats)", scale: Scale::Number };
        let svg = line_chart(
            "loss",
            &[Series { name: "train/loss", points: &train }, Series { name: "val/<loss>", points: &val }],
            &x,
            &y,
        )
        .into_string();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains(r#"data-series="val/&lt;loss&gt;""#), "names are escaped: {svg}");
        assert!(svg.matches(r#"class="tick x""#).count() >= 3, "{svg}");
        assert!(svg.matches(r#"class="tick y""#).count() >= 3, "{svg}");
        assert!(svg.contains(">loss (nats)</text>"), "{svg}");
        assert_eq!(svg.matches(r#"class="legend series"#).count(), 2, "{svg}");
    }
}

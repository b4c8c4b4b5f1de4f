//! Server-rendered SVG charts: line charts, horizontal bars, and the downsampling that keeps
//! every chart under [`POINTS_MAX`] points whatever the ledger holds.

use std::fmt::Write;

use super::layout::{esc, num};

/// Points drawn per series at most.
pub const POINTS_MAX: usize = 400;

const W: f64 = 640.0;
const H: f64 = 200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

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

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    if lo == hi { (lo - 1.0, hi + 1.0) } else { (lo, hi) }
}

/// A line chart of `points` (x, y), downsampled; `x_label` names the x axis and `format_x`
/// writes its end values. `total` is the number of points before downsampling (said in the
/// caption when some were dropped).
pub fn line_chart(
    title: &str,
    x_label: &str,
    points: &[(f64, f64)],
    format_x: &dyn Fn(f64) -> String,
) -> String {
    let drawn = downsample(points, POINTS_MAX);
    let (x0, x1) = span(drawn.iter().map(|p| p.0));
    let (y0, y1) = span(drawn.iter().map(|p| p.1));
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (1.0 - (y - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
    let mut path = String::new();
    for (x, y) in drawn.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
        let _ = write!(path, "{:.1},{:.1} ", px(*x), py(*y));
    }
    let mut out = format!(
        r#"<svg class="chart line" viewBox="0 0 {W} {H}" role="img" aria-label="{label}" data-points="{n}"><title>{label}</title>"#,
        label = esc(&format!("{title}: {} points", points.len())),
        n = drawn.len(),
    );
    // Axes, with the extreme values as labels.
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}"/><line class="axis" x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}"/>"#,
        b = H - BOTTOM,
        r = W - RIGHT,
    );
    let _ = write!(
        out,
        r#"<text class="tick" x="{tx}" y="{t}" text-anchor="end">{hi}</text><text class="tick" x="{tx}" y="{b}" text-anchor="end">{lo}</text>"#,
        tx = LEFT - 6.0,
        t = TOP + 10.0,
        b = H - BOTTOM,
        hi = esc(&num(y1)),
        lo = esc(&num(y0)),
    );
    let _ = write!(
        out,
        r#"<text class="tick" x="{LEFT}" y="{y}">{a}</text><text class="tick" x="{r}" y="{y}" text-anchor="end">{b}</text><text class="tick" x="{m}" y="{y}" text-anchor="middle">{x_label}</text>"#,
        y = H - 8.0,
        r = W - RIGHT,
        m = (LEFT + W - RIGHT) / 2.0,
        a = esc(&format_x(x0)),
        b = esc(&format_x(x1)),
        x_label = esc(x_label),
    );
    if drawn.len() == 1 {
        let (x, y) = drawn[0];
        let _ = write!(out, r#"<circle class="series" cx="{:.1}" cy="{:.1}" r="3"/>"#, px(x), py(y));
    } else {
        let _ = write!(out, r#"<polyline class="series" points="{}"/>"#, path.trim_end());
    }
    out.push_str("</svg>");
    out
}

/// One bar of [`bars`]: label, value, CSS class.
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: u64,
    pub class: &'a str,
}

/// Horizontal bars, each labelled with its name and count.
pub fn bars(title: &str, items: &[Bar<'_>]) -> String {
    let row = 26.0;
    let height = row * items.len() as f64 + 8.0;
    let max = items.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let (label_w, width) = (120.0, 480.0);
    let mut out = format!(
        r#"<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title),
    );
    for (i, b) in items.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = (b.value as f64 / max) * (width - label_w - 60.0);
        let _ = write!(
            out,
            r#"<text class="tick" x="{lx}" y="{ty}" text-anchor="end">{label}</text><rect class="{class}" x="{label_w}" y="{y}" width="{w:.1}" height="{h}" data-value="{v}"/><text class="tick" x="{vx:.1}" y="{ty}">{v}</text>"#,
            lx = label_w - 8.0,
            ty = y + 15.0,
            label = esc(b.label),
            class = esc(b.class),
            h = row - 8.0,
            v = b.value,
            vx = label_w + w + 6.0,
        );
    }
    out.push_str("</svg>");
    out
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
        assert!(line_chart("loss", "step", &points, &|x| num(x)).contains("<polyline"));
    }
}

//! `/gpus`: per device (host and PCI id: nodes of one model share bus ids) the last telemetry
//! sample and whether it needs a reset, a timeline of its recent Xids coloured and labelled by
//! class, and the hosts' preflights (the `gpus` projection `GET /v1/gpus` serves). Events
//! recorded without a host are shown under "any host": they count for that PCI id on every
//! host.

use assay_projections::gpus::{Device, GpuKey, XidEvent};
use assay_projections::xid_class::XidClass;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{
    Nav, badge_word, bytes, duration, gpus_need_reset, link, num, or_dash, parse_time_ns, query, thead,
    time_ns, time_text,
};
use super::page::{Page, PageResult, TABLE_MAX, Viewer, first_of};
use super::svg::{f1, seconds_step};
use crate::http::state::AppState;

const CLASSES: [XidClass; 6] = [
    XidClass::Hardware,
    XidClass::Nvlink,
    XidClass::Driver,
    XidClass::Application,
    XidClass::Informational,
    XidClass::Unknown,
];

/// What a device's host reads as: events without a host may come from any host.
fn host_text(key: &GpuKey) -> &str {
    key.host.as_deref().unwrap_or("any host")
}

/// GPUs drawn on the Xid timeline at most (the table lists them all).
const TIMELINE_ROWS_MAX: usize = 100;

/// Marks closer than this (px) on one row are drawn as one mark with their count.
const BURST_PX: f64 = 16.0;

/// Xids of one row drawn as one mark: a single Xid, or a burst of them.
struct Mark<'a> {
    xids: Vec<(i64, &'a XidEvent)>,
}

impl Mark<'_> {
    /// The class drawn: the first of [`CLASSES`] (the worst) among its Xids.
    fn class(&self) -> XidClass {
        CLASSES
            .into_iter()
            .find(|c| self.xids.iter().any(|(_, x)| x.class == *c))
            .unwrap_or(XidClass::Unknown)
    }

    /// Distinct codes, in order of first appearance.
    fn codes(&self) -> Vec<u32> {
        let mut codes: Vec<u32> = Vec::new();
        for (_, x) in &self.xids {
            if !codes.contains(&x.code) {
                codes.push(x.code);
            }
        }
        codes
    }

    /// The label beside the mark: the code, or for a burst its codes (up to 3) and count.
    fn label(&self) -> String {
        let codes = self.codes();
        if self.xids.len() == 1 {
            return codes[0].to_string();
        }
        let shown: Vec<String> = codes.iter().take(3).map(u32::to_string).collect();
        let more = if codes.len() > 3 { "/…" } else { "" };
        format!("{}{more} ×{}", shown.join("/"), self.xids.len())
    }

    /// The tooltip: every Xid of the mark (at most [`assay_projections::gpus::RECENT_XIDS`]).
    fn title(&self) -> String {
        let line = |x: &XidEvent| {
            format!(
                "Xid {} ({}, {}) at {}: {}",
                x.code,
                x.class.as_str(),
                x.action,
                time_text(&x.time),
                x.message
            )
        };
        match self.xids.as_slice() {
            [(_, x)] => line(x),
            xids => {
                let (first, last) = (xids[0].0, xids[xids.len() - 1].0);
                let mut out = format!(
                    "{} Xids in {} ({} to {}):",
                    xids.len(),
                    duration(std::time::Duration::from_nanos((last - first).max(0) as u64)),
                    time_ns(first),
                    time_ns(last)
                );
                for (_, x) in xids {
                    out.push('\n');
                    out.push_str(&line(x));
                }
                out
            }
        }
    }
}

/// The tick labels of a time axis whose ticks are `step_s` apart over `range_s`.
fn time_label(t_ns: i64, step_s: f64, range_s: f64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(t_ns);
    let format = if step_s >= 86_400.0 {
        "%b %d"
    } else if range_s > 86_400.0 {
        "%b %d %H:%M"
    } else {
        "%H:%M"
    };
    t.format(format).to_string()
}

/// The Xid timeline: one row per device (host, PCI id) with Xids, x = the producers' event
/// time, with a UTC time axis of round ticks. Xids closer than [`BURST_PX`] on a row are one
/// mark labelled with their count, so a burst reads as a number instead of overprinted marks.
fn xid_timeline(devices: &[(&GpuKey, &Device)]) -> Markup {
    let rows: Vec<(&GpuKey, Vec<(i64, &XidEvent)>)> = devices
        .iter()
        .filter(|(_, d)| !d.xids.recent.is_empty())
        .take(TIMELINE_ROWS_MAX)
        .map(|(pci, d)| {
            let mut xs: Vec<(i64, &XidEvent)> =
                d.xids.recent.iter().filter_map(|x| Some((parse_time_ns(&x.time)?, x))).collect();
            xs.sort_by_key(|(t, x)| (*t, x.seq));
            (*pci, xs)
        })
        .collect();
    let times = rows.iter().flat_map(|(_, xs)| xs.iter().map(|(t, _)| *t));
    let (t0, t1) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    if rows.is_empty() || t0 > t1 {
        return html! { p #xid-timeline-empty { "No Xid recorded." } };
    }
    // An hour either side of a single instant; 2 % of the span either side otherwise, so the
    // first and last marks are not cut by the frame.
    let pad = if t0 == t1 { 3_600_000_000_000 } else { ((t1 - t0) / 50).max(1) };
    let (t0, t1) = (t0 - pad, t1 + pad);
    let (left, right, row_h, top) = (150.0, 20.0, 44.0, 10.0);
    let width = 900.0;
    let legend_h = 30.0;
    let axis_h = 44.0;
    let height = top + row_h * rows.len() as f64 + axis_h + legend_h;
    let x = |t: i64| left + (t - t0) as f64 / (t1 - t0) as f64 * (width - left - right);
    // The time axis: round UTC ticks with a grid line each.
    let axis_y = top + row_h * rows.len() as f64;
    let range_s = (t1 - t0) as f64 / 1e9;
    let step_s = seconds_step(range_s / 8.0);
    let step_ns = (step_s * 1e9) as i64;
    let first = t0.div_euclid(step_ns) * step_ns + step_ns;
    let ticks: Vec<i64> = (0..60).map(|i| first + i * step_ns).take_while(|t| *t <= t1).collect();
    // The legend: the class name beside each mark.
    let ly = axis_y + axis_h + 14.0;
    html! {
        svg #xid-timeline.chart.timeline viewBox={ "0 0 " (width) " " (height) } role="img"
            aria-label="Xid timeline per GPU" {
            title { "Xid timeline per GPU, by class" }
            @for tick in ticks {
                @let tx = f1(x(tick));
                line.grid x1=(tx) y1=(top) x2=(tx) y2=(axis_y) {}
                line.axis x1=(tx) y1=(axis_y) x2=(tx) y2=(axis_y + 4.0) {}
                text.tick.time x=(tx) y=(axis_y + 16.0) text-anchor="middle" {
                    (time_label(tick, step_s, range_s))
                }
            }
            line.axis x1=(left) y1=(axis_y) x2=(width - right) y2=(axis_y) {}
            text.axis-label x=((left + width - right) / 2.0) y=(axis_y + 34.0) text-anchor="middle" {
                "time (UTC), " (time_ns(t0 + pad)) " to " (time_ns(t1 - pad))
            }
            @for (i, (key, xs)) in rows.iter().enumerate() {
                @let y = top + row_h * i as f64 + row_h / 2.0;
                (xid_row(key, xs, y, &x, left, width - right))
            }
            @for (i, class) in CLASSES.iter().enumerate() {
                @let lx = left + 130.0 * i as f64;
                g.legend.{ "x-" (class.as_str()) } {
                    @if class.taints() {
                        rect x=(lx) y=(ly - 9.0) width="10" height="10" {}
                    } @else {
                        circle cx=(lx + 5.0) cy=(ly - 4.0) r="5" {}
                    }
                    text.tick x=(lx + 14.0) y=(ly) { (class.as_str()) }
                }
            }
        }
    }
}

/// One device's row of the timeline at height `y`: its name, and its Xids as marks (`x` maps
/// a time to the row's `left..right`).
fn xid_row(
    key: &GpuKey,
    xs: &[(i64, &XidEvent)],
    y: f64,
    x: &dyn Fn(i64) -> f64,
    left: f64,
    right: f64,
) -> Markup {
    // Bursts: Xids within BURST_PX of the first of a mark join it.
    let mut marks: Vec<Mark<'_>> = Vec::new();
    for (t, xid) in xs {
        match marks.last_mut() {
            Some(m) if x(*t) - x(m.xids[0].0) < BURST_PX => m.xids.push((*t, xid)),
            _ => marks.push(Mark { xids: vec![(*t, xid)] }),
        }
    }
    // A label too close to the one before goes below its mark, so neither hides the other.
    let mut last: Option<(f64, bool)> = None;
    let placed: Vec<(&Mark<'_>, f64, bool)> = marks
        .iter()
        .map(|mark| {
            let (ta, tb) = (mark.xids[0].0, mark.xids[mark.xids.len() - 1].0);
            let cx = (x(ta) + x(tb)) / 2.0;
            let below = matches!(last, Some((lx, lb)) if cx - lx < 40.0 && !lb);
            last = Some((cx, below));
            (mark, cx, below)
        })
        .collect();
    let lx = left - 8.0;
    html! {
        // The host above the PCI id: together they name the GPU.
        g.xid-row data-host=(key.host.as_deref().unwrap_or("")) data-pci=(key.pci) data-xids=(xs.len()) {
            text.tick x=(lx) y=(y) text-anchor="end" {
                tspan x=(lx) dy="-3" { (host_text(key)) }
                tspan x=(lx) dy="12" { (key.pci) }
            }
            line.grid x1=(left) y1=(y) x2=(right) y2=(y) {}
        }
        @for (mark, cx, below) in placed {
            (xid_mark(mark, cx, y, below, left, right))
        }
    }
}

/// One mark of the timeline, centred at (`cx`, `y`), its label above it or `below`.
fn xid_mark(mark: &Mark<'_>, cx: f64, y: f64, below: bool, left: f64, right: f64) -> Markup {
    let class = mark.class();
    let n = mark.xids.len();
    // Bursts are drawn larger; classes that taint a run as squares, the rest circles.
    let r = if n > 1 { 7.0 } else { 5.0 };
    let codes: Vec<String> = mark.codes().iter().map(u32::to_string).collect();
    // Labels near the ends of the row stay off the GPU's name and inside the frame.
    let (anchor, lx) = if cx < left + 40.0 {
        ("start", cx - r)
    } else if cx > right - 40.0 {
        ("end", cx + r)
    } else {
        ("middle", cx)
    };
    let ty = if below { y + r + 12.0 } else { y - r - 4.0 };
    html! {
        g.xid.{ "x-" (class.as_str()) } data-count=(n) data-codes=(codes.join(","))
            data-class=(class.as_str()) {
            title { (mark.title()) }
            @if class.taints() {
                rect x=(f1(cx - r)) y=(f1(y - r)) width=(2.0 * r) height=(2.0 * r) {}
            } @else {
                circle cx=(f1(cx)) cy=(f1(y)) r=(r) {}
            }
            text.code x=(f1(lx)) y=(f1(ty)) text-anchor=(anchor) { (mark.label()) }
        }
    }
}

pub async fn page(viewer: Viewer, State(state): State<AppState>) -> Response {
    viewer.show(gpus(&state))
}

fn gpus(state: &AppState) -> PageResult {
    let p = state.live.read();
    let gpus = &p.gpus;
    let devices: Vec<(&GpuKey, &Device)> = gpus.devices().iter().take(TABLE_MAX).collect();
    let needing: Vec<String> =
        gpus.needing_reset().map(|(k, _)| format!("{} on {}", k.pci, host_text(k))).collect();
    let n = needing.len();
    let mut recent: Vec<(&GpuKey, &XidEvent)> =
        devices.iter().flat_map(|(key, d)| d.xids.recent.iter().map(move |x| (*key, x))).collect();
    recent.sort_by_key(|(_, x)| std::cmp::Reverse(x.seq));
    let recent_total = recent.len();
    recent.truncate(TABLE_MAX);
    let body = html! {
        h1 { "GPUs" }
        @if needing.is_empty() {
            p.banner.ok #needs-reset { "No GPU needs a reset." }
        } @else {
            p.banner.bad #needs-reset {
                strong { (gpus_need_reset(n)) ":" }
                " " (needing.join(", "))
            }
        }
        table #devices {
            (thead(&[
                "host",
                "GPU (PCI)",
                "name",
                "temp",
                "power",
                "util",
                "memory used",
                "clocks",
                "throttle",
                "sampled",
                "Xids",
                "reset",
            ]))
            tbody { @for (key, d) in &devices { (device_row(key, d)) } }
        }
        (first_of(devices.len(), gpus.devices().len(), "GPUs"))
        @if devices.is_empty() { p { "No GPU has reported yet." } }
        h2 { "Xid timeline" }
        p.note {
            "The latest Xids of each GPU (up to 32 per device), by the time the producer saw them. "
            "Squares are classes that taint a run inside its window (hardware, NVLink); Xids close "
            "together are one larger mark labelled with their codes and count (×N). Hover a mark for "
            "its messages."
        }
        (xid_timeline(&devices))
        @if !recent.is_empty() {
            h2 { "Recent Xids" }
            table #xids {
                (thead(&[
                    "time", "host", "GPU", "code", "class", "action", "process", "message", "source", "record"
                ]))
                tbody {
                    @for (key, x) in &recent {
                        tr {
                            td { (time_text(&x.time)) }
                            td { (host_text(key)) }
                            td.mono { (key.pci) }
                            td.num { (x.code) }
                            td { span.xclass.{ "x-" (x.class.as_str()) } { (x.class.as_str()) } }
                            td { (x.action) }
                            td {
                                @match (&x.process, x.pid) {
                                    (Some(p), Some(pid)) => { (p) " (" (pid) ")" },
                                    (Some(p), None) => (p),
                                    (None, Some(pid)) => (pid),
                                    (None, None) => "—",
                                }
                            }
                            td.reasons { (x.message) }
                            td { (x.source) }
                            td.num { (x.seq) }
                        }
                    }
                }
            }
            (first_of(TABLE_MAX, recent_total, "recent Xids"))
        }
        h2 { "Hosts" }
        table #hosts {
            (thead(&["host", "CUDA available", "devices", "record"]))
            tbody {
                @for (host, h) in gpus.hosts().iter().take(TABLE_MAX) {
                    tr {
                        td { (host) }
                        td {
                            @if h.available {
                                "yes"
                            } @else {
                                "no: " (h.unavailable_reason.as_deref().unwrap_or("no reason given"))
                            }
                        }
                        td.mono { (h.devices.join(", ")) }
                        td.num { (h.seq) }
                    }
                }
            }
        }
    };
    drop(p);
    Ok(Page::new("GPUs", Nav::Gpus, body))
}

/// A device's row: its last sample, its Xids by class, whether it needs a reset.
fn device_row(key: &GpuKey, d: &Device) -> Markup {
    let pci = &key.pci;
    let t = d.telemetry.as_ref();
    html! {
        tr data-host=(key.host.as_deref().unwrap_or("")) data-pci=(pci) data-needs-reset=(d.needs_reset) {
            td { (host_text(key)) }
            td.mono { (link(&format!("/events{}", query(&[("subject", &format!("gpu/{pci}"))])), pci)) }
            td { (d.name.as_deref().unwrap_or("—")) }
            td.num { (or_dash(t.and_then(|t| t.temp_c).map(|c| format!("{c} °C")))) }
            td.num { (or_dash(t.and_then(|t| t.power_mw).map(|p| format!("{} W", num(p as f64 / 1000.0))))) }
            td.num { (or_dash(t.and_then(|t| t.util_gpu_pct).map(|u| format!("{} %", num(u))))) }
            td.num { (or_dash(t.and_then(|t| t.mem_used_bytes).map(bytes))) }
            td {
                (t.map_or(String::new(), |t| {
                    t.clocks.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
                }))
            }
            td { (t.map_or(String::new(), |t| t.throttle.join(", "))) }
            td { (t.map_or("—".to_owned(), |t| time_text(&t.time))) }
            td {
                @if d.xids.total == 0 {
                    "0"
                } @else {
                    (d.xids.total) " ("
                    (d.xids
                        .by_severity
                        .iter()
                        .map(|(c, n)| format!("{} {n}", c.as_str()))
                        .collect::<Vec<_>>()
                        .join(", "))
                    ")"
                }
            }
            td {
                @match (&d.reset_cause, d.needs_reset) {
                    (Some(c), true) => {
                        (badge_word("fail", "needs reset")) " Xid " (c.code) " (" (c.action) ") at record "
                        (c.seq)
                    },
                    _ => (badge_word("pass", "ok")),
                }
            }
        }
    }
}

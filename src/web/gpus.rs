//! `/gpus`: per device (host and PCI id: nodes of one model share bus ids) the last telemetry
//! sample and whether it needs a reset, a timeline of its recent Xids coloured and labelled by
//! class, and the hosts' preflights (the `gpus` projection `GET /v1/gpus` serves). Events
//! recorded without a host are shown under "any host": they count for that PCI id on every
//! host.

use std::fmt::Write;

use assay_projections::gpus::{Device, GpuKey, XidEvent};
use assay_projections::xid_class::XidClass;
use axum::extract::State;
use axum::response::Html;

use super::layout::{
    Nav, bytes, document, duration, esc, link, num, or_dash, parse_time_ns, query, thead, time_ns, time_text,
};
use super::svg::seconds_step;
use super::{PageResult, TABLE_MAX, first_of};
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
fn xid_timeline(devices: &[(&GpuKey, &Device)]) -> String {
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
        return r#"<p id="xid-timeline-empty">No Xid recorded.</p>"#.to_owned();
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
    let mut out = format!(
        r#"<svg id="xid-timeline" class="chart timeline" viewBox="0 0 {width} {height}" role="img" aria-label="Xid timeline per GPU"><title>Xid timeline per GPU, by class</title>"#
    );
    // The time axis: round UTC ticks with a grid line each.
    let axis_y = top + row_h * rows.len() as f64;
    let range_s = (t1 - t0) as f64 / 1e9;
    let step_s = seconds_step(range_s / 8.0);
    let step_ns = (step_s * 1e9) as i64;
    let first = t0.div_euclid(step_ns) * step_ns + step_ns;
    for tick in (0..60).map(|i| first + i * step_ns).take_while(|t| *t <= t1) {
        let tx = x(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{tx:.1}" y1="{top}" x2="{tx:.1}" y2="{axis_y}"/><line class="axis" x1="{tx:.1}" y1="{axis_y}" x2="{tx:.1}" y2="{ty}"/><text class="tick time" x="{tx:.1}" y="{ly}" text-anchor="middle">{label}</text>"#,
            ty = axis_y + 4.0,
            ly = axis_y + 16.0,
            label = esc(&time_label(tick, step_s, range_s)),
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{left}" y1="{axis_y}" x2="{r}" y2="{axis_y}"/><text class="axis-label" x="{m}" y="{ly}" text-anchor="middle">time (UTC), {a} to {b}</text>"#,
        r = width - right,
        m = (left + width - right) / 2.0,
        ly = axis_y + 34.0,
        a = time_ns(t0 + pad),
        b = time_ns(t1 - pad),
    );
    for (i, (key, xs)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        // The host above the PCI id: together they name the GPU.
        let _ = write!(
            out,
            r#"<g class="xid-row" data-host="{host_attr}" data-pci="{pci}" data-xids="{n}"><text class="tick" x="{lx}" y="{ty}" text-anchor="end"><tspan x="{lx}" dy="-3">{host}</tspan><tspan x="{lx}" dy="12">{pci}</tspan></text><line class="grid" x1="{left}" y1="{y}" x2="{rx}" y2="{y}"/></g>"#,
            lx = left - 8.0,
            ty = y,
            n = xs.len(),
            host_attr = esc(key.host.as_deref().unwrap_or("")),
            host = esc(host_text(key)),
            pci = esc(&key.pci),
            rx = width - right,
        );
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
        for mark in &marks {
            let (ta, tb) = (mark.xids[0].0, mark.xids[mark.xids.len() - 1].0);
            let cx = (x(ta) + x(tb)) / 2.0;
            let below = matches!(last, Some((lx, lb)) if cx - lx < 40.0 && !lb);
            last = Some((cx, below));
            let class = mark.class();
            let n = mark.xids.len();
            // Bursts are drawn larger; classes that taint a run as squares, the rest circles.
            let r = if n > 1 { 7.0 } else { 5.0 };
            let shape = if class.taints() {
                format!(r#"<rect x="{:.1}" y="{:.1}" width="{s}" height="{s}"/>"#, cx - r, y - r, s = 2.0 * r)
            } else {
                format!(r#"<circle cx="{cx:.1}" cy="{y:.1}" r="{r}"/>"#)
            };
            let codes: Vec<String> = mark.codes().iter().map(u32::to_string).collect();
            // Labels near the ends of the row stay off the GPU's name and inside the frame.
            let anchor = if cx < left + 40.0 {
                "start"
            } else if cx > width - right - 40.0 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                out,
                r#"<g class="xid x-{class}" data-count="{n}" data-codes="{codes}" data-class="{class}"><title>{title}</title>{shape}<text class="code" x="{lx:.1}" y="{ty:.1}" text-anchor="{anchor}">{label}</text></g>"#,
                class = class.as_str(),
                codes = codes.join(","),
                title = esc(&mark.title()),
                lx = match anchor {
                    "start" => cx - r,
                    "end" => cx + r,
                    _ => cx,
                },
                ty = if below { y + r + 12.0 } else { y - r - 4.0 },
                label = esc(&mark.label()),
            );
        }
    }
    // The legend: the class name beside each mark.
    let ly = axis_y + axis_h + 14.0;
    for (i, class) in CLASSES.iter().enumerate() {
        let lx = left + 130.0 * i as f64;
        let name = class.as_str();
        let mark = if class.taints() {
            format!(r#"<rect x="{}" y="{}" width="10" height="10"/>"#, lx, ly - 9.0)
        } else {
            format!(r#"<circle cx="{}" cy="{}" r="5"/>"#, lx + 5.0, ly - 4.0)
        };
        let _ = write!(
            out,
            r#"<g class="legend x-{name}">{mark}<text class="tick" x="{tx}" y="{ly}">{name}</text></g>"#,
            tx = lx + 14.0
        );
    }
    out.push_str("</svg>");
    out
}

pub async fn page(State(state): State<AppState>) -> PageResult {
    let p = state.live.read();
    let gpus = &p.gpus;
    let devices: Vec<(&GpuKey, &Device)> = gpus.devices().iter().take(TABLE_MAX).collect();
    let needing: Vec<String> =
        gpus.needing_reset().map(|(k, _)| format!("{} on {}", k.pci, host_text(k))).collect();
    let mut body = String::from("<h1>GPUs</h1>");
    if needing.is_empty() {
        body.push_str(r#"<p class="banner ok" id="needs-reset">No GPU needs a reset.</p>"#);
    } else {
        let _ = write!(
            body,
            r#"<p class="banner bad" id="needs-reset"><strong>{} GPU{} need{} a reset:</strong> {}</p>"#,
            needing.len(),
            if needing.len() == 1 { "" } else { "s" },
            if needing.len() == 1 { "s" } else { "" },
            esc(&needing.join(", "))
        );
    }
    let _ = write!(
        body,
        r#"<table id="devices">{}<tbody>"#,
        thead(&[
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
        ])
    );
    for (key, d) in &devices {
        let pci = &key.pci;
        let t = d.telemetry.as_ref();
        let reset = match (&d.reset_cause, d.needs_reset) {
            (Some(c), true) => format!(
                r#"<span class="badge fail">needs reset</span> Xid {} ({}) at record {}"#,
                c.code,
                esc(&c.action),
                c.seq
            ),
            _ => r#"<span class="badge pass">ok</span>"#.to_owned(),
        };
        let xids = if d.xids.total == 0 {
            "0".to_owned()
        } else {
            let by: Vec<String> =
                d.xids.by_severity.iter().map(|(c, n)| format!("{} {n}", c.as_str())).collect();
            format!("{} ({})", d.xids.total, esc(&by.join(", ")))
        };
        let _ = write!(
            body,
            r#"<tr data-host="{host_attr}" data-pci="{pci_attr}" data-needs-reset="{nr}"><td>{host}</td><td class="mono">{pci}</td><td>{name}</td><td class="num">{temp}</td><td class="num">{power}</td><td class="num">{util}</td><td class="num">{mem}</td><td>{clocks}</td><td>{throttle}</td><td>{when}</td><td>{xids}</td><td>{reset}</td></tr>"#,
            host_attr = esc(key.host.as_deref().unwrap_or("")),
            pci_attr = esc(pci),
            nr = d.needs_reset,
            pci = link(&format!("/events{}", query(&[("subject", &format!("gpu/{pci}"))])), pci),
            name = esc(d.name.as_deref().unwrap_or("—")),
            host = esc(host_text(key)),
            temp = or_dash(t.and_then(|t| t.temp_c).map(|c| format!("{c} °C"))),
            power = or_dash(t.and_then(|t| t.power_mw).map(|p| format!("{} W", num(p as f64 / 1000.0)))),
            util = or_dash(t.and_then(|t| t.util_gpu_pct).map(|u| format!("{} %", num(u)))),
            mem = or_dash(t.and_then(|t| t.mem_used_bytes).map(bytes)),
            clocks = esc(&t.map_or(String::new(), |t| {
                t.clocks.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            })),
            throttle = esc(&t.map_or(String::new(), |t| t.throttle.join(", "))),
            when = esc(&t.map_or("—".to_owned(), |t| time_text(&t.time))),
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&first_of(devices.len(), gpus.devices().len(), "GPUs"));
    if devices.is_empty() {
        body.push_str("<p>No GPU has reported yet.</p>");
    }

    body.push_str(
        r#"<h2>Xid timeline</h2><p class="note">The latest Xids of each GPU (up to 32 per device), by the time the producer saw them. Squares are classes that taint a run inside its window (hardware, NVLink); Xids close together are one larger mark labelled with their codes and count (×N). Hover a mark for its messages.</p>"#,
    );
    body.push_str(&xid_timeline(&devices));

    let recent: Vec<(&GpuKey, &XidEvent)> =
        devices.iter().flat_map(|(key, d)| d.xids.recent.iter().map(move |x| (*key, x))).collect();
    if !recent.is_empty() {
        let _ = write!(
            body,
            r#"<h2>Recent Xids</h2><table id="xids">{}<tbody>"#,
            thead(&[
                "time", "host", "GPU", "code", "class", "action", "process", "message", "source", "record"
            ])
        );
        let mut sorted = recent;
        sorted.sort_by_key(|(_, x)| std::cmp::Reverse(x.seq));
        let total = sorted.len();
        sorted.truncate(TABLE_MAX);
        for (key, x) in sorted {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td>{}</td><td class="mono">{}</td><td class="num">{}</td><td><span class="xclass x-{c}">{c}</span></td><td>{}</td><td>{}</td><td class="reasons">{}</td><td>{}</td><td class="num">{}</td></tr>"#,
                esc(&time_text(&x.time)),
                esc(host_text(key)),
                esc(&key.pci),
                x.code,
                esc(&x.action),
                esc(&match (&x.process, x.pid) {
                    (Some(p), Some(pid)) => format!("{p} ({pid})"),
                    (Some(p), None) => p.clone(),
                    (None, Some(pid)) => pid.to_string(),
                    (None, None) => "—".to_owned(),
                }),
                esc(&x.message),
                esc(&x.source),
                x.seq,
                c = x.class.as_str(),
            );
        }
        body.push_str("</tbody></table>");
        body.push_str(&first_of(TABLE_MAX, total, "recent Xids"));
    }

    let _ = write!(
        body,
        r#"<h2>Hosts</h2><table id="hosts">{}<tbody>"#,
        thead(&["host", "CUDA available", "devices", "record"])
    );
    for (host, h) in gpus.hosts().iter().take(TABLE_MAX) {
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td class="mono">{}</td><td class="num">{}</td></tr>"#,
            esc(host),
            if h.available {
                "yes".to_owned()
            } else {
                format!("no: {}", esc(h.unavailable_reason.as_deref().unwrap_or("no reason given")))
            },
            esc(&h.devices.join(", ")),
            h.seq
        );
    }
    body.push_str("</tbody></table>");
    drop(p);
    Ok(Html(document("GPUs", Nav::Gpus, &body)))
}

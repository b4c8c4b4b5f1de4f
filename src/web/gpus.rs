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

use super::PageResult;
use super::layout::{
    Nav, bytes, document, esc, link, num, or_dash, parse_time_ns, query, thead, time_ns, time_text,
};
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

/// The Xid timeline: one row per device (host, PCI id) with Xids, x = the producers' event
/// time.
fn xid_timeline(devices: &[(&GpuKey, &Device)]) -> String {
    let rows: Vec<(&GpuKey, Vec<(i64, &XidEvent)>)> = devices
        .iter()
        .filter(|(_, d)| !d.xids.recent.is_empty())
        .map(|(pci, d)| {
            let xs = d.xids.recent.iter().filter_map(|x| Some((parse_time_ns(&x.time)?, x))).collect();
            (*pci, xs)
        })
        .collect();
    let times = rows.iter().flat_map(|(_, xs)| xs.iter().map(|(t, _)| *t));
    let (t0, t1) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    if rows.is_empty() || t0 > t1 {
        return r#"<p id="xid-timeline-empty">No Xid recorded.</p>"#.to_owned();
    }
    let (t0, t1) = if t0 == t1 { (t0 - 3_600_000_000_000, t1 + 3_600_000_000_000) } else { (t0, t1) };
    let (left, right, row_h, top) = (150.0, 20.0, 40.0, 10.0);
    let width = 900.0;
    let legend_h = 30.0;
    let height = top + row_h * rows.len() as f64 + 24.0 + legend_h;
    let x = |t: i64| left + (t - t0) as f64 / (t1 - t0) as f64 * (width - left - right);
    let mut out = format!(
        r#"<svg id="xid-timeline" class="chart timeline" viewBox="0 0 {width} {height}" role="img" aria-label="Xid timeline per GPU"><title>Xid timeline per GPU, by class</title>"#
    );
    for (i, (key, xs)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        // The host above the PCI id: together they name the GPU.
        let _ = write!(
            out,
            r#"<g class="xid-row" data-host="{host_attr}" data-pci="{pci}"><text class="tick" x="{lx}" y="{ty}" text-anchor="end"><tspan x="{lx}" dy="-3">{host}</tspan><tspan x="{lx}" dy="12">{pci}</tspan></text><line class="grid" x1="{left}" y1="{y}" x2="{rx}" y2="{y}"/></g>"#,
            lx = left - 8.0,
            ty = y,
            host_attr = esc(key.host.as_deref().unwrap_or("")),
            host = esc(host_text(key)),
            pci = esc(&key.pci),
            rx = width - right,
        );
        // A label too close to the one before goes below its mark, so neither hides the other.
        let mut last: Option<(f64, bool)> = None;
        for (t, xid) in xs {
            let cx = x(*t);
            let below = matches!(last, Some((lx, lb)) if cx - lx < 18.0 && !lb);
            last = Some((cx, below));
            let class = xid.class.as_str();
            let label = format!(
                "Xid {} ({class}, {}) at {}: {}",
                xid.code,
                xid.action,
                time_text(&xid.time),
                xid.message
            );
            // Classes that taint a run are drawn as squares, the rest as circles.
            let mark = if xid.class.taints() {
                format!(r#"<rect x="{:.1}" y="{:.1}" width="10" height="10"/>"#, cx - 5.0, y - 5.0)
            } else {
                format!(r#"<circle cx="{cx:.1}" cy="{y:.1}" r="5"/>"#)
            };
            let _ = write!(
                out,
                r#"<g class="xid x-{class}" data-code="{code}" data-class="{class}"><title>{label}</title>{mark}<text class="code" x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{code}</text></g>"#,
                code = xid.code,
                label = esc(&label),
                ty = if below { y + 17.0 } else { y - 9.0 },
            );
        }
    }
    let axis_y = top + row_h * rows.len() as f64 + 14.0;
    let _ = write!(
        out,
        r#"<text class="tick" x="{left}" y="{axis_y}">{a}</text><text class="tick" x="{r}" y="{axis_y}" text-anchor="end">{b}</text>"#,
        r = width - right,
        a = time_ns(t0),
        b = time_ns(t1),
    );
    // The legend: the class name beside each mark.
    let ly = axis_y + 20.0;
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
    let devices: Vec<(&GpuKey, &Device)> = gpus.devices().iter().collect();
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
    if devices.is_empty() {
        body.push_str("<p>No GPU has reported yet.</p>");
    }

    body.push_str(
        r#"<h2>Xid timeline</h2><p class="note">The latest Xids of each GPU (up to 32 per device), by the time the producer saw them. Squares are classes that taint a run inside its window (hardware, NVLink); hover a mark for its message.</p>"#,
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
    }

    let _ = write!(
        body,
        r#"<h2>Hosts</h2><table id="hosts">{}<tbody>"#,
        thead(&["host", "CUDA available", "devices", "record"])
    );
    for (host, h) in gpus.hosts() {
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

//! `/queue`: runs by state, GPU lanes and their holders, pause and maintenance, workers'
//! preflights, and the dispatch gate's recent decisions with their reasons (the `queue`
//! projection `GET /v1/queue` serves).

use std::fmt::Write;

use assay_projections::queue::RunState;
use axum::extract::State;
use axum::response::Html;
use serde::Deserialize;

use super::layout::{
    Nav, digest_link, document, duration_ms, esc, exit_text, link, or_dash, pager, query, reasons, run_href,
    thead, time_ns,
};
use super::svg::{Bar, bars};
use super::{PageResult, Params, TABLE_MAX, WebError, first_of, given, page_slice, paging};
use crate::http::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    state: Option<String>,
    page: Option<String>,
}

pub async fn page(State(state): State<AppState>, Params(q): Params<QueueParams>) -> PageResult {
    let wanted = match given(&q.state) {
        None => None,
        Some(s) => Some(RunState::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = RunState::ALL.iter().map(|r| r.as_str()).collect();
            WebError::bad_request(format!("state must be one of {}, got {s:?}", names.join(", ")))
        })?),
    };
    let p = state.live.read();
    let queue = &p.queue;
    let mut body = String::from("<h1>Queue</h1>");

    match queue.paused() {
        Some(pause) => {
            let _ = write!(
                body,
                r#"<p class="banner bad" id="paused"><strong>Paused</strong> since {} (record {}): {}. The dispatch gate refuses every request.</p>"#,
                time_ns(pause.at_ns),
                pause.seq,
                esc(pause.reason.as_deref().unwrap_or("no reason given"))
            );
        }
        None => {
            body.push_str(r#"<p class="banner ok" id="paused">Not paused: the dispatch gate is open.</p>"#)
        }
    }
    let m = queue.maintenance();
    if m.is_empty() {
        body.push_str("<p>No maintenance scheduled.</p>");
    } else {
        body.push_str(r#"<h2>Maintenance</h2><ul id="maintenance">"#);
        let reason = |r: &Option<String>| esc(r.as_deref().unwrap_or("no reason given"));
        if let Some(all) = &m.all {
            let _ = write!(body, "<li>Everything (record {}): {}</li>", all.seq, reason(&all.reason));
        }
        for (w, e) in m.workers.iter().take(TABLE_MAX) {
            let _ = write!(body, "<li>Worker {} (record {}): {}</li>", esc(w), e.seq, reason(&e.reason));
        }
        for (g, e) in m.gpus.iter().take(TABLE_MAX) {
            let _ = write!(
                body,
                "<li>GPU {} on every worker (record {}): {}</li>",
                esc(g),
                e.seq,
                reason(&e.reason)
            );
        }
        for (w, lanes) in m.lanes.iter().take(TABLE_MAX) {
            for (g, e) in lanes.iter().take(TABLE_MAX) {
                let _ = write!(
                    body,
                    "<li>Lane {} / {} (record {}): {}</li>",
                    esc(w),
                    esc(g),
                    e.seq,
                    reason(&e.reason)
                );
            }
        }
        body.push_str("</ul>");
    }

    // Runs by state.
    let counts = queue.counts();
    let count_of = |s: RunState| counts.get(s.as_str()).copied().unwrap_or(0);
    let bar_items: Vec<Bar<'_>> = RunState::ALL
        .iter()
        .map(|s| Bar { label: s.as_str(), value: count_of(*s), class: s.as_str() })
        .collect();
    body.push_str(r#"<div class="grid"><section class="card"><h2>Runs by state</h2>"#);
    body.push_str(&bars("Runs by state", &bar_items));
    body.push_str(r#"<p class="states">Show: "#);
    body.push_str(&link("/queue", "all"));
    for s in RunState::ALL {
        let _ = write!(
            body,
            " · {} ({})",
            link(&format!("/queue{}", query(&[("state", s.as_str())])), s.as_str()),
            count_of(s)
        );
    }
    body.push_str("</p></section>");

    // Lanes.
    let _ = write!(
        body,
        r#"<section class="card"><h2>GPU lanes</h2><table id="lanes">{}<tbody>"#,
        thead(&["worker", "GPU", "holder", "since record", "offered", "maintenance"])
    );
    // A lane whose GPU needs a reset is never shown as free: the gate refuses it.
    let gpus = &p.gpus;
    let all_lanes = queue.lanes().iter().flat_map(|(w, lanes)| lanes.iter().map(move |(g, l)| (w, g, l)));
    let lanes_total = queue.lanes().values().map(|l| l.len()).sum::<usize>();
    {
        for (worker, gpu, lane) in all_lanes.take(TABLE_MAX) {
            let reset = gpus.needs_reset(worker, gpu);
            let holder = match (lane.holder.as_deref(), reset) {
                (Some(r), None) => link(&run_href(r), r),
                (Some(r), Some(c)) => format!(
                    r#"{} <span class="badge fail">needs reset</span> Xid {} at record {}"#,
                    link(&run_href(r), r),
                    c.code,
                    c.seq
                ),
                (None, Some(c)) => format!(
                    r#"<span class="badge fail">needs reset</span> Xid {} ({}) at record {}: the gate refuses it"#,
                    c.code,
                    esc(&c.action),
                    c.seq
                ),
                (None, None) => r#"<span class="badge pass">free</span>"#.to_owned(),
            };
            let maint =
                m.covering(worker, Some(gpu)).map_or("—".to_owned(), |e| format!("yes (record {})", e.seq));
            let _ = write!(
                body,
                r#"<tr data-worker="{w}" data-gpu="{g}" data-needs-reset="{nr}" data-free="{free}"><td>{w}</td><td class="mono">{g}</td><td>{holder}</td><td class="num">{}</td><td>{}</td><td>{maint}</td></tr>"#,
                or_dash(lane.held_since_seq.map(|s| s.to_string())),
                if lane.offered { "yes" } else { "no" },
                w = esc(worker),
                g = esc(gpu),
                nr = reset.is_some(),
                free = lane.holder.is_none() && reset.is_none(),
            );
        }
    }
    body.push_str("</tbody></table>");
    body.push_str(&first_of(TABLE_MAX, lanes_total, "lanes"));
    body.push_str("</section></div>");

    // The runs table, filtered and paged.
    let runs: Vec<(&String, &assay_projections::queue::Run)> =
        queue.runs().iter().filter(|(_, r)| wanted.is_none_or(|w| r.state == w)).collect();
    let (page_no, pages) = paging(&q.page, runs.len() as u64)?;
    let state_name = wanted.map_or("", RunState::as_str);
    let _ = write!(
        body,
        r#"<h2>Runs{}</h2><p class="note">{} runs. <label>Search these rows <input type="search" data-filter-table="runs" placeholder="text in any column"></label></p><table id="runs">{}<tbody>"#,
        if state_name.is_empty() { String::new() } else { format!(": {}", esc(state_name)) },
        runs.len(),
        thead(&["run", "state", "project", "worker", "GPU", "queued", "exit", "duration", "last record"])
    );
    for (id, r) in page_slice(&runs, page_no) {
        let exit = exit_text(r.exit_code, r.signal);
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td><span class="state {st}">{st}</span></td><td>{}</td><td>{}</td><td class="mono">{}</td><td>{}</td><td class="num">{exit}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            link(&run_href(id), id),
            esc(r.project.as_deref().unwrap_or("—")),
            esc(r.worker.as_deref().unwrap_or("—")),
            esc(r.gpu.as_deref().unwrap_or("—")),
            super::runs::happened(r.producer_time.queued.as_deref(), r.queued_at_ns),
            or_dash(r.duration_ms.map(duration_ms)),
            r.last_seq,
            st = r.state.as_str(),
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&pager("/queue", &[("state", state_name)], page_no, pages));

    // Preflights.
    let _ = write!(
        body,
        r#"<h2>Worker preflights</h2><table id="preflights">{}<tbody>"#,
        thead(&["worker", "healthy", "received", "GPUs offered", "checks"])
    );
    for (worker, pf) in queue.preflights().iter().take(TABLE_MAX) {
        let checks: Vec<String> = pf
            .checks
            .iter()
            .take(64)
            .map(|c| {
                format!(
                    "{} {}{}",
                    if c.ok { "✓" } else { "✗" },
                    esc(&c.name),
                    c.detail.as_deref().map_or(String::new(), |d| format!(": {}", esc(d)))
                )
            })
            .collect();
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="mono">{}</td><td class="reasons">{}</td></tr>"#,
            esc(worker),
            if pf.healthy {
                r#"<span class="badge pass">healthy</span>"#
            } else {
                r#"<span class="badge fail">unhealthy</span>"#
            },
            time_ns(pf.received_at_ns),
            esc(&pf.gpus.join(", ")),
            checks.join("<br>"),
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&first_of(TABLE_MAX, queue.preflights().len(), "workers"));

    // Dispatch decisions, newest first.
    let d = queue.decisions();
    let refusals: Vec<String> =
        d.refusals_by_reason.iter().take(64).map(|(r, n)| format!("<code>{}</code> {n}", esc(r))).collect();
    let _ = write!(
        body,
        r#"<h2>Dispatch decisions</h2><p>{} accepted, {} refused{}. The latest {} decisions, newest first:</p><table id="decisions">{}<tbody>"#,
        d.accepted,
        d.refused,
        if refusals.is_empty() { String::new() } else { format!(" ({})", refusals.join(", ")) },
        d.recent.len(),
        thead(&["record", "run", "worker", "GPU", "decision", "reasons", "request"])
    );
    for e in d.recent.iter().rev() {
        let _ = write!(
            body,
            r#"<tr><td class="num">{}</td><td>{}</td><td>{}</td><td class="mono">{}</td><td>{}</td><td class="reasons">{}</td><td>{}</td></tr>"#,
            e.seq,
            link(&run_href(&e.run), &e.run),
            esc(&e.worker),
            esc(e.gpu.as_deref().unwrap_or("CPU only")),
            if e.accepted {
                r#"<span class="badge pass">accepted</span>"#
            } else {
                r#"<span class="badge fail">refused</span>"#
            },
            reasons(&e.reasons, "—"),
            e.request.as_deref().map_or("—".to_owned(), digest_link),
        );
    }
    body.push_str("</tbody></table>");
    drop(p);
    Ok(Html(document("Queue", Nav::Queue, &body)))
}

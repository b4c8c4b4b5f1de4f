//! `/queue`: runs by state, GPU lanes and their holders, pause and maintenance, workers'
//! preflights, and the dispatch gate's recent decisions with their reasons (the `queue`
//! projection `GET /v1/queue` serves).

use assay_projections::queue::{Run, RunState};
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Nav, badge_word, digest_link, duration_ms, exit_text, joined, lines, link, or_dash, pager, query,
    reasons, run_href, thead, time_ns,
};
use super::page::{
    Page, PageResult, Params, TABLE_MAX, Viewer, WebError, first_of, given, page_slice, paging,
};
use super::svg::{Bar, bars};
use crate::http::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    state: Option<String>,
    page: Option<String>,
}

pub async fn page(viewer: Viewer, State(state): State<AppState>, Params(q): Params<QueueParams>) -> Response {
    viewer.show(queue(&state, q))
}

/// A maintenance or pause reason as given, or that none was.
fn given_reason(r: &Option<String>) -> &str {
    r.as_deref().unwrap_or("no reason given")
}

fn queue(state: &AppState, q: QueueParams) -> PageResult {
    let wanted = match given(&q.state) {
        None => None,
        Some(s) => Some(RunState::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = RunState::ALL.iter().map(|r| r.as_str()).collect();
            WebError::bad_request(format!("state must be one of {}, got {s:?}", names.join(", ")))
        })?),
    };
    let p = state.live.read();
    let queue = &p.queue;
    let m = queue.maintenance();
    let counts = queue.counts();
    let count_of = |s: RunState| counts.get(s.as_str()).copied().unwrap_or(0);
    let bar_items: Vec<Bar<'_>> = RunState::ALL
        .iter()
        .map(|s| Bar { label: s.as_str(), value: count_of(*s), class: s.as_str() })
        .collect();
    // A lane whose GPU needs a reset is never shown as free: the gate refuses it.
    let gpus = &p.gpus;
    let all_lanes = queue.lanes().iter().flat_map(|(w, lanes)| lanes.iter().map(move |(g, l)| (w, g, l)));
    let lanes_total = queue.lanes().values().map(|l| l.len()).sum::<usize>();
    // The runs table, filtered and paged.
    let runs: Vec<(&String, &Run)> =
        queue.runs().iter().filter(|(_, r)| wanted.is_none_or(|w| r.state == w)).collect();
    let (page_no, pages) = paging(&q.page, runs.len() as u64)?;
    let state_name = wanted.map_or("", RunState::as_str);
    let d = queue.decisions();
    let refusals: Vec<Markup> =
        d.refusals_by_reason.iter().take(64).map(|(r, n)| html! { code { (r) } " " (n) }).collect();

    let body = html! {
        h1 { "Queue" }
        @match queue.paused() {
            Some(pause) => p.banner.bad #paused {
                strong { "Paused" } " since " (time_ns(pause.at_ns)) " (record " (pause.seq) "): "
                (given_reason(&pause.reason)) ". The dispatch gate refuses every request."
            },
            None => p.banner.ok #paused { "Not paused: the dispatch gate is open." },
        }
        @if m.is_empty() {
            p { "No maintenance scheduled." }
        } @else {
            h2 { "Maintenance" }
            ul #maintenance {
                @if let Some(all) = &m.all {
                    li { "Everything (record " (all.seq) "): " (given_reason(&all.reason)) }
                }
                @for (w, e) in m.workers.iter().take(TABLE_MAX) {
                    li { "Worker " (w) " (record " (e.seq) "): " (given_reason(&e.reason)) }
                }
                @for (g, e) in m.gpus.iter().take(TABLE_MAX) {
                    li { "GPU " (g) " on every worker (record " (e.seq) "): " (given_reason(&e.reason)) }
                }
                @for (w, lanes) in m.lanes.iter().take(TABLE_MAX) {
                    @for (g, e) in lanes.iter().take(TABLE_MAX) {
                        li { "Lane " (w) " / " (g) " (record " (e.seq) "): " (given_reason(&e.reason)) }
                    }
                }
            }
        }
        div.grid {
            // Runs by state.
            section.card {
                h2 { "Runs by state" }
                (bars("Runs by state", &bar_items))
                p.states {
                    "Show: " (link("/queue", "all"))
                    @for s in RunState::ALL {
                        " · " (link(&format!("/queue{}", query(&[("state", s.as_str())])), s.as_str()))
                        " (" (count_of(s)) ")"
                    }
                }
            }
            section.card {
                h2 { "GPU lanes" }
                table #lanes {
                    (thead(&["worker", "GPU", "holder", "since record", "offered", "maintenance"]))
                    tbody {
                        @for (worker, gpu, lane) in all_lanes.take(TABLE_MAX) {
                            @let reset = gpus.needs_reset(worker, gpu);
                            tr data-worker=(worker) data-gpu=(gpu) data-needs-reset=(reset.is_some())
                                data-free=(lane.holder.is_none() && reset.is_none()) {
                                td { (worker) }
                                td.mono { (gpu) }
                                td {
                                    @match (lane.holder.as_deref(), reset) {
                                        (Some(r), None) => (link(&run_href(r), r)),
                                        (Some(r), Some(c)) => {
                                            (link(&run_href(r), r)) " " (badge_word("fail", "needs reset"))
                                            " Xid " (c.code) " at record " (c.seq)
                                        },
                                        (None, Some(c)) => {
                                            (badge_word("fail", "needs reset")) " Xid " (c.code) " ("
                                            (c.action) ") at record " (c.seq) ": the gate refuses it"
                                        },
                                        (None, None) => (badge_word("pass", "free")),
                                    }
                                }
                                td.num { (or_dash(lane.held_since_seq.map(|s| s.to_string()))) }
                                td { (if lane.offered { "yes" } else { "no" }) }
                                td {
                                    (m.covering(worker, Some(gpu))
                                        .map_or("—".to_owned(), |e| format!("yes (record {})", e.seq)))
                                }
                            }
                        }
                    }
                }
                (first_of(TABLE_MAX, lanes_total, "lanes"))
            }
        }
        h2 { "Runs" @if !state_name.is_empty() { ": " (state_name) } }
        p.note {
            (runs.len()) " runs. "
            label {
                "Search these rows "
                input type="search" data-filter-table="runs" placeholder="text in any column";
            }
        }
        table #runs {
            (thead(&[
                "run", "state", "project", "worker", "GPU", "queued", "exit", "duration", "last record"
            ]))
            tbody {
                @for (id, r) in page_slice(&runs, page_no) {
                    tr {
                        td { (link(&run_href(id), id)) }
                        td { span.state.(r.state.as_str()) { (r.state.as_str()) } }
                        td { (r.project.as_deref().unwrap_or("—")) }
                        td { (r.worker.as_deref().unwrap_or("—")) }
                        td.mono { (r.gpu.as_deref().unwrap_or("—")) }
                        td { (super::runs::happened(r.producer_time.queued.as_deref(), r.queued_at_ns)) }
                        td.num { (exit_text(r.exit_code, r.signal)) }
                        td.num { (or_dash(r.duration_ms.map(duration_ms))) }
                        td.num { (r.last_seq) }
                    }
                }
            }
        }
        (pager("/queue", &[("state", state_name)], page_no, pages))
        h2 { "Worker preflights" }
        table #preflights {
            (thead(&["worker", "healthy", "received", "GPUs offered", "checks"]))
            tbody {
                @for (worker, pf) in queue.preflights().iter().take(TABLE_MAX) {
                    tr {
                        td { (worker) }
                        td {
                            @if pf.healthy {
                                (badge_word("pass", "healthy"))
                            } @else {
                                (badge_word("fail", "unhealthy"))
                            }
                        }
                        td { (time_ns(pf.received_at_ns)) }
                        td.mono { (pf.gpus.join(", ")) }
                        td.reasons {
                            (lines(pf.checks.iter().take(64).map(|c| html! {
                                (if c.ok { "✓" } else { "✗" }) " " (c.name)
                                @if let Some(d) = &c.detail { ": " (d) }
                            }), ""))
                        }
                    }
                }
            }
        }
        (first_of(TABLE_MAX, queue.preflights().len(), "workers"))
        // Dispatch decisions, newest first.
        h2 { "Dispatch decisions" }
        p {
            (d.accepted) " accepted, " (d.refused) " refused"
            @if !refusals.is_empty() { " (" (joined(refusals, html! { ", " }, "")) ")" }
            ". The latest " (d.recent.len()) " decisions, newest first:"
        }
        table #decisions {
            (thead(&["record", "run", "worker", "GPU", "decision", "reasons", "request"]))
            tbody {
                @for e in d.recent.iter().rev() {
                    tr {
                        td.num { (e.seq) }
                        td { (link(&run_href(&e.run), &e.run)) }
                        td { (e.worker) }
                        td.mono { (e.gpu.as_deref().unwrap_or("CPU only")) }
                        td {
                            @if e.accepted {
                                (badge_word("pass", "accepted"))
                            } @else {
                                (badge_word("fail", "refused"))
                            }
                        }
                        td.reasons { (reasons(&e.reasons, "—")) }
                        td { (e.request.as_deref().map_or(html! { "—" }, digest_link)) }
                    }
                }
            }
        }
    };
    drop(p);
    Ok(Page::new("Queue", Nav::Queue, body))
}

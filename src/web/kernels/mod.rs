//! The kernel pages.
//!
//! - `/kernels` (here): the campaign runs, latest first (each linked to its matrix), a form
//!   to diff two, and the whole ledger's matrix (kernel × variant × backend) as a heatmap whose
//!   cells say what they hold (passed, failed, faulted), with the same numbers as a table (the
//!   `kernels` projection `GET /v1/projections/kernels` serves). [`heatmap`] draws it.
//! - `/kernels/run/{run}` ([`matrix`]): one run's matrix, one kernel at a time, rows and
//!   columns chosen from its axes ([`axes`]).
//! - `/kernels/diff?base=RUN&new=RUN` ([`diff`]): the regression diff of two runs.
//!
//! [`outcome`] draws a cell's outcome for both. The run and diff pages read the store as
//! `GET /v1/campaigns/…` does, under the same replay permits.

mod axes;
mod diff;
mod heatmap;
mod matrix;
mod outcome;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

pub use diff::page as diff_page;
use heatmap::{ROWS_MAX, Row, heatmap};
pub use matrix::page as run_page;

use super::layout::{Nav, duration, enc_path, link, num, or_dash, thead, time_ns};
use super::page::{Page, PageResult, Viewer, first_of};
use crate::http::state::AppState;

/// Campaign runs listed (and offered in the diff form) at most.
const RUNS_SHOWN: usize = 100;

/// The link to a campaign run's matrix.
pub fn run_href(run: &str) -> String {
    format!("/kernels/run/{}", enc_path(run))
}

/// The latest campaign runs' ids, latest first (at most [`RUNS_SHOWN`]).
fn latest_runs(state: &AppState) -> Vec<String> {
    let p = state.live.read();
    p.kernels.runs().latest_first().take(RUNS_SHOWN).map(|r| r.run.clone()).collect()
}

/// The form asking for a diff of two runs (GET `/kernels/diff`), filled with `base` and
/// `new`, offering the latest runs.
fn diff_form(state: &AppState, base: &str, new: &str) -> Markup {
    let runs = latest_runs(state);
    html! {
        form.filters #diff-form method="get" action="/kernels/diff" {
            label { "Base run " input type="text" name="base" value=(base) list="campaign-run-ids" required; }
            label { "New run " input type="text" name="new" value=(new) list="campaign-run-ids" required; }
            button type="submit" { "Diff" }
            datalist #campaign-run-ids { @for r in &runs { option value=(r) {} } }
        }
    }
}

pub async fn page(viewer: Viewer, State(state): State<AppState>) -> Response {
    let runs = runs_table(&state);
    let form = diff_form(&state, "", "");
    viewer.show(kernels(&state, runs, form))
}

/// The latest campaign runs, each linked to its matrix.
fn runs_table(state: &AppState) -> Markup {
    let p = state.live.read();
    let runs = p.kernels.runs();
    let shown: Vec<_> = runs.latest_first().take(RUNS_SHOWN).collect();
    html! {
        @if shown.is_empty() {
            p #campaign-runs-empty { "No campaign run recorded." }
        } @else {
            table #campaign-runs {
                (thead(&["run", "launches", "passed", "failed", "faulted", "last launch"]))
                tbody {
                    @for r in &shown {
                        tr {
                            td.kname { (link(&run_href(&r.run), &r.run)) }
                            td.num { (r.launches) }
                            td.num { (r.passed) }
                            td.num { (r.failed) }
                            td.num { (r.faulted) }
                            td title={ "received " (time_ns(r.last_received_at_ns)) } { (time_ns(r.last_time_ns)) }
                        }
                    }
                }
            }
            (first_of(shown.len(), runs.len(), "runs, latest first"))
        }
    }
}

fn kernels(state: &AppState, runs: Markup, diff_form: Markup) -> PageResult {
    let p = state.live.read();
    let kernels = &p.kernels;
    let totals = kernels.totals();
    let backends: BTreeSet<&str> = kernels
        .matrix()
        .values()
        .flat_map(|variants| variants.values().flat_map(|b| b.keys().map(String::as_str)))
        .collect();
    let backends: Vec<&str> = backends.into_iter().collect();
    let rows: Vec<Row<'_>> = kernels
        .matrix()
        .iter()
        .flat_map(|(k, variants)| variants.iter().map(move |(v, cells)| (k, v, cells)))
        .collect();

    let body = html! {
        h1 { "Kernels" }
        p.lead #kernel-totals {
            (totals.launches) " launches: " (totals.passed) " passed, " (totals.failed) " failed, "
            (totals.faulted) " faulted."
        }
        h2 { "Campaign runs" }
        p { "Each run's matrix, kernel by kernel, with faults, Xids and fallbacks." }
        (runs)
        (diff_form)
        h2 { "All launches" }
        @if rows.is_empty() {
            p { "No kernel launch recorded." }
        } @else {
            (heatmap(&rows, &backends))
            @if rows.len() > ROWS_MAX {
                p.note { "The first " (ROWS_MAX) " of " (rows.len()) " rows; the table below has them all." }
            }
            // The same numbers, as text.
            h2 { "Cells" }
            p {
                label {
                    "Search "
                    input type="search" data-filter-table="kernel-cells"
                        placeholder="kernel, variant, backend, error";
                }
            }
            table #kernel-cells {
                (thead(&[
                    "kernel",
                    "variant",
                    "backend",
                    "passed",
                    "failed",
                    "faulted",
                    "max abs err / tolerance",
                    "duration",
                    "last error"
                ]))
                tbody {
                    @for (kernel, variant, cells) in &rows {
                        @for (b, c) in cells.iter() {
                            tr {
                                td.kname { (kernel) }
                                td.mono { (variant) }
                                td { (b) }
                                td.num { (c.passed) }
                                td.num { (c.failed) }
                                td.num { (c.faulted) }
                                td.num {
                                    @match (c.last_max_abs_err, c.last_tolerance) {
                                        (Some(e), Some(t)) => { (num(e)) " / " (num(t)) },
                                        (Some(e), None) => (num(e)),
                                        _ => "—",
                                    }
                                }
                                td.num {
                                    (or_dash(c.last_duration_us.map(|d| duration(Duration::from_micros(d)))))
                                }
                                td { (c.last_error.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
    };
    drop(p);
    Ok(Page::new("Kernels", Nav::Kernels, body))
}

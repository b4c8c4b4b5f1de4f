//! `/kernels/diff?base=RUN&new=RUN`: the regression diff of two campaign runs as a page (the
//! diff `GET /v1/campaigns/{new}/diff?base=` serves): whether it fails the gate, the cells
//! per class, then the cells, those that regressed or newly faulted first, each with both
//! sides' outcomes (faults, Xids, fallbacks) and the timing change of a cell that passed on
//! both. A missing, bad or unknown run is a 4xx page naming it.

use std::time::Duration;

use assay_projections::campaign_diff::{CellDiff, Class, Timing, TimingChange};
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::{diff_form, outcome, run_href};
use crate::http::campaigns::read_diff;
use crate::http::state::AppState;
use crate::web::layout::{Nav, duration, link, pass_badge, thead};
use crate::web::page::{Page, PageResult, Params, TABLE_MAX, Viewer, WebError, first_of, given};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    base: Option<String>,
    new: Option<String>,
}

/// Every class, in [`Class::rank`] order.
fn by_rank() -> Vec<Class> {
    let mut all = Class::ALL.to_vec();
    all.sort_by_key(|c| c.rank());
    all
}

/// A class as people read it: `newly faulted`.
fn words(class: Class) -> String {
    class.as_str().replace('_', " ")
}

pub async fn page(viewer: Viewer, State(state): State<AppState>, Params(q): Params<DiffParams>) -> Response {
    viewer.show(diff(&state, &q).await)
}

async fn diff(state: &AppState, q: &DiffParams) -> PageResult {
    let (Some(base), Some(new)) = (given(&q.base), given(&q.new)) else {
        return Err(WebError::bad_request(
            "a diff needs both runs: /kernels/diff?base=RUN&new=RUN (the run before the change, then the one after)",
        ));
    };
    let d = read_diff(state, base, new).await?;
    let mut cells: Vec<&CellDiff> = d.cells.iter().collect();
    // Stable: within a class, by kernel and variant as the diff sorts them.
    cells.sort_by_key(|c| c.class.rank());
    let shown = &cells[..cells.len().min(TABLE_MAX)];
    let body = html! {
        h1 { "Campaign diff " span #diff-base { (base) } " → " span #diff-new { (new) } }
        p.lead #diff-gate {
            (pass_badge(!d.gate_failed())) " "
            @if d.gate_failed() {
                (d.counts.regressed) " regressed and " (d.counts.newly_faulted)
                " newly faulted: `assay campaign diff` exits 1."
            } @else {
                "Nothing regressed or newly faulted."
            }
        }
        p { (link(&run_href(base), &format!("Run {base}"))) " · " (link(&run_href(new), &format!("Run {new}"))) }
        table.compact #diff-counts {
            (thead(&["class", "cells"]))
            tbody {
                @for class in by_rank() {
                    tr.{ "d-" (class.as_str()) } {
                        td { (class_badge(class)) }
                        td.num #{ "count-" (class.as_str()) } { (d.counts.get(class)) }
                    }
                }
            }
        }
        h2 { "Cells" }
        @if cells.is_empty() { p { "Neither run has a cell." } }
        @else {
            table #diff-cells {
                (thead(&["class", "kernel", "variant", "base", "new", "timing"]))
                tbody {
                    @for c in shown {
                        tr.{ "d-" (c.class.as_str()) } data-class=(c.class.as_str()) {
                            td { (class_badge(c.class)) }
                            td.kname { (c.kernel) }
                            td.mono.variant { (c.variant) }
                            td.side.base { (side(c.base.as_ref(), c)) }
                            td.side.new { (side(c.new.as_ref(), c)) }
                            td.timing { (timing(c.timing.as_ref())) }
                        }
                    }
                }
            }
            (first_of(shown.len(), cells.len(), "cells (those that fail the gate first); the JSON has them all"))
        }
        p { a href=(format!("/v1/campaigns/{}/diff?base={}", crate::web::layout::enc_path(new), crate::web::layout::enc(base))) { "This diff as JSON" } }
        h2 { "Another diff" }
        (diff_form(state, base, new))
    };
    Ok(Page::new(format!("Campaign diff {base} → {new}"), Nav::Kernels, body))
}

/// A class as a badge that says its name.
fn class_badge(class: Class) -> Markup {
    html! { span.badge.{ "d-" (class.as_str()) } { (words(class)) } }
}

/// One side of a cell, in its outcome's colour; `not in this run` when absent.
fn side(side: Option<&assay_projections::campaign_diff::Side>, c: &CellDiff) -> Markup {
    match side {
        Some(s) => html! {
            div.entry.(outcome::class(s.launch.outcome)) data-outcome=(s.launch.outcome.as_str()) {
                (outcome::side(s, &c.variant))
            }
        },
        None => html! { div.entry.k-none data-outcome="none" { "not in this run" } },
    }
}

/// `slower: 100 µs → 200 µs (×2.00)`; `—` when the cell did not pass on both sides.
fn timing(t: Option<&Timing>) -> Markup {
    let Some(t) = t else { return html! { "—" } };
    let us = |v: u64| duration(Duration::from_micros(v));
    let change = match t.change {
        TimingChange::Slower => "slower",
        TimingChange::Faster => "faster",
        TimingChange::WithinSpread => "within the spread",
        TimingChange::NoSpread => "no spread to judge by",
    };
    html! {
        span.change.{ "t-" (t.change.as_str()) } { (change) } ": " (us(t.base_us)) " → " (us(t.new_us))
        @if let Some(r) = t.ratio { " (×" (format!("{r:.2}")) ")" }
    }
}

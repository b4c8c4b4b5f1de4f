//! `/kernels`: the campaign matrix (kernel × variant × backend) as a heatmap whose cells say
//! what they hold (passed, failed, faulted), and the same numbers as a table (the `kernels`
//! projection `GET /v1/projections/kernels` serves).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use assay_projections::kernels::Cell;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{Nav, duration, num, or_dash, thead};
use super::page::{Page, PageResult, Viewer};
use super::svg::f1;
use crate::http::state::AppState;

/// Matrix rows drawn at most (a campaign matrix is small; this bounds a runaway one).
const ROWS_MAX: usize = 300;

/// The worst outcome of a cell, its CSS class and its label.
fn status(c: &Cell) -> (&'static str, String) {
    if c.faulted > 0 {
        ("k-fault", format!("{} fault · {} pass", c.faulted, c.passed))
    } else if c.failed > 0 {
        ("k-fail", format!("{} fail · {} pass", c.failed, c.passed))
    } else {
        ("k-pass", format!("{} pass", c.passed))
    }
}

pub async fn page(viewer: Viewer, State(state): State<AppState>) -> Response {
    viewer.show(kernels(&state))
}

/// A row of the matrix: kernel, variant, and its cells by backend.
type Row<'a> = (&'a String, &'a String, &'a BTreeMap<String, Cell>);

fn kernels(state: &AppState) -> PageResult {
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
                                td { (kernel) }
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

/// The matrix as a heatmap: a row per kernel and variant (at most [`ROWS_MAX`]), a column per
/// backend, each cell saying what it holds.
fn heatmap(rows: &[Row<'_>], backends: &[&str]) -> Markup {
    let shown = &rows[..rows.len().min(ROWS_MAX)];
    let (label_w, cell_w, row_h, head_h) = (520.0, 170.0, 26.0, 30.0);
    let width = label_w + cell_w * backends.len() as f64 + 10.0;
    let legend_y = head_h + row_h * shown.len() as f64 + 22.0;
    let height = legend_y + 14.0;
    let legend = [
        ("k-pass", "all passed"),
        ("k-fail", "some failed"),
        ("k-fault", "some faulted"),
        ("k-none", "not run"),
    ];
    html! {
        div.scroll {
            svg #kernel-heatmap.chart.heatmap viewBox={ "0 0 " (width) " " (height) } width=(width) role="img"
                aria-label="Campaign matrix: kernel and variant by backend" {
                title { "Campaign matrix: kernel × variant × backend" }
                @for (j, b) in backends.iter().enumerate() {
                    text.colhead x=(f1(label_w + cell_w * (j as f64 + 0.5))) y="20" text-anchor="middle" {
                        (b)
                    }
                }
                @for (i, (kernel, variant, cells)) in shown.iter().enumerate() {
                    @let y = head_h + row_h * i as f64;
                    text.tick x=(f1(label_w - 8.0)) y=(f1(y + 17.0)) text-anchor="end" {
                        tspan.kname { (kernel) } " " (variant)
                    }
                    @for (j, b) in backends.iter().enumerate() {
                        @let x = label_w + cell_w * j as f64;
                        @let (class, label) = match cells.get(*b) {
                            Some(c) => status(c),
                            None => ("k-none", "not run".to_owned()),
                        };
                        g.cell.(class) {
                            title { (kernel) " " (variant) " on " (b) ": " (label) }
                            rect x=(f1(x)) y=(f1(y)) width=(cell_w - 4.0) height=(row_h - 4.0) {}
                            text x=(f1(x + (cell_w - 4.0) / 2.0)) y=(f1(y + 16.0)) text-anchor="middle" {
                                (label)
                            }
                        }
                    }
                }
                @for (i, (class, name)) in legend.iter().enumerate() {
                    @let x = 10.0 + 150.0 * i as f64;
                    g.cell.(class).legend {
                        rect x=(x) y=(legend_y - 11.0) width="14" height="14" {}
                        text.tick x=(x + 20.0) y=(legend_y) { (name) }
                    }
                }
            }
        }
    }
}

//! `/kernels`: the campaign matrix (kernel × variant × backend) as a heatmap whose cells say
//! what they hold (passed, failed, faulted), and the same numbers as a table (the `kernels`
//! projection `GET /v1/projections/kernels` serves).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

use assay_projections::kernels::Cell;
use axum::extract::State;
use axum::response::Html;

use super::PageResult;
use super::layout::{Nav, document, duration, esc, num, or_dash, thead};
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

pub async fn page(State(state): State<AppState>) -> PageResult {
    let p = state.live.read();
    let kernels = &p.kernels;
    let totals = kernels.totals();
    let backends: BTreeSet<&str> = kernels
        .matrix()
        .values()
        .flat_map(|variants| variants.values().flat_map(|b| b.keys().map(String::as_str)))
        .collect();
    let backends: Vec<&str> = backends.into_iter().collect();
    let rows: Vec<(&String, &String, &std::collections::BTreeMap<String, Cell>)> = kernels
        .matrix()
        .iter()
        .flat_map(|(k, variants)| variants.iter().map(move |(v, cells)| (k, v, cells)))
        .collect();

    let mut body = format!(
        r#"<h1>Kernels</h1><p class="lead" id="kernel-totals">{} launches: {} passed, {} failed, {} faulted.</p>"#,
        totals.launches, totals.passed, totals.failed, totals.faulted
    );
    if rows.is_empty() {
        body.push_str("<p>No kernel launch recorded.</p>");
        drop(p);
        return Ok(Html(document("Kernels", Nav::Kernels, &body)));
    }

    // The heatmap.
    let shown = &rows[..rows.len().min(ROWS_MAX)];
    let (label_w, cell_w, row_h, head_h) = (520.0, 170.0, 26.0, 30.0);
    let width = label_w + cell_w * backends.len() as f64 + 10.0;
    let legend_y = head_h + row_h * shown.len() as f64 + 22.0;
    let height = legend_y + 14.0;
    let _ = write!(
        body,
        r#"<div class="scroll"><svg id="kernel-heatmap" class="chart heatmap" viewBox="0 0 {width} {height}" width="{width}" role="img" aria-label="Campaign matrix: kernel and variant by backend"><title>Campaign matrix: kernel × variant × backend</title>"#
    );
    for (j, b) in backends.iter().enumerate() {
        let _ = write!(
            body,
            r#"<text class="colhead" x="{:.1}" y="20" text-anchor="middle">{}</text>"#,
            label_w + cell_w * (j as f64 + 0.5),
            esc(b)
        );
    }
    for (i, (kernel, variant, cells)) in shown.iter().enumerate() {
        let y = head_h + row_h * i as f64;
        let _ = write!(
            body,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="end"><tspan class="kname">{}</tspan> {}</text>"#,
            label_w - 8.0,
            y + 17.0,
            esc(kernel),
            esc(variant)
        );
        for (j, b) in backends.iter().enumerate() {
            let x = label_w + cell_w * j as f64;
            let (class, label) = match cells.get(*b) {
                Some(c) => status(c),
                None => ("k-none", "not run".to_owned()),
            };
            let _ = write!(
                body,
                r#"<g class="cell {class}"><title>{title}</title><rect x="{x:.1}" y="{y:.1}" width="{w}" height="{h}"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text></g>"#,
                title = esc(&format!("{kernel} {variant} on {b}: {label}")),
                w = cell_w - 4.0,
                h = row_h - 4.0,
                tx = x + (cell_w - 4.0) / 2.0,
                ty = y + 16.0,
                label = esc(&label),
            );
        }
    }
    for (i, (class, name)) in [
        ("k-pass", "all passed"),
        ("k-fail", "some failed"),
        ("k-fault", "some faulted"),
        ("k-none", "not run"),
    ]
    .iter()
    .enumerate()
    {
        let x = 10.0 + 150.0 * i as f64;
        let _ = write!(
            body,
            r#"<g class="cell {class} legend"><rect x="{x}" y="{ry}" width="14" height="14"/><text class="tick" x="{tx}" y="{legend_y}">{name}</text></g>"#,
            ry = legend_y - 11.0,
            tx = x + 20.0,
        );
    }
    body.push_str("</svg></div>");
    if rows.len() > ROWS_MAX {
        let _ = write!(
            body,
            r#"<p class="note">The first {ROWS_MAX} of {} rows; the table below has them all.</p>"#,
            rows.len()
        );
    }

    // The same numbers, as text.
    let _ = write!(
        body,
        r#"<h2>Cells</h2><p><label>Search <input type="search" data-filter-table="kernel-cells" placeholder="kernel, variant, backend, error"></label></p><table id="kernel-cells">{}<tbody>"#,
        thead(&[
            "kernel",
            "variant",
            "backend",
            "passed",
            "failed",
            "faulted",
            "max abs err / tolerance",
            "duration",
            "last error"
        ])
    );
    for (kernel, variant, cells) in &rows {
        for (b, c) in cells.iter() {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td class="mono">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                esc(kernel),
                esc(variant),
                esc(b),
                c.passed,
                c.failed,
                c.faulted,
                match (c.last_max_abs_err, c.last_tolerance) {
                    (Some(e), Some(t)) => format!("{} / {}", num(e), num(t)),
                    (Some(e), None) => num(e),
                    _ => "—".to_owned(),
                },
                or_dash(c.last_duration_us.map(|d| duration(Duration::from_micros(d)))),
                esc(c.last_error.as_deref().unwrap_or("—")),
            );
        }
    }
    body.push_str("</tbody></table>");
    drop(p);
    Ok(Html(document("Kernels", Nav::Kernels, &body)))
}

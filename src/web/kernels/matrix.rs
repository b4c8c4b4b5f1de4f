//! `/kernels/run/{run}`: one campaign run's matrix, one kernel at a time (`?kernel=NAME`,
//! default the first by name), read from the store as `GET /v1/campaigns/{run}` reads it.
//! `rows=AXIS` and `cols=AXIS` lay it out (defaults: see [`super::axes`]); the other axes are
//! stacked inside each cell, each entry labelled with their values, unless `where.AXIS=VALUE`
//! holds one at a value (an axis with one value in every cell is said once above the matrix). Each cell is coloured by its outcome and says it in words, with the
//! fault's name, the attached Xids and the fallback's outcome. A bad parameter is a 400 page
//! naming it; an unknown run a 404.

use std::collections::{BTreeMap, BTreeSet};

use assay_projections::campaign_diff::{Outcome, RunCell};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};

use super::axes::{Axis, AxisValue, Layout, axes, choose, constants};
use super::{diff_form, outcome, run_href};
use crate::http::campaigns::read_run;
use crate::http::state::AppState;
use crate::web::layout::Nav;
use crate::web::page::{Page, PageResult, Params, Viewer, WebError, first_of};

/// Matrix rows drawn at most.
const ROWS_MAX: usize = 300;
/// Matrix columns drawn at most.
const COLS_MAX: usize = 40;
/// Stacked entries drawn in one matrix cell at most.
const ENTRIES_MAX: usize = 16;
/// Kernels offered in the kernel form at most.
const KERNELS_MAX: usize = 500;
/// Query parameters taken at most.
const PARAMS_MAX: usize = 64;

/// The page's query: `kernel`, `rows`, `cols`, `where.AXIS` (blank values are not given).
#[derive(Debug, Default)]
struct MatrixQuery {
    kernel: Option<String>,
    rows: Option<String>,
    cols: Option<String>,
    filters: BTreeMap<String, String>,
}

impl MatrixQuery {
    fn parse(pairs: Vec<(String, String)>) -> Result<MatrixQuery, WebError> {
        if pairs.len() > PARAMS_MAX {
            return Err(WebError::bad_request(format!("more than {PARAMS_MAX} query parameters")));
        }
        let mut q = MatrixQuery::default();
        let mut seen = BTreeSet::new();
        for (key, value) in pairs {
            if !seen.insert(key.clone()) {
                return Err(WebError::bad_request(format!("the parameter {key:?} is given twice")));
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let slot = match key.as_str() {
                "kernel" => &mut q.kernel,
                "rows" => &mut q.rows,
                "cols" => &mut q.cols,
                other => match other.strip_prefix("where.") {
                    Some(axis) if !axis.is_empty() => {
                        q.filters.insert(axis.to_owned(), value.to_owned());
                        continue;
                    }
                    _ => {
                        return Err(WebError::bad_request(format!(
                            "unknown parameter {other:?}: this page takes kernel, rows, cols and where.AXIS"
                        )));
                    }
                },
            };
            *slot = Some(value.to_owned());
        }
        Ok(q)
    }
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(run): Path<String>,
    Params(pairs): Params<Vec<(String, String)>>,
) -> Response {
    viewer.show(matrix(&state, &run, pairs).await)
}

async fn matrix(state: &AppState, run: &str, pairs: Vec<(String, String)>) -> PageResult {
    let q = MatrixQuery::parse(pairs)?;
    let launches = read_run(state, run).await?;
    let cells = launches.cells();
    let kernels: Vec<&str> =
        cells.iter().map(|c| c.kernel.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let kernel = match q.kernel.as_deref() {
        None => kernels.first().copied().unwrap_or_default(),
        Some(k) if kernels.contains(&k) => k,
        Some(k) => {
            return Err(WebError::bad_request(format!(
                "kernel: run {run:?} has no kernel {k:?}; it has {}",
                kernels.iter().take(20).copied().collect::<Vec<_>>().join(", ")
            )));
        }
    };
    let of_kernel: Vec<&RunCell> = cells.iter().filter(|c| c.kernel == kernel).collect();
    let axes = axes(&of_kernel);
    let layout = choose(kernel, &axes, q.rows.as_deref(), q.cols.as_deref(), &q.filters)
        .map_err(WebError::bad_request)?;
    let kept: Vec<&RunCell> = of_kernel.iter().copied().filter(|c| layout.keeps(c)).collect();
    let grid = Grid::of(&kept, &layout);

    let count = |o: Outcome| cells.iter().filter(|c| c.side.launch.outcome == o).count();
    let fallbacks = cells.iter().filter(|c| c.side.fallback.is_some()).count();
    let body = html! {
        h1 { "Campaign run " span #run-id { (run) } }
        p.lead #run-totals {
            (cells.len()) " cells of " (kernels.len()) " kernel(s): " (count(Outcome::Passed)) " passed, "
            (count(Outcome::Failed)) " failed, " (count(Outcome::Faulted)) " faulted; "
            (fallbacks) " fallback(s) ran."
        }
        form.filters #kernel-form method="get" action=(run_href(run)) {
            label {
                "Kernel "
                select name="kernel" {
                    @for k in kernels.iter().take(KERNELS_MAX) {
                        option value=(k) selected[*k == kernel] { (k) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        (first_of(kernels.len().min(KERNELS_MAX), kernels.len(), "kernels are offered"))
        h2 #kernel-name.kname { (kernel) }
        (layout_form(run, kernel, &axes, &layout))
        (table(&grid, &layout, &axes))
        (legend())
        h2 { "Compare" }
        (diff_form(state, "", run))
        p { a href={ "/v1/campaigns/" (crate::web::layout::enc_path(run)) } { "This run's cells as JSON" } }
    };
    Ok(Page::new(format!("Campaign run {run}"), Nav::Kernels, body))
}

/// The form choosing rows, columns and held values (the kernel stays).
fn layout_form(run: &str, kernel: &str, axes: &[Axis], layout: &Layout) -> Markup {
    let axis_select = |name: &str, current: Option<&str>| {
        html! {
            select name=(name) {
                @if current.is_none() { option value="" selected { "none" } }
                @for a in axes {
                    option value=(a.name) selected[current == Some(a.name.as_str())] { (a.name) }
                }
            }
        }
    };
    let stacked = layout.stacked(axes);
    html! {
        form.filters #layout-form method="get" action=(run_href(run)) {
            input type="hidden" name="kernel" value=(kernel);
            label { "Rows " (axis_select("rows", layout.rows.as_deref())) }
            label { "Columns " (axis_select("cols", layout.cols.as_deref())) }
            @for a in axes {
                @if Some(a.name.as_str()) != layout.rows.as_deref() && Some(a.name.as_str()) != layout.cols.as_deref() {
                    @let held = layout.filters.get(&a.name);
                    label {
                        "where " (a.name) " = "
                        select name={ "where." (a.name) } {
                            option value="" selected[held.is_none()] { "any" }
                            @for v in a.values.iter().filter(|v| !matches!(v, AxisValue::Absent)) {
                                option value=(v.text()) selected[held.map(String::as_str) == Some(v.text())] { (v.text()) }
                            }
                        }
                    }
                }
            }
            button type="submit" { "Lay out" }
        }
        @let same = constants(axes);
        @if !same.is_empty() {
            p.note #constants { "In every cell: " (same.join(", ")) "." }
        }
        @if !stacked.is_empty() {
            p.note #stacked { "Stacked in each cell: " (stacked.join(", ")) "." }
        }
    }
}

/// The kept cells by (row, column) value.
struct Grid<'a> {
    rows: Vec<AxisValue>,
    cols: Vec<AxisValue>,
    cells: BTreeMap<(AxisValue, AxisValue), Vec<&'a RunCell>>,
}

impl<'a> Grid<'a> {
    fn of(kept: &[&'a RunCell], layout: &Layout) -> Grid<'a> {
        let at = |axis: &Option<String>, c: &RunCell| match axis {
            Some(a) => AxisValue::of(&c.variant, a),
            None => AxisValue::Absent,
        };
        let mut cells: BTreeMap<(AxisValue, AxisValue), Vec<&RunCell>> = BTreeMap::new();
        for c in kept {
            cells.entry((at(&layout.rows, c), at(&layout.cols, c))).or_default().push(c);
        }
        let rows: BTreeSet<AxisValue> = cells.keys().map(|(r, _)| r.clone()).collect();
        let cols: BTreeSet<AxisValue> = cells.keys().map(|(_, c)| c.clone()).collect();
        Grid { rows: rows.into_iter().collect(), cols: cols.into_iter().collect(), cells }
    }
}

/// The matrix as a table: a row per value of the rows axis, a column per value of the
/// columns axis (at most [`ROWS_MAX`] × [`COLS_MAX`]).
fn table(grid: &Grid<'_>, layout: &Layout, axes: &[Axis]) -> Markup {
    let stacked = layout.stacked(axes);
    let (rows, cols) =
        (&grid.rows[..grid.rows.len().min(ROWS_MAX)], &grid.cols[..grid.cols.len().min(COLS_MAX)]);
    let corner = format!(
        "{} ↓ {} →",
        layout.rows.as_deref().unwrap_or("(no axis)"),
        layout.cols.as_deref().unwrap_or("")
    );
    html! {
        @if grid.cells.is_empty() {
            p #matrix-empty { "No cell of this kernel has the values chosen." }
        } @else {
            div.scroll {
                table #matrix.matrix {
                    thead {
                        tr {
                            th.corner scope="col" { (corner) }
                            @for c in cols { th scope="col" data-col=(c.text()) { (c.text()) } }
                        }
                    }
                    tbody {
                        @for r in rows {
                            tr {
                                th scope="row" data-row=(r.text()) { (r.text()) }
                                @for c in cols {
                                    (cell(grid.cells.get(&(r.clone(), c.clone())), r, c, &stacked))
                                }
                            }
                        }
                    }
                }
            }
            (first_of(rows.len(), grid.rows.len(), "rows are drawn"))
            (first_of(cols.len(), grid.cols.len(), "columns are drawn"))
        }
    }
}

/// One matrix cell: its entries (one per stacked combination), in the colour of the worst.
fn cell(entries: Option<&Vec<&RunCell>>, row: &AxisValue, col: &AxisValue, stacked: &[&str]) -> Markup {
    let Some(entries) = entries.filter(|e| !e.is_empty()) else {
        return html! { td.k-none data-row=(row.text()) data-col=(col.text()) data-outcome="none" { "not run" } };
    };
    let worst = entries.iter().map(|c| c.side.launch.outcome).fold(Outcome::Passed, outcome::worse);
    let label = |c: &RunCell| {
        stacked
            .iter()
            .map(|a| format!("{a}={}", AxisValue::of(&c.variant, a).text()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        td.(outcome::class(worst)) data-row=(row.text()) data-col=(col.text()) data-outcome=(worst.as_str()) {
            @for c in entries.iter().take(ENTRIES_MAX) {
                div.entry.(outcome::class(c.side.launch.outcome)) data-outcome=(c.side.launch.outcome.as_str())
                    title={ (c.kernel) " " (c.variant) } {
                    @if !stacked.is_empty() { span.label { (label(c)) } " " }
                    (outcome::side(&c.side, &c.variant))
                }
            }
            @if entries.len() > ENTRIES_MAX { div.note { "+" (entries.len() - ENTRIES_MAX) " more" } }
        }
    }
}

/// What the colours mean (each cell also says it in words).
fn legend() -> Markup {
    html! {
        p.legend #matrix-legend {
            @for (class, name) in [("k-pass", "passed"), ("k-fail", "failed"), ("k-fault", "faulted"), ("k-none", "not run")] {
                span.entry.(class) { (name) } " "
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_query_takes_kernel_rows_cols_and_where() {
        let q = MatrixQuery::parse(pairs(&[
            ("kernel", "gemm"),
            ("rows", "m"),
            ("cols", " "),
            ("where.seed", "1"),
            ("where.dtype", ""),
        ]))
        .expect("a query");
        assert_eq!((q.kernel.as_deref(), q.rows.as_deref(), q.cols), (Some("gemm"), Some("m"), None));
        assert_eq!(q.filters, BTreeMap::from([("seed".to_owned(), "1".to_owned())]), "blank is not given");
        for (bad, needle) in [
            (pairs(&[("row", "m")]), "unknown parameter \"row\""),
            (pairs(&[("where.", "1")]), "unknown parameter \"where.\""),
            (pairs(&[("rows", "m"), ("rows", "n")]), "given twice"),
        ] {
            let err = MatrixQuery::parse(bad).expect_err("refused");
            assert!(err.detail.contains(needle), "{}", err.detail);
        }
        let many: Vec<(String, String)> =
            (0..=PARAMS_MAX).map(|i| (format!("where.a{i}"), "1".to_owned())).collect();
        assert!(MatrixQuery::parse(many).is_err());
    }
}

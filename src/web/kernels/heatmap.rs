//! The whole ledger's kernel matrix as an SVG heatmap: a row per kernel and variant, a column
//! per backend. SVG text does not wrap or measure itself, so the label column is as wide as
//! its longest label at [`LABEL_CHAR_W`] per character: a kernel name is never clipped.

use std::collections::BTreeMap;

use assay_projections::kernels::Cell;
use maud::{Markup, html};

use crate::web::svg::f1;

/// Matrix rows drawn at most (a campaign matrix is small; this bounds a runaway one).
pub const ROWS_MAX: usize = 300;

/// Width of one character of a row label (11 px, the kernel name bold), in px: wide enough
/// for the widest Latin glyphs, so a label is never clipped.
const LABEL_CHAR_W: f64 = 7.5;

/// The narrowest label column, in px.
const LABEL_W_MIN: f64 = 160.0;

/// A row of the matrix: kernel, variant, and its cells by backend.
pub type Row<'a> = (&'a String, &'a String, &'a BTreeMap<String, Cell>);

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

/// The label column's width for `rows`: the longest label (`kernel variant`) measured by
/// characters, with room for the gap before the cells.
pub fn label_width(rows: &[Row<'_>]) -> f64 {
    let chars = rows.iter().map(|(k, v, _)| k.chars().count() + 1 + v.chars().count()).max().unwrap_or(0);
    (chars as f64 * LABEL_CHAR_W + 16.0).max(LABEL_W_MIN)
}

/// The matrix as a heatmap: a row per kernel and variant (at most [`ROWS_MAX`]), a column per
/// backend, each cell saying what it holds.
pub fn heatmap(rows: &[Row<'_>], backends: &[&str]) -> Markup {
    let shown = &rows[..rows.len().min(ROWS_MAX)];
    let (label_w, cell_w, row_h, head_h) = (label_width(shown), 170.0, 26.0, 30.0);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_column_fits_the_longest_label() {
        let cells = BTreeMap::new();
        let (short, variant) = ("saxpy".to_owned(), "{}".to_owned());
        let long = format!("flashinfer_{}", "x".repeat(120));
        assert_eq!(label_width(&[(&short, &variant, &cells)]), LABEL_W_MIN);
        let w = label_width(&[(&short, &variant, &cells), (&long, &variant, &cells)]);
        assert!(w >= (long.len() + 3) as f64 * LABEL_CHAR_W, "{w}");
        let html = heatmap(&[(&long, &variant, &cells)], &["cpu"]).into_string();
        // The label ends 8 px before the cells and starts at or after 0.
        assert!(html.contains(&format!(r#"x="{}""#, f1(w - 8.0))), "{html}");
        assert!(html.contains(&long), "the whole name is in the label");
    }
}

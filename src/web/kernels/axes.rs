//! A kernel's axes in one campaign run, and the layout of its matrix: which axis runs down
//! the rows, which across the columns, which values the others are held at. Pure: the page
//! ([`super::matrix`]) draws what this chooses.
//!
//! A variant is an open JSON object, so a kernel's axes are the union of its cells' keys; a
//! cell without one of them has the value [`AxisValue::Absent`] there. By default the rows are
//! the axis with the most distinct values and the columns the next (ties by name); every
//! other axis is stacked inside the matrix's cells, each entry labelled with its values,
//! unless `where.AXIS=VALUE` holds it at one value.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use assay_projections::campaign_diff::RunCell;
use serde_json::Value;

/// One value of an axis: numbers order by value, before text; a cell lacking the axis last.
#[derive(Debug, Clone)]
pub enum AxisValue {
    /// A JSON number, with its JSON text.
    Num(f64, String),
    /// A string as itself; any other JSON (bool, array, object) as its JSON text.
    Text(String),
    Absent,
}

impl AxisValue {
    /// The value of `axis` in `variant`.
    pub fn of(variant: &Value, axis: &str) -> AxisValue {
        match variant.get(axis) {
            None => AxisValue::Absent,
            Some(Value::Number(n)) => AxisValue::Num(n.as_f64().unwrap_or(f64::NAN), n.to_string()),
            Some(Value::String(s)) => AxisValue::Text(s.clone()),
            Some(other) => AxisValue::Text(other.to_string()),
        }
    }

    /// As shown, and as `where.AXIS=` names it (`—` for a cell lacking the axis).
    pub fn text(&self) -> &str {
        match self {
            AxisValue::Num(_, t) | AxisValue::Text(t) => t,
            AxisValue::Absent => "—",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            AxisValue::Num(..) => 0,
            AxisValue::Text(_) => 1,
            AxisValue::Absent => 2,
        }
    }
}

impl Ord for AxisValue {
    fn cmp(&self, other: &AxisValue) -> Ordering {
        match (self, other) {
            (AxisValue::Num(a, at), AxisValue::Num(b, bt)) => a.total_cmp(b).then_with(|| at.cmp(bt)),
            (AxisValue::Text(a), AxisValue::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for AxisValue {
    fn partial_cmp(&self, other: &AxisValue) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for AxisValue {
    fn eq(&self, other: &AxisValue) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for AxisValue {}

/// An axis of a kernel and its distinct values, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<AxisValue>,
}

/// The axes of `cells` (one kernel's), by name.
pub fn axes(cells: &[&RunCell]) -> Vec<Axis> {
    let names: BTreeSet<&str> = cells
        .iter()
        .filter_map(|c| c.variant.as_object())
        .flat_map(|o| o.keys().map(String::as_str))
        .collect();
    names
        .into_iter()
        .map(|name| {
            let values: BTreeSet<AxisValue> = cells.iter().map(|c| AxisValue::of(&c.variant, name)).collect();
            Axis { name: name.to_owned(), values: values.into_iter().collect() }
        })
        .collect()
}

/// How the matrix is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The axis down the rows; `None` for a kernel without axes (one row).
    pub rows: Option<String>,
    /// The axis across the columns; `None` for a kernel with at most one axis.
    pub cols: Option<String>,
    /// Axes held at one value (`where.AXIS=VALUE`), by name.
    pub filters: BTreeMap<String, String>,
}

impl Layout {
    /// Whether `cell` has the values the filters hold their axes at.
    pub fn keeps(&self, cell: &RunCell) -> bool {
        self.filters.iter().all(|(axis, value)| AxisValue::of(&cell.variant, axis).text() == value)
    }

    /// The axes stacked inside a matrix cell: neither rows nor columns, nor held by a filter,
    /// nor of one value in every cell (see [`constants`]).
    pub fn stacked<'a>(&self, axes: &'a [Axis]) -> Vec<&'a str> {
        axes.iter()
            .filter(|a| a.values.len() > 1)
            .map(|a| a.name.as_str())
            .filter(|n| Some(*n) != self.rows.as_deref() && Some(*n) != self.cols.as_deref())
            .filter(|n| !self.filters.contains_key(*n))
            .collect()
    }
}

/// `axis=value` of the axes with one value in every cell: said once, not on every entry.
pub fn constants(axes: &[Axis]) -> Vec<String> {
    axes.iter()
        .filter_map(|a| match a.values.as_slice() {
            [one] => Some(format!("{}={}", a.name, one.text())),
            _ => None,
        })
        .collect()
}

/// The names of `axes`, for error messages.
fn names(axes: &[Axis]) -> String {
    if axes.is_empty() {
        return "none".to_owned();
    }
    axes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// The layout asked for (`rows`, `cols`, `where.AXIS` values), defaults filled in, or why it
/// cannot be drawn (an axis the kernel lacks, rows and columns on one axis, a value no cell
/// has).
pub fn choose(
    kernel: &str,
    axes: &[Axis],
    rows: Option<&str>,
    cols: Option<&str>,
    filters: &BTreeMap<String, String>,
) -> Result<Layout, String> {
    let axis = |name: &str, what: &str| {
        axes.iter().find(|a| a.name == name).ok_or_else(|| {
            format!("{what}: kernel {kernel:?} has no axis {name:?}; its axes: {}", names(axes))
        })
    };
    for (name, value) in filters {
        let a = axis(name, &format!("where.{name}"))?;
        if !a.values.iter().any(|v| v.text() == value) {
            let values: Vec<&str> = a.values.iter().take(20).map(AxisValue::text).collect();
            return Err(format!(
                "where.{name}: no cell of kernel {kernel:?} has {name} = {value:?}; its values: {}",
                values.join(", ")
            ));
        }
    }
    if let Some(r) = rows {
        axis(r, "rows")?;
    }
    if let Some(c) = cols {
        axis(c, "cols")?;
    }
    if rows.is_some() && rows == cols {
        return Err(format!("rows and cols are both {:?}: choose two different axes", rows.unwrap_or("")));
    }
    // Axes not held first (a held axis has one value to show), then most distinct values
    // first, then by name.
    let mut ranked: Vec<&Axis> = axes.iter().collect();
    ranked.sort_by(|a, b| {
        let held = |x: &Axis| filters.contains_key(&x.name);
        held(a)
            .cmp(&held(b))
            .then_with(|| b.values.len().cmp(&a.values.len()))
            .then_with(|| a.name.cmp(&b.name))
    });
    let best_other = |not: Option<&str>| ranked.iter().map(|a| a.name.as_str()).find(|n| Some(*n) != not);
    let rows = rows.or_else(|| best_other(cols));
    let cols = cols.or_else(|| best_other(rows));
    Ok(Layout { rows: rows.map(str::to_owned), cols: cols.map(str::to_owned), filters: filters.clone() })
}

#[cfg(test)]
mod tests {
    use assay_projections::campaign_diff::{Launch, Outcome, Side};
    use serde_json::json;

    use super::*;

    fn cell(variant: Value) -> RunCell {
        let launch = Launch {
            outcome: Outcome::Passed,
            error: None,
            duration_us: None,
            repeats: None,
            xids: Vec::new(),
            launch: None,
            seq: 0,
        };
        RunCell { kernel: "k".to_owned(), variant, side: Side { launch, fallback: None } }
    }

    fn texts(axis: &Axis) -> Vec<&str> {
        axis.values.iter().map(AxisValue::text).collect()
    }

    #[test]
    fn values_order_numbers_by_value_then_text_then_absent() {
        let cells = [
            cell(json!({"m": 128, "route": "b"})),
            cell(json!({"m": 64, "route": "a"})),
            cell(json!({"m": 1024, "route": "a", "x": true})),
            cell(json!({"m": "big", "route": "a"})),
            cell(json!({"m": 64.5, "route": "a"})),
        ];
        let refs: Vec<&RunCell> = cells.iter().collect();
        let axes = axes(&refs);
        let names: Vec<&str> = axes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["m", "route", "x"]);
        assert_eq!(texts(&axes[0]), ["64", "64.5", "128", "1024", "big"]);
        assert_eq!(texts(&axes[1]), ["a", "b"]);
        assert_eq!(texts(&axes[2]), ["true", "—"], "a cell lacking the axis has it absent");
    }

    #[test]
    fn defaults_are_the_two_axes_with_the_most_values() {
        let cells: Vec<RunCell> = (0..4)
            .flat_map(|m| ["a", "b", "c"].map(|r| cell(json!({"m": m, "route": r, "seed": 1}))))
            .collect();
        let refs: Vec<&RunCell> = cells.iter().collect();
        let axes = axes(&refs);
        let none = BTreeMap::new();
        let l = choose("k", &axes, None, None, &none).expect("a layout");
        assert_eq!((l.rows.as_deref(), l.cols.as_deref()), (Some("m"), Some("route")));
        assert!(l.stacked(&axes).is_empty(), "seed has one value: not stacked");
        assert_eq!(constants(&axes), ["seed=1"]);
        let l = choose("k", &axes, Some("route"), None, &none).expect("a layout");
        assert_eq!((l.rows.as_deref(), l.cols.as_deref()), (Some("route"), Some("m")));
        let l = choose("k", &axes, None, Some("m"), &none).expect("a layout");
        assert_eq!((l.rows.as_deref(), l.cols.as_deref()), (Some("route"), Some("m")));
        let l = choose("k", &axes, Some("seed"), Some("route"), &none).expect("a layout");
        assert_eq!(l.stacked(&axes), ["m"]);
        let held = BTreeMap::from([("m".to_owned(), "2".to_owned())]);
        let l = choose("k", &axes, None, None, &held).expect("a layout");
        assert_eq!((l.rows.as_deref(), l.cols.as_deref()), (Some("route"), Some("seed")), "held axes last");
        assert!(l.stacked(&axes).is_empty(), "a held axis is not stacked");
        assert!(l.keeps(&cells[6]) && !l.keeps(&cells[0]), "m=2 only");
        let l = choose("k", &axes, Some("seed"), None, &held).expect("a layout");
        assert_eq!(l.cols.as_deref(), Some("route"));
        let l = choose("k", &axes, Some("seed"), Some("route"), &held).expect("a layout");
        assert!(l.stacked(&axes).is_empty());

        // One axis: rows only; none: one cell.
        let one = [cell(json!({"n": 1})), cell(json!({"n": 2}))];
        let one: Vec<&RunCell> = one.iter().collect();
        let l = choose("k", &super::axes(&one), None, None, &none).expect("a layout");
        assert_eq!((l.rows.as_deref(), l.cols), (Some("n"), None));
        let bare = [cell(json!({}))];
        let bare: Vec<&RunCell> = bare.iter().collect();
        let l = choose("k", &super::axes(&bare), None, None, &none).expect("a layout");
        assert_eq!((l.rows, l.cols), (None, None));
    }

    #[test]
    fn bad_layouts_say_what_is_wrong() {
        let cells = [cell(json!({"m": 1, "route": "a"})), cell(json!({"m": 2, "route": "b"}))];
        let refs: Vec<&RunCell> = cells.iter().collect();
        let axes = axes(&refs);
        let none = BTreeMap::new();
        let err = choose("gemm", &axes, Some("n"), None, &none).expect_err("no axis n");
        assert_eq!(err, r#"rows: kernel "gemm" has no axis "n"; its axes: m, route"#);
        let err = choose("gemm", &axes, None, Some("q"), &none).expect_err("no axis q");
        assert!(err.starts_with("cols: "), "{err}");
        let err = choose("gemm", &axes, Some("m"), Some("m"), &none).expect_err("one axis twice");
        assert!(err.contains("both \"m\""), "{err}");
        let held = BTreeMap::from([("m".to_owned(), "3".to_owned())]);
        let err = choose("gemm", &axes, None, None, &held).expect_err("no m = 3");
        assert_eq!(err, r#"where.m: no cell of kernel "gemm" has m = "3"; its values: 1, 2"#);
        let held = BTreeMap::from([("z".to_owned(), "3".to_owned())]);
        let err = choose("gemm", &axes, None, None, &held).expect_err("no axis z");
        assert!(err.starts_with("where.z: kernel \"gemm\" has no axis \"z\""), "{err}");
    }
}

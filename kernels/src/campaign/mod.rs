//! Campaigns: a TOML file naming kernels and a variant matrix, expanded into cells, each run
//! and recorded as `kernel.launch.completed` or `kernel.launch.faulted`.
//!
//! ```toml
//! name = "smoke"                       # identifier; the default run id starts with it
//! description = "every kernel, small"  # optional
//! seed = [1, 2]                        # default seeds (an axis)
//! range = [-1.0, 1.0]                  # default input range [lo, hi)
//! tolerance = 1e-4                     # default tolerance (max abs error)
//!
//! [[kernel]]
//! name = "matmul_tiled"
//! shape = [{ m = 33, n = 65, k = 7 }, { m = 64, n = 64, k = 64 }]
//! tile = [8, 16]
//! tolerance = 1e-4
//! ```
//!
//! In a `[[kernel]]` table, `name`, `tolerance`, `range` and `seed` are settings; every other
//! key is an axis of the matrix. A scalar is one value, an array lists values, and a table
//! (or an array of tables, like `shape` above) is a group of parameters set together. The
//! cells are the cartesian product of the axes (in key order), times the seeds. `seed` is an
//! integer, an array of integers, or `{ first = 0, count = 1000 }`.
//!
//! The lab's own work goes in `[[command]]` tables (any program; see `command.rs`) and
//! `[[cuda]]` tables (their own `.cu` kernels, compiled with NVRTC; see `cuda_table.rs`).

mod capture;
mod cell;
mod command;
mod command_run;
mod cuda_cell;
mod cuda_scan;
mod cuda_table;
mod isolate;
mod kept;
mod result;
mod routes;
mod runner;
mod summary;
pub mod taxonomy;
mod xids;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use capture::{KEPT_BYTES_MAX, RESULT_PREFIX, Spool, StreamReport, TAIL_BYTES_MAX};
pub use cell::{CellOutcome, Completed, Faulted, run_cell_cpu, run_cell_cuda};
pub use command::{COMMAND_SETTINGS, CommandCell, REPEAT_MAX, locate, substitute};
pub use command_run::{
    CommandEnv, CommandLaunch, Execution, Repeats, Verdict, execute, judge, run_command_cell,
};
pub use cuda_cell::{
    Judgement, NOT_RUNNABLE, generate_inputs, inputs_digest, judge_output, not_runnable, run_source_cell,
};
pub use cuda_scan::{entry_points, eval_size};
pub use cuda_table::{BUILTIN_REFERENCES, CUDA_SETTINGS, SourceCell, SourceLaunch, SourceReference};
pub use isolate::{CellRequest, ChildCommand, IsolatedRunner, ServeHooks, serve_cells, signal_name};
pub use result::{CellResult, ResultError, parse_result};
pub use routes::{ROUTE_AXIS, RouteComparison, RouteTiming, Routes};
pub use runner::{CampaignOptions, CampaignReport, Isolation, run_campaign};
pub use summary::{KernelCounts, Summary};
pub use xids::{SeenXid, XidWatch, line_time};

use crate::cpu::{InputRange, KernelSpec};

/// Most cells one campaign may expand to.
pub const MAX_CELLS: usize = 1_000_000;

/// Kernel names a campaign may use.
pub const KERNEL_NAMES: &[&str] =
    &["saxpy", "reduce_sum", "matmul_tiled", "matmul_tiled_broken", "softmax_rows", "fp4_dequant_matmul"];

/// Why a campaign file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CampaignError(pub String);

pub(crate) fn err<T>(message: impl Into<String>) -> Result<T, CampaignError> {
    Err(CampaignError(message.into()))
}

/// One cell of the matrix: a kernel variant, its seed, input range and tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The kernel and its parameters.
    pub spec: KernelSpec,
    /// Seed of the input generator.
    pub seed: u64,
    /// Range the inputs are drawn from.
    pub range: InputRange,
    /// Largest absolute error that passes.
    pub tolerance: f64,
}

impl Cell {
    /// The element type of the kernel's weights: `e2m1` for the FP4 kernel, else `f32`.
    pub fn dtype(&self) -> &'static str {
        match self.spec {
            KernelSpec::Fp4DequantMatmul { .. } => "e2m1",
            _ => "f32",
        }
    }

    /// The `variant` object recorded with each launch: the kernel's parameters, `dtype`,
    /// `seed`, and `range` when it is not the default `[-1, 1)`.
    pub fn variant(&self) -> Value {
        let mut variant = self.spec.variant();
        if let Some(object) = variant.as_object_mut() {
            object.insert("dtype".into(), Value::from(self.dtype()));
            object.insert("seed".into(), Value::from(self.seed));
            if self.range != InputRange::default() {
                object.insert("range".into(), serde_json::json!([self.range.lo, self.range.hi]));
            }
        }
        variant
    }

    /// A short human label: `n=1000 alpha=2 seed=1`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Value::Object(map) = self.spec.variant() {
            for (key, value) in map {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                parts.push(format!("{key}={text}"));
            }
        }
        parts.push(format!("seed={}", self.seed));
        parts.join(" ")
    }
}

/// A parsed campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// The campaign's name (an identifier).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The run id to record under, when the file names one.
    pub run: Option<String>,
    /// Every built-in kernel cell, in matrix order.
    pub cells: Vec<Cell>,
    /// Every `[[cuda]]` cell, in matrix order (run after the built-in cells).
    pub cuda: Vec<SourceCell>,
    /// Every command cell, in matrix order (run after the `[[cuda]]` cells).
    pub commands: Vec<CommandCell>,
}

impl Campaign {
    /// Reads and parses a campaign file.
    pub fn load(path: &Path) -> Result<Campaign, CampaignError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CampaignError(format!("reading {}: {e}", path.display())))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        Campaign::parse_in(&text, dir).map_err(|e| CampaignError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses campaign TOML; command cells run in (and their paths are relative to) the
    /// current folder.
    pub fn parse(text: &str) -> Result<Campaign, CampaignError> {
        Campaign::parse_in(text, Path::new("."))
    }

    /// Parses campaign TOML whose command cells run in (and name paths relative to) `dir`.
    pub fn parse_in(text: &str, dir: &Path) -> Result<Campaign, CampaignError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| CampaignError(format!("not valid TOML: {e}")))?;
        let mut top = to_json_map(table)?;
        let name = match top.remove("name") {
            Some(Value::String(name)) if crate::sink::is_identifier(&name) => name,
            Some(other) => {
                return err(format!(
                    "name must be an identifier (letters, digits, ._:/-, starting with a letter or digit), got {other}"
                ));
            }
            None => return err("the campaign has no name"),
        };
        let description = match top.remove("description") {
            None => None,
            Some(Value::String(text)) => Some(text),
            Some(other) => return err(format!("description must be a string, got {other}")),
        };
        let run = match top.remove("run") {
            None => None,
            Some(Value::String(run)) if crate::sink::is_identifier(&run) => Some(run),
            Some(other) => return err(format!("run must be an identifier, got {other}")),
        };
        let defaults = Settings {
            seeds: match top.remove("seed") {
                Some(value) => Some(seeds(&value).map_err(|e| CampaignError(format!("seed: {}", e.0)))?),
                None => None,
            },
            range: match top.remove("range") {
                Some(value) => Some(range(&value)?),
                None => None,
            },
            tolerance: match top.remove("tolerance") {
                Some(value) => Some(tolerance(&value)?),
                None => None,
            },
        };
        let kernels = match top.remove("kernel") {
            Some(Value::Array(kernels)) if !kernels.is_empty() => kernels,
            Some(_) => return err("kernel must be a non-empty array of tables ([[kernel]])"),
            None => Vec::new(),
        };
        let commands = match top.remove("command") {
            Some(Value::Array(commands)) if !commands.is_empty() => commands,
            Some(_) => return err("command must be a non-empty array of tables ([[command]])"),
            None => Vec::new(),
        };
        let cuda = match top.remove("cuda") {
            Some(Value::Array(tables)) if !tables.is_empty() => tables,
            Some(_) => return err("cuda must be a non-empty array of tables ([[cuda]])"),
            None => Vec::new(),
        };
        if kernels.is_empty() && commands.is_empty() && cuda.is_empty() {
            return err("the campaign names no kernels (add [[kernel]], [[cuda]] or [[command]] tables)");
        }
        if let Some(key) = top.keys().next() {
            return err(format!(
                "unknown top-level key {key:?} (expected name, description, run, seed, range, tolerance, kernel, cuda, command)"
            ));
        }
        let mut cells = Vec::new();
        for (index, entry) in kernels.into_iter().enumerate() {
            let Value::Object(entry) = entry else {
                return err(format!("kernel #{} is not a table", index + 1));
            };
            expand(entry, &defaults, &mut cells)
                .map_err(|e| CampaignError(format!("kernel #{}: {}", index + 1, e.0)))?;
        }
        let mut cuda_cells = Vec::new();
        for (index, entry) in cuda.into_iter().enumerate() {
            let Value::Object(entry) = entry else {
                return err(format!("cuda #{} is not a table", index + 1));
            };
            let room = MAX_CELLS.saturating_sub(cells.len());
            cuda_table::expand_cuda(entry, index, text, dir, &defaults, room, &mut cuda_cells)?;
        }
        let mut command_cells = Vec::new();
        for (index, entry) in commands.into_iter().enumerate() {
            let Value::Object(entry) = entry else {
                return err(format!("command #{} is not a table", index + 1));
            };
            let room = MAX_CELLS.saturating_sub(cells.len() + cuda_cells.len());
            command::expand_command(entry, index, text, dir, room, &mut command_cells)?;
        }
        Ok(Campaign { name, description, run, cells, cuda: cuda_cells, commands: command_cells })
    }
}

impl Campaign {
    /// Keeps only the cells named in `wanted` (kernel, recorded variant): what
    /// `--only-failed-of RUN` reruns. Returns the cells kept.
    pub fn keep_only(&mut self, wanted: &[(String, Value)]) -> usize {
        let wanted: std::collections::BTreeSet<(String, String)> =
            wanted.iter().map(|(kernel, variant)| (kernel.clone(), variant.to_string())).collect();
        let named = |kernel: &str, variant: Value| wanted.contains(&(kernel.to_owned(), variant.to_string()));
        self.cells.retain(|cell| named(cell.spec.name(), cell.variant()));
        self.cuda.retain(|cell| named(&cell.name, cell.variant()));
        self.commands.retain(|cell| named(&cell.name, cell.variant_value()));
        self.cells.len() + self.cuda.len() + self.commands.len()
    }

    /// Cells of every kind.
    pub fn cell_count(&self) -> usize {
        self.cells.len() + self.cuda.len() + self.commands.len()
    }
}

/// The campaign's defaults for its tables.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) seeds: Option<Vec<u64>>,
    pub(crate) range: Option<InputRange>,
    pub(crate) tolerance: Option<f64>,
}

fn to_json_map(table: toml::Table) -> Result<Map<String, Value>, CampaignError> {
    match to_json(toml::Value::Table(table))? {
        Value::Object(map) => Ok(map),
        _ => err("expected a table"),
    }
}

fn to_json(value: toml::Value) -> Result<Value, CampaignError> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| CampaignError(format!("{f} is not finite")))?,
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => return err(format!("dates are not campaign values: {d}")),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        toml::Value::Table(table) => Value::Object(
            table.into_iter().map(|(k, v)| Ok((k, to_json(v)?))).collect::<Result<_, CampaignError>>()?,
        ),
    })
}

pub(crate) fn seeds(value: &Value) -> Result<Vec<u64>, CampaignError> {
    let one = |v: &Value| {
        v.as_u64().ok_or_else(|| CampaignError(format!("a seed must be a non-negative integer, got {v}")))
    };
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        Value::Object(map) => {
            let first = map.get("first").map(one).transpose()?.unwrap_or(0);
            let count = map
                .get("count")
                .map(one)
                .transpose()?
                .ok_or_else(|| CampaignError("{first, count} needs count".into()))?;
            if let Some(key) = map.keys().find(|k| *k != "first" && *k != "count") {
                return err(format!("unknown key {key:?} in a seed range (expected first, count)"));
            }
            if count == 0 || count > MAX_CELLS as u64 {
                return err(format!("count must be 1..={MAX_CELLS}"));
            }
            first.checked_add(count).ok_or_else(|| CampaignError("seed range overflows".into()))?;
            Ok((first..first + count).collect())
        }
        Value::Array(_) => err("the seed list is empty"),
        other => Ok(vec![one(other)?]),
    }
}

pub(crate) fn range(value: &Value) -> Result<InputRange, CampaignError> {
    let pair = value.as_array().filter(|a| a.len() == 2).and_then(|a| Some((a[0].as_f64()?, a[1].as_f64()?)));
    let Some((lo, hi)) = pair else {
        return err(format!("range must be [lo, hi], got {value}"));
    };
    let range = InputRange { lo: lo as f32, hi: hi as f32 };
    range.validate().map_err(|e| CampaignError(e.to_string()))?;
    Ok(range)
}

pub(crate) fn tolerance(value: &Value) -> Result<f64, CampaignError> {
    match value.as_f64() {
        Some(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => err(format!("tolerance must be a finite number >= 0, got {value}")),
    }
}

/// One axis: the parameter groups it can contribute.
pub(crate) fn axis(key: &str, value: Value) -> Result<Vec<Map<String, Value>>, CampaignError> {
    let single = |v: Value| -> Result<Map<String, Value>, CampaignError> {
        match v {
            Value::Object(group) => Ok(group),
            Value::Array(_) => err(format!("{key}: nested arrays are not values")),
            scalar => Ok(Map::from_iter([(key.to_owned(), scalar)])),
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => err(format!("{key}: empty list")),
        Value::Array(items) => items.into_iter().map(single).collect(),
        other => Ok(vec![single(other)?]),
    }
}

fn expand(
    mut entry: Map<String, Value>,
    defaults: &Settings,
    out: &mut Vec<Cell>,
) -> Result<(), CampaignError> {
    let name = match entry.remove("name") {
        Some(Value::String(name)) if KERNEL_NAMES.contains(&name.as_str()) => name,
        Some(other) => {
            return err(format!(
                "unknown kernel {other} (expected one of {}; the lab's own programs go in [[command]] tables)",
                KERNEL_NAMES.join(", ")
            ));
        }
        None => return err("no name (the kernel to run)"),
    };
    let tolerance = match entry.remove("tolerance") {
        Some(value) => tolerance(&value)?,
        None => defaults.tolerance.ok_or_else(|| CampaignError(format!("{name}: no tolerance")))?,
    };
    let range = match entry.remove("range") {
        Some(value) => range(&value)?,
        None => defaults.range.unwrap_or_default(),
    };
    let seeds = match entry.remove("seed") {
        Some(value) => seeds(&value)?,
        None => defaults.seeds.clone().unwrap_or_else(|| vec![0]),
    };
    let axes: Vec<(String, Vec<Map<String, Value>>)> = entry
        .into_iter()
        .map(|(key, value)| Ok((key.clone(), axis(&key, value)?)))
        .collect::<Result<_, CampaignError>>()?;
    let room = MAX_CELLS.saturating_sub(out.len()) / seeds.len().max(1);
    for_each_combination(&axes, room, &mut |mut params, given| {
        params.insert("kernel".into(), Value::String(name.clone()));
        let spec = spec_from(&name, params, given)?;
        for &seed in &seeds {
            out.push(Cell { spec, seed, range, tolerance });
        }
        Ok(())
    })
    .map_err(|e| {
        if e.0.starts_with(&format!("{name}:")) { e } else { CampaignError(format!("{name}: {}", e.0)) }
    })
}

/// What [`for_each_combination`] calls: the merged parameters, and the axis that set each.
pub(crate) type EachCombination<'a> =
    dyn FnMut(Map<String, Value>, &BTreeMap<String, &str>) -> Result<(), CampaignError> + 'a;

/// Calls `each` with every combination of the axes' groups (last axis fastest), merged into
/// one map, with the axis that set each key. Refuses a key set by two axes, and more than
/// `combinations_max` combinations (before running any).
pub(crate) fn for_each_combination(
    axes: &[(String, Vec<Map<String, Value>>)],
    combinations_max: usize,
    each: &mut EachCombination<'_>,
) -> Result<(), CampaignError> {
    let combinations = axes.iter().try_fold(1usize, |acc, (_, options)| acc.checked_mul(options.len()));
    match combinations {
        Some(count) if count <= combinations_max => {}
        _ => return err(format!("the matrix has more than {MAX_CELLS} cells")),
    }
    let mut index = vec![0usize; axes.len()];
    loop {
        let mut params = Map::new();
        let mut given: BTreeMap<String, &str> = BTreeMap::new();
        for ((axis_key, options), &i) in axes.iter().zip(&index) {
            for (key, value) in &options[i] {
                if let Some(previous) = given.insert(key.clone(), axis_key) {
                    return err(format!("{key} is set by both {previous} and {axis_key}"));
                }
                params.insert(key.clone(), value.clone());
            }
        }
        each(params, &given)?;
        // Next combination, last axis fastest.
        let mut position = axes.len();
        loop {
            if position == 0 {
                return Ok(());
            }
            position -= 1;
            index[position] += 1;
            if index[position] < axes[position].1.len() {
                break;
            }
            index[position] = 0;
        }
    }
}

fn spec_from(
    name: &str,
    params: Map<String, Value>,
    given: &BTreeMap<String, &str>,
) -> Result<KernelSpec, CampaignError> {
    let shown = Value::Object(params.clone());
    let spec: KernelSpec = serde_json::from_value(Value::Object(params))
        .map_err(|e| CampaignError(format!("{name}: {e} in {shown}")))?;
    let known = spec.variant();
    if let Some(unknown) = given.keys().find(|key| known.get(key.as_str()).is_none()) {
        let expected: Vec<&str> =
            known.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        return err(format!("{name}: unknown parameter {unknown:?} (expected {})", expected.join(", ")));
    }
    spec.validate().map_err(|e| CampaignError(format!("{e} in {shown}")))?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Fp4Format;

    const SAMPLE: &str = r#"
        name = "t"
        seed = [1, 2]
        tolerance = 1e-3

        [[kernel]]
        name = "matmul_tiled"
        shape = [{ m = 3, n = 4, k = 5 }, { m = 8, n = 8, k = 8 }]
        tile = [2, 4]

        [[kernel]]
        name = "saxpy"
        n = 10
        alpha = 2
        seed = { first = 5, count = 3 }
        tolerance = 0

        [[kernel]]
        name = "fp4_dequant_matmul"
        shape = { m = 2, n = 3, k = 32 }
        format = ["mxfp4", "nvfp4"]
        range = [-4.0, 4.0]
    "#;

    #[test]
    fn expands_the_matrix_in_order() {
        let campaign = Campaign::parse(SAMPLE).expect("parses");
        assert_eq!(campaign.name, "t");
        assert_eq!(campaign.cells.len(), 2 * 2 * 2 + 3 + 2 * 2);
        let first = campaign.cells[0];
        assert_eq!(first.spec, KernelSpec::MatmulTiled { m: 3, n: 4, k: 5, tile: 2 });
        assert_eq!((first.seed, first.tolerance), (1, 1e-3));
        assert_eq!(campaign.cells[2].spec, KernelSpec::MatmulTiled { m: 3, n: 4, k: 5, tile: 4 });
        let saxpy: Vec<_> = campaign.cells.iter().filter(|c| c.spec.name() == "saxpy").collect();
        assert_eq!(saxpy.iter().map(|c| c.seed).collect::<Vec<_>>(), vec![5, 6, 7]);
        assert_eq!(saxpy[0].spec, KernelSpec::Saxpy { n: 10, alpha: 2.0 });
        assert_eq!(saxpy[0].tolerance, 0.0);
        let fp4 = campaign.cells.last().expect("cells");
        assert_eq!(fp4.spec, KernelSpec::Fp4DequantMatmul { m: 2, n: 3, k: 32, format: Fp4Format::Nvfp4 });
        let variant = fp4.variant();
        assert_eq!(variant["format"], "nvfp4");
        assert_eq!(variant["dtype"], "e2m1");
        assert_eq!(variant["seed"], 2);
        assert_eq!(variant["range"], serde_json::json!([-4.0, 4.0]));
        assert!(first.variant().get("range").is_none());
        assert_eq!(saxpy[0].label(), "alpha=2.0 n=10 seed=5");
    }

    #[test]
    fn refuses_mistakes_with_the_reason() {
        let cases = [
            ("name = \"t\"", "no kernels"),
            ("[[kernel]]\nname = \"saxpy\"\nn = 1\nalpha = 1\ntolerance = 0", "no name"),
            ("name = \"t\"\n[[kernel]]\nname = \"nope\"", "unknown kernel"),
            ("name = \"t\"\n[[kernel]]\nname = \"saxpy\"\nn = 1\nalpha = 1", "no tolerance"),
            (
                "name = \"t\"\ntolerance = 0\n[[kernel]]\nname = \"saxpy\"\nn = 1\nalpha = 1\ntiel = 3",
                "unknown parameter \"tiel\"",
            ),
            ("name = \"t\"\ntolerance = 0\n[[kernel]]\nname = \"saxpy\"\nn = 0\nalpha = 1", "at least 1"),
            ("name = \"t\"\ntolerance = 0\n[[kernel]]\nname = \"saxpy\"\nalpha = 1", "missing field `n`"),
            ("name = \"t\"\ntolerance = 0\n[[kernel]]\nname = \"saxpy\"\nn = []\nalpha = 1", "empty list"),
            ("name = \"t\"\ntolerance = -1\n[[kernel]]\nname = \"saxpy\"\nn = 1\nalpha = 1", "tolerance"),
            ("name = \"t\"\nextra = 1\n[[kernel]]\nname = \"saxpy\"\nn = 1\nalpha = 1", "unknown top-level"),
            (
                "name = \"t\"\ntolerance = 0\n[[kernel]]\nname = \"saxpy\"\nshape = {n = 1}\nn = 2\nalpha = 1",
                "set by both",
            ),
            ("name = \"bad name\"\n[[kernel]]\nname = \"saxpy\"", "identifier"),
            (
                "name = \"t\"\ntolerance = 0\nseed = { first = 0, count = 2000000 }\n[[kernel]]\nname = \"saxpy\"\nn = 1\nalpha = 1",
                "count",
            ),
            (
                "name = \"t\"\ntolerance = 0\n[[kernel]]\nname = \"saxpy\"\nn = [1, 2]\nalpha = 1\nseed = { count = 600000 }",
                "more than",
            ),
            ("name = [", "not valid TOML"),
        ];
        for (text, want) in cases {
            let error = Campaign::parse(text).expect_err(text);
            assert!(error.0.contains(want), "{text:?}: {error}");
        }
    }

    #[test]
    fn shipped_campaigns_parse() {
        for file in ["smoke.toml", "blackwell-fp4.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns").join(file);
            let campaign = Campaign::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!campaign.cells.is_empty(), "{file}");
        }
        let smoke =
            Campaign::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/smoke.toml"))
                .expect("smoke");
        for kernel in KERNEL_NAMES {
            assert!(smoke.cells.iter().any(|c| c.spec.name() == *kernel), "smoke lacks {kernel}");
        }
        let fp4 = Campaign::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/blackwell-fp4.toml"),
        )
        .expect("blackwell-fp4");
        assert!(fp4.cells.iter().any(|c| c.spec.name() == "matmul_tiled_broken"));
    }
}

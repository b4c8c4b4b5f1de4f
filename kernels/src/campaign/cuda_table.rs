//! `[[cuda]]` tables: the lab's own CUDA kernels (`.cu` files) as campaign cells, compiled
//! with NVRTC, launched on seeded inputs and judged against a reference.
//!
//! ```toml
//! [[cuda]]
//! name = "own_saxpy"                  # recorded as the launch's `kernel`
//! source = "own_saxpy.cu"             # relative to the campaign file's folder
//! entry = "saxpy_{route}"             # an extern "C" __global__ function of the source
//! nvrtc = ["-O3"]                     # optional NVRTC options; the device's architecture
//!                                     # (--gpu-architecture=compute_XY) is added unless named
//! define = ["ALPHA"]                  # optional: axes passed as -DALPHA=<the cell's value>
//! grid = ["{n}/256"]                  # 1 to 3 sizes; block likewise
//! block = [256]
//! inputs = [{ name = "x", len = "{n}" }, { name = "y", len = "{n}" }]
//! output = { len = "{n}" }
//! reference = { route = "naive" }     # or a built-in CPU reference: "saxpy", or
//!                                     # { kernel = "saxpy", alpha = 2.0 }
//! tolerance = 1e-6                    # default: the campaign's, else 0 (outputs equal)
//! seed = [1, 2]                       # like [[kernel]] tables; range too
//! n = [1000, 4096]                    # every other key is an axis
//! route = ["tiled", "off_by_one"]
//! ALPHA = 2.0
//! ```
//!
//! The kernel ABI is [`crate::cuda::CudaProgram`]'s: `entry(const float* in0, …, float* out,
//! unsigned int n)`, every buffer `f32`, `n` the output's length. Inputs are drawn in order
//! from one SplitMix64 stream seeded with the cell's seed (as the built-in kernels draw theirs,
//! so a built-in reference sees the same values). A size (`len`, a grid or block entry) is an
//! integer or a string of integers and `{axis}` placeholders joined by `*` and `/` (`/` rounds
//! up), read left to right.
//!
//! A route reference is the same cell with the overrides applied (same seed, same inputs);
//! the cell passes when its output is within `tolerance` of the reference's (with tolerance 0,
//! when the two output digests are equal). The reference route's own cells are compared with a
//! second launch of themselves, which catches nondeterminism (races, uninitialised memory).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::command::{locate, substitute};
use super::cuda_scan::{entry_points, is_c_identifier, size};
use super::{CampaignError, Settings, axis, for_each_combination, range, seeds, tolerance};
use crate::cpu::{InputRange, KernelSpec, MAX_ELEMENTS};
use crate::cuda::{CudaProgram, LaunchDims};
use crate::sink::is_identifier;

/// Keys of a `[[cuda]]` table that are settings, not axes.
pub const CUDA_SETTINGS: &[&str] = &[
    "name",
    "source",
    "entry",
    "nvrtc",
    "define",
    "grid",
    "block",
    "inputs",
    "output",
    "reference",
    "tolerance",
    "range",
    "seed",
];

/// Built-in kernels that can be a `[[cuda]]` cell's reference: those whose inputs and output
/// are plain f32 buffers.
pub const BUILTIN_REFERENCES: &[&str] = &["saxpy", "reduce_sum", "matmul_tiled", "softmax_rows"];

/// Largest `.cu` file read.
const SOURCE_BYTES_MAX: u64 = 1 << 20;
/// Most input buffers, NVRTC options and defines of one table.
const INPUTS_MAX: usize = 16;
const OPTIONS_MAX: usize = 64;

/// What one launch of a `[[cuda]]` cell needs: the program, its shape and its buffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceLaunch {
    /// The source, entry point and NVRTC options.
    pub program: CudaProgram,
    /// Grid and block (no dynamic shared memory).
    pub dims: LaunchDims,
    /// Length of each input buffer, in order.
    pub inputs: Vec<u32>,
    /// Length of the output buffer (the kernel's `n`).
    pub output_len: u32,
}

/// What a `[[cuda]]` cell's output is judged against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceReference {
    /// A built-in kernel's CPU reference, on the same inputs.
    Builtin(KernelSpec),
    /// Another route of the same cell, launched on the same inputs.
    Route {
        /// The axis values that make the reference (e.g. `{"route": "naive"}`).
        overrides: Map<String, Value>,
        /// The reference's launch.
        launch: SourceLaunch,
    },
}

/// One cell of a `[[cuda]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceCell {
    /// The table's name, recorded as the launch's `kernel`.
    pub name: String,
    /// One value per axis.
    pub axes: Map<String, Value>,
    /// Seed of the input generator.
    pub seed: u64,
    /// Range the inputs are drawn from.
    pub range: InputRange,
    /// Largest absolute difference from the reference that passes.
    pub tolerance: f64,
    /// The cell's own launch.
    pub launch: SourceLaunch,
    /// What it is judged against.
    pub reference: SourceReference,
    /// Line of the table's `[[cuda]]` header in the campaign file (1-based).
    pub line: usize,
}

impl SourceCell {
    /// The `variant` a launch records: the axes, `seed`, and `range` when it is not the
    /// default `[-1, 1)`.
    pub fn variant(&self) -> Value {
        let mut variant = self.axes.clone();
        variant.insert("seed".into(), Value::from(self.seed));
        if self.range != InputRange::default() {
            variant.insert("range".into(), serde_json::json!([self.range.lo, self.range.hi]));
        }
        Value::Object(variant)
    }

    /// A short human label: `n=1000 route=tiled seed=1`.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> =
            self.axes.iter().map(|(key, value)| format!("{key}={}", text_of(value))).collect();
        parts.push(format!("seed={}", self.seed));
        parts.join(" ")
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An error that names the table key whose line it belongs on.
type Miss = (&'static str, String);

fn miss<T>(key: &'static str, message: impl Into<String>) -> Result<T, Miss> {
    Err((key, message.into()))
}

/// How a table names its reference, before the cell's values are known.
enum ReferenceTemplate {
    Builtin { kernel: String, params: Map<String, Value> },
    Route(Map<String, Value>),
}

/// The parts of a table before its axes are filled in.
struct Template {
    name: String,
    file: String,
    text: Arc<str>,
    entries: Vec<String>,
    entry: String,
    nvrtc: Vec<String>,
    define: Vec<String>,
    grid: Vec<Value>,
    block: Vec<Value>,
    inputs: Vec<Value>,
    output: Value,
    reference: ReferenceTemplate,
}

impl Template {
    fn dims(&self, variant: &Map<String, Value>) -> Result<LaunchDims, Miss> {
        let shape = |key: &'static str, sizes: &[Value], limits: [u64; 3]| -> Result<[u32; 3], Miss> {
            let mut out = [1u32; 3];
            for (axis, template) in sizes.iter().enumerate() {
                let value = size(&format!("{key}[{axis}]"), template, variant).map_err(|e| (key, e))?;
                if value == 0 || value > limits[axis] {
                    return miss(key, format!("{key}[{axis}] is {value}; it must be 1..={}", limits[axis]));
                }
                out[axis] = value as u32;
            }
            Ok(out)
        };
        let grid = shape("grid", &self.grid, [(1 << 31) - 1, 65_535, 65_535])?;
        let block = shape("block", &self.block, [1024, 1024, 64])?;
        let threads: u64 = block.iter().map(|&d| u64::from(d)).product();
        if threads > 1024 {
            return miss("block", format!("the block has {threads} threads; at most 1024"));
        }
        Ok(LaunchDims { grid, block, shared_mem_bytes: 0 })
    }

    fn launch(&self, variant: &Map<String, Value>) -> Result<SourceLaunch, Miss> {
        let entry = substitute(&self.entry, variant).map_err(|e| ("entry", e.0))?;
        if !self.entries.contains(&entry) {
            return miss(
                "entry",
                format!(
                    "{entry:?} is not an extern \"C\" __global__ function of {} (it has: {})",
                    self.file,
                    if self.entries.is_empty() { "none".to_owned() } else { self.entries.join(", ") }
                ),
            );
        }
        let mut options = self
            .nvrtc
            .iter()
            .map(|o| substitute(o, variant))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ("nvrtc", e.0))?;
        for name in &self.define {
            let value = variant.get(name).map(text_of).unwrap_or_default();
            options.push(format!("-D{name}={value}"));
        }
        let len = |key: &'static str, what: String, template: &Value| -> Result<u32, Miss> {
            let value = size(&what, template, variant).map_err(|e| (key, e))?;
            if value == 0 || value > MAX_ELEMENTS {
                return miss(key, format!("{what} is {value}; it must be 1..={MAX_ELEMENTS}"));
            }
            Ok(value as u32)
        };
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| len("inputs", format!("inputs[{i}].len"), &input["len"]))
            .collect::<Result<Vec<_>, _>>()?;
        let output_len = len("output", "output.len".into(), &self.output)?;
        let program = CudaProgram { file: self.file.clone(), source: self.text.clone(), entry, options };
        Ok(SourceLaunch { program, dims: self.dims(variant)?, inputs, output_len })
    }

    fn reference(
        &self,
        variant: &Map<String, Value>,
        launch: &SourceLaunch,
    ) -> Result<SourceReference, Miss> {
        match &self.reference {
            ReferenceTemplate::Route(overrides) => {
                let mut other = variant.clone();
                other.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
                let shown = overrides.iter().map(|(k, v)| format!("{k}={}", text_of(v))).collect::<Vec<_>>();
                let reference = self
                    .launch(&other)
                    .map_err(|(key, e)| (key, format!("the reference ({}): {e}", shown.join(" "))))?;
                if reference.inputs != launch.inputs || reference.output_len != launch.output_len {
                    return miss(
                        "reference",
                        format!(
                            "the reference ({}) takes inputs of {:?} and gives {} values; this cell takes {:?} and gives {}",
                            shown.join(" "),
                            reference.inputs,
                            reference.output_len,
                            launch.inputs,
                            launch.output_len
                        ),
                    );
                }
                Ok(SourceReference::Route { overrides: overrides.clone(), launch: reference })
            }
            ReferenceTemplate::Builtin { kernel, params } => {
                let mut all = variant.clone();
                all.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
                all.insert("kernel".into(), Value::String(kernel.clone()));
                let spec: KernelSpec = serde_json::from_value(Value::Object(all))
                    .map_err(|e| ("reference", format!("the built-in {kernel} reference: {e}")))?;
                spec.validate().map_err(|e| ("reference", e.to_string()))?;
                let (inputs, output) = builtin_shape(&spec);
                if inputs != launch.inputs || output != launch.output_len {
                    return miss(
                        "reference",
                        format!(
                            "the built-in {kernel} reference takes inputs of {inputs:?} and gives {output} values; this cell takes {:?} and gives {}",
                            launch.inputs, launch.output_len
                        ),
                    );
                }
                Ok(SourceReference::Builtin(spec))
            }
        }
    }
}

/// Input lengths and output length of a built-in reference kernel (a validated spec).
fn builtin_shape(spec: &KernelSpec) -> (Vec<u32>, u32) {
    let len = |dims: &[u32]| dims.iter().product::<u32>();
    match *spec {
        KernelSpec::Saxpy { n, .. } => (vec![n, n], n),
        KernelSpec::ReduceSum { n, .. } => (vec![n], 1),
        KernelSpec::MatmulTiled { m, n, k, .. } => (vec![len(&[m, k]), len(&[k, n])], len(&[m, n])),
        KernelSpec::SoftmaxRows { rows, cols } => (vec![len(&[rows, cols])], len(&[rows, cols])),
        _ => (Vec::new(), 0),
    }
}

fn strings(key: &'static str, value: Value, max: usize) -> Result<Vec<String>, Miss> {
    let Value::Array(items) = value else {
        return miss(key, format!("{key} must be an array of strings, got {value}"));
    };
    if items.len() > max {
        return miss(key, format!("{key} holds more than {max} entries"));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) if !s.contains('\0') => Ok(s),
            other => miss(key, format!("{key} must be an array of strings, got {other} in it")),
        })
        .collect()
}

fn sizes(key: &'static str, value: Option<Value>) -> Result<Vec<Value>, Miss> {
    match value {
        None => miss(key, format!("no {key} (1 to 3 sizes, e.g. [\"{{n}}/256\"])")),
        Some(Value::Array(items)) if (1..=3).contains(&items.len()) => Ok(items),
        Some(single @ (Value::Number(_) | Value::String(_))) => Ok(vec![single]),
        Some(other) => miss(key, format!("{key} must hold 1 to 3 sizes, got {other}")),
    }
}

/// Reads the table's settings (everything but the axes) into a template.
fn template(entry: &mut Map<String, Value>, dir: &Path) -> Result<Template, Miss> {
    let name = match entry.remove("name") {
        Some(Value::String(name)) if is_identifier(&name) => name,
        Some(other) => return miss("name", format!("name must be an identifier, got {other}")),
        None => return miss("", "no name (recorded as the launch's kernel)"),
    };
    let file = match entry.remove("source") {
        Some(Value::String(file)) if !file.is_empty() => file,
        Some(other) => return miss("source", format!("source must be a path to a .cu file, got {other}")),
        None => return miss("", format!("{name}: no source (the .cu file, relative to the campaign file)")),
    };
    let path = dir.join(&file);
    let text = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() <= SOURCE_BYTES_MAX => std::fs::read_to_string(&path)
            .map_err(|e| ("source", format!("reading {}: {e}", path.display())))?,
        Ok(meta) if meta.is_file() => {
            return miss("source", format!("{} is larger than {SOURCE_BYTES_MAX} bytes", path.display()));
        }
        Ok(_) => return miss("source", format!("{} is not a file", path.display())),
        Err(e) => return miss("source", format!("{}: {e}", path.display())),
    };
    if text.contains('\0') {
        return miss("source", format!("{} holds a NUL byte", path.display()));
    }
    let entries = entry_points(&text);
    if !text.contains("extern \"C\"") {
        return miss("source", format!("{file}: entry points must be declared extern \"C\" (none is)"));
    }
    let entry_name = match entry.remove("entry") {
        Some(Value::String(e)) if !e.is_empty() => e,
        Some(other) => return miss("entry", format!("entry must be a string, got {other}")),
        None => return miss("", format!("{name}: no entry (the __global__ function to launch)")),
    };
    let nvrtc =
        entry.remove("nvrtc").map(|v| strings("nvrtc", v, OPTIONS_MAX)).transpose()?.unwrap_or_default();
    let define =
        entry.remove("define").map(|v| strings("define", v, OPTIONS_MAX)).transpose()?.unwrap_or_default();
    if let Some(bad) = define.iter().find(|d| !is_c_identifier(d)) {
        return miss("define", format!("define {bad:?} is not a C identifier"));
    }
    let grid = sizes("grid", entry.remove("grid"))?;
    let block = sizes("block", entry.remove("block"))?;
    let inputs = match entry.remove("inputs") {
        Some(Value::Array(items)) if (1..=INPUTS_MAX).contains(&items.len()) => items,
        Some(other) => {
            return miss(
                "inputs",
                format!("inputs must be 1..={INPUTS_MAX} tables {{ name, len }}, got {other}"),
            );
        }
        None => return miss("", format!("{name}: no inputs (e.g. [{{ name = \"x\", len = \"{{n}}\" }}])")),
    };
    let mut names = BTreeSet::new();
    for input in &inputs {
        let Value::Object(fields) = input else {
            return miss("inputs", format!("an input must be a table {{ name, len }}, got {input}"));
        };
        if let Some(key) = fields.keys().find(|k| !["name", "len", "dtype"].contains(&k.as_str())) {
            return miss("inputs", format!("unknown key {key:?} in an input (expected name, len, dtype)"));
        }
        match fields.get("dtype") {
            None => {}
            Some(Value::String(dtype)) if dtype == "f32" => {}
            Some(other) => {
                return miss("inputs", format!("dtype {other}: only \"f32\" buffers are supported"));
            }
        }
        match fields.get("name") {
            Some(Value::String(n)) if is_c_identifier(n) && names.insert(n.clone()) => {}
            other => {
                return miss(
                    "inputs",
                    format!("each input needs a distinct name (a C identifier), got {other:?}"),
                );
            }
        }
        if !fields.contains_key("len") {
            return miss("inputs", format!("input {} has no len", fields["name"]));
        }
    }
    let output = match entry.remove("output") {
        Some(Value::Object(mut fields)) if fields.len() == 1 && fields.contains_key("len") => {
            fields.remove("len").unwrap_or_default()
        }
        Some(other) => return miss("output", format!("output must be {{ len = … }}, got {other}")),
        None => return miss("", format!("{name}: no output (e.g. {{ len = \"{{n}}\" }})")),
    };
    let reference = match entry.remove("reference") {
        Some(Value::String(kernel)) => ReferenceTemplate::Builtin { kernel, params: Map::new() },
        Some(Value::Object(mut params)) if params.contains_key("kernel") => match params.remove("kernel") {
            Some(Value::String(kernel)) => ReferenceTemplate::Builtin { kernel, params },
            other => return miss("reference", format!("reference kernel must be a string, got {other:?}")),
        },
        Some(Value::Object(overrides)) if !overrides.is_empty() => ReferenceTemplate::Route(overrides),
        Some(other) => {
            return miss(
                "reference",
                format!(
                    "reference must be a built-in kernel name, {{ kernel = … }} or axis overrides such as {{ route = \"naive\" }}, got {other}"
                ),
            );
        }
        None => {
            return miss(
                "",
                format!(
                    "{name}: no reference (a built-in such as \"saxpy\", or {{ route = \"naive\" }}: another route of this cell)"
                ),
            );
        }
    };
    if let ReferenceTemplate::Builtin { kernel, .. } = &reference
        && !BUILTIN_REFERENCES.contains(&kernel.as_str())
    {
        return miss(
            "reference",
            format!(
                "{kernel:?} is not a built-in reference (expected one of {})",
                BUILTIN_REFERENCES.join(", ")
            ),
        );
    }
    Ok(Template {
        name,
        file,
        text: Arc::from(text),
        entries,
        entry: entry_name,
        nvrtc,
        define,
        grid,
        block,
        inputs,
        output,
        reference,
    })
}

/// Expands the `index`-th `[[cuda]]` table into `out`. `text` is the whole file (to name
/// lines), `dir` the campaign file's folder, `cells_max` the most cells `out` may hold.
pub(super) fn expand_cuda(
    mut entry: Map<String, Value>,
    index: usize,
    text: &str,
    dir: &Path,
    defaults: &Settings,
    cells_max: usize,
    out: &mut Vec<SourceCell>,
) -> Result<(), CampaignError> {
    let at = |key: &str, message: String| {
        let line = locate(text, "cuda", index, (!key.is_empty()).then_some(key));
        let place = if line == 0 { String::new() } else { format!("line {line}: ") };
        CampaignError(format!("{place}cuda #{}: {message}", index + 1))
    };
    let line = locate(text, "cuda", index, None);
    let tolerance = match entry.remove("tolerance") {
        Some(value) => tolerance(&value).map_err(|e| at("tolerance", e.0))?,
        None => defaults.tolerance.unwrap_or(0.0),
    };
    let range = match entry.remove("range") {
        Some(value) => range(&value).map_err(|e| at("range", e.0))?,
        None => defaults.range.unwrap_or_default(),
    };
    let seeds = match entry.remove("seed") {
        Some(value) => seeds(&value).map_err(|e| at("seed", e.0))?,
        None => defaults.seeds.clone().unwrap_or_else(|| vec![0]),
    };
    let template = template(&mut entry, dir).map_err(|(key, e)| at(key, e))?;
    let axes: Vec<(String, Vec<Map<String, Value>>)> = entry
        .into_iter()
        .map(|(key, value)| Ok((key.clone(), axis(&key, value).map_err(|e| at(&key, e.0))?)))
        .collect::<Result<_, CampaignError>>()?;
    let is_axis = |key: &str| axes.iter().any(|(_, groups)| groups.iter().any(|g| g.contains_key(key)));
    if let Some(name) = template.define.iter().find(|name| !is_axis(name)) {
        return Err(at("define", format!("define {name:?} names no axis")));
    }
    if let ReferenceTemplate::Route(overrides) = &template.reference
        && let Some(key) = overrides.keys().find(|key| !is_axis(key))
    {
        return Err(at("reference", format!("the reference overrides {key:?}, which is not an axis")));
    }
    let room = cells_max.saturating_sub(out.len()) / seeds.len().max(1);
    for_each_combination(&axes, room, &mut |variant, _| {
        let launch = template.launch(&variant).map_err(|(key, e)| at(key, e))?;
        let reference = template.reference(&variant, &launch).map_err(|(key, e)| at(key, e))?;
        for &seed in &seeds {
            out.push(SourceCell {
                name: template.name.clone(),
                axes: variant.clone(),
                seed,
                range,
                tolerance,
                launch: launch.clone(),
                reference: reference.clone(),
                line,
            });
        }
        Ok(())
    })
    .map_err(|e| if e.0.starts_with("line ") { e } else { at("", e.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::campaign::Campaign;

    fn examples() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/examples")
    }

    const TABLE: &str = r#"name = "t"
seed = [1, 2]

[[cuda]]
name = "own"
source = "own_saxpy.cu"
entry = "saxpy_{route}"
define = ["alpha"]
grid = ["{n}/256"]
block = [256]
inputs = [{ name = "x", len = "{n}" }, { name = "y", len = "{n}", dtype = "f32" }]
output = { len = "{n}" }
reference = { route = "naive" }
n = [1000, 256]
alpha = 2.0
route = ["naive", "strided"]
"#;

    #[test]
    fn a_table_expands_into_cells_with_programs_dims_and_references() {
        let campaign = Campaign::parse_in(TABLE, &examples()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(campaign.cuda.len(), 2 * 2 * 2);
        let first = &campaign.cuda[0];
        assert_eq!((first.name.as_str(), first.seed, first.tolerance, first.line), ("own", 1, 0.0, 4));
        assert_eq!(
            first.variant(),
            serde_json::json!({"alpha": 2.0, "n": 1000, "route": "naive", "seed": 1})
        );
        assert_eq!(first.label(), "alpha=2.0 n=1000 route=naive seed=1");
        let launch = &first.launch;
        assert_eq!(launch.program.entry, "saxpy_naive");
        assert_eq!(launch.program.options, vec!["-Dalpha=2.0"]);
        assert!(launch.program.source.contains("saxpy_off_by_one"));
        assert_eq!((launch.dims.grid, launch.dims.block), ([4, 1, 1], [256, 1, 1]));
        assert_eq!((launch.inputs.clone(), launch.output_len), (vec![1000, 1000], 1000));
        let strided = campaign.cuda.iter().find(|c| c.axes["route"] == "strided").expect("strided");
        assert_eq!(strided.launch.program.entry, "saxpy_strided");
        let SourceReference::Route { overrides, launch } = &strided.reference else { panic!("a route") };
        assert_eq!(overrides["route"], "naive");
        assert_eq!(launch.program.entry, "saxpy_naive");
        assert_eq!(launch.inputs, strided.launch.inputs);
        let small = campaign.cuda.iter().find(|c| c.axes["n"] == 256).expect("n=256");
        assert_eq!(small.launch.dims.grid, [1, 1, 1]);
        let wire = serde_json::to_string(strided).expect("json");
        assert_eq!(&serde_json::from_str::<SourceCell>(&wire).expect("back"), strided);

        let builtin =
            TABLE.replace("reference = { route = \"naive\" }", "reference = \"saxpy\"\ntolerance = 1e-6");
        let campaign = Campaign::parse_in(&builtin, &examples()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            campaign.cuda[0].reference,
            SourceReference::Builtin(KernelSpec::Saxpy { n: 1000, alpha: 2.0 })
        );
        assert_eq!(campaign.cuda[0].tolerance, 1e-6);
        let explicit =
            builtin.replace("reference = \"saxpy\"", "reference = { kernel = \"saxpy\", alpha = 3 }");
        let campaign = Campaign::parse_in(&explicit, &examples()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            campaign.cuda[0].reference,
            SourceReference::Builtin(KernelSpec::Saxpy { n: 1000, alpha: 3.0 })
        );
    }

    #[test]
    fn the_shipped_example_parses() {
        let campaign = Campaign::load(&examples().join("own-saxpy.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(campaign.cuda.len(), 16);
        let routes: BTreeSet<&str> = campaign.cuda.iter().filter_map(|c| c.axes["route"].as_str()).collect();
        assert_eq!(routes, BTreeSet::from(["naive", "off_by_one", "strided"]));
        assert!(campaign.cuda.iter().any(|c| matches!(c.reference, SourceReference::Builtin(_))));
    }

    #[test]
    fn mistakes_name_their_line() {
        let cases = [
            (TABLE.replace("own_saxpy.cu", "missing.cu"), "line 6: cuda #1: "),
            (
                TABLE.replace("\"strided\"]", "\"tiled\"]"),
                "line 7: cuda #1: \"saxpy_tiled\" is not an extern",
            ),
            (TABLE.replace("\"{n}/256\"", "\"{m}/256\""), "line 9: cuda #1: unknown placeholder {m}"),
            (TABLE.replace("block = [256]", "block = [2048]"), "line 10: cuda #1: block[0] is 2048"),
            (
                TABLE.replace("block = [256]", "block = [64, 64]"),
                "line 10: cuda #1: the block has 4096 threads",
            ),
            (
                TABLE.replace("block = [256]", "block = [1, 1, 1, 1]"),
                "line 10: cuda #1: block must hold 1 to 3",
            ),
            (
                TABLE.replace("\"{n}/256\"", "\"{route}/256\""),
                "line 9: cuda #1: grid[0] \"{route}/256\" is \"naive/256\"",
            ),
            (
                TABLE.replace("{ route = \"naive\" }", "{ n = 256 }"),
                "line 13: cuda #1: the reference (n=256) takes",
            ),
            (TABLE.replace("dtype = \"f32\"", "dtype = \"f16\""), "line 11: cuda #1: dtype \"f16\""),
            (
                TABLE.replace("output = { len = \"{n}\" }", "output = { len = 0 }"),
                "line 12: cuda #1: output.len is 0",
            ),
            (
                TABLE.replace("{ route = \"naive\" }", "{ rout = \"naive\" }"),
                "line 13: cuda #1: the reference overrides \"rout\"",
            ),
            (
                TABLE.replace("define = [\"alpha\"]", "define = [\"beta\"]"),
                "line 8: cuda #1: define \"beta\" names no axis",
            ),
            (
                TABLE.replace("{ route = \"naive\" }", "\"matmul_tiled\""),
                "line 13: cuda #1: the built-in matmul_tiled reference",
            ),
            (TABLE.replace("{ route = \"naive\" }", "\"fp4_dequant_matmul\""), "is not a built-in reference"),
            (TABLE.replace("reference = { route = \"naive\" }\n", ""), "line 4: cuda #1: own: no reference"),
            (
                TABLE.replace("route = [\"naive\", \"strided\"]", "route = []"),
                "line 16: cuda #1: route: empty list",
            ),
        ];
        for (text, want) in cases {
            let Err(error) = Campaign::parse_in(&text, &examples()) else { panic!("{want}: it parsed") };
            assert!(error.0.contains(want), "want {want:?} in {error}");
        }
    }
}

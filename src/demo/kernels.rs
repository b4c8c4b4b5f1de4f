//! Kernel campaigns: the CPU reference kernels of `assay_kernels::cpu` really run on this
//! machine (digests, errors and durations are measured, not made up), including the
//! deliberately broken tiled matmul, which fails its check on every machine.
//!
//! The Blackwell bring-up campaign also lists CUDA cells of the NVFP4 kernel. This demo has
//! no GPU: those launches are recorded as faulted with CUDA_ERROR_ILLEGAL_ADDRESS, and the
//! event's `detail` says plainly that the fault is the demo's simulation.

use assay_kernels::cpu::{Fp4Format, InputRange, KernelSpec, run_cpu_checked};
use serde_json::{Value, json};

/// One cell of a campaign's variant matrix.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    pub spec: KernelSpec,
    pub tolerance: f64,
}

/// What a campaign launch came to (for the claims that cite it).
#[derive(Debug, Clone)]
pub struct LaunchFact {
    pub kernel: &'static str,
    pub variant: Value,
    pub backend: &'static str,
    pub passed: bool,
    pub faulted: bool,
}

/// The CPU regression matrix (every kernel, the broken one included).
pub fn cpu_cells(small: bool) -> Vec<Cell> {
    let n = if small { 16_384 } else { 65_536 };
    let mm = if small { 32 } else { 64 };
    let fp4 = |format| KernelSpec::Fp4DequantMatmul { m: 16, n: if small { 32 } else { 64 }, k: 256, format };
    vec![
        Cell { spec: KernelSpec::Saxpy { n, alpha: 2.0 }, tolerance: 1e-6 },
        Cell { spec: KernelSpec::ReduceSum { n, block: 256 }, tolerance: 1e-3 },
        Cell { spec: KernelSpec::ReduceSum { n, block: 1024 }, tolerance: 1e-3 },
        Cell { spec: KernelSpec::MatmulTiled { m: mm, n: mm, k: mm, tile: 16 }, tolerance: 1e-4 },
        Cell { spec: KernelSpec::MatmulTiled { m: 48, n: 40, k: 72, tile: 32 }, tolerance: 1e-4 },
        Cell { spec: KernelSpec::MatmulTiledBroken { m: mm, n: mm, k: mm, tile: 16 }, tolerance: 1e-4 },
        Cell {
            spec: KernelSpec::SoftmaxRows { rows: 64, cols: if small { 256 } else { 512 } },
            tolerance: 1e-6,
        },
        Cell { spec: fp4(Fp4Format::Mxfp4), tolerance: 1e-3 },
        Cell { spec: fp4(Fp4Format::Nvfp4), tolerance: 1e-3 },
    ]
}

/// The Blackwell bring-up matrix: the FP4 kernel in both formats. The CPU cells run for
/// real; the CUDA cells of NVFP4 are the simulated faults.
pub fn blackwell_cells(small: bool) -> Vec<Cell> {
    let n = if small { 32 } else { 64 };
    [Fp4Format::Mxfp4, Fp4Format::Nvfp4]
        .into_iter()
        .flat_map(|format| {
            [128u32, 256]
                .map(|k| Cell { spec: KernelSpec::Fp4DequantMatmul { m: 16, n, k, format }, tolerance: 1e-3 })
        })
        .collect()
}

/// The variant of a cell as recorded: the kernel's parameters plus the input seed.
pub fn variant(spec: &KernelSpec, seed: u64) -> Value {
    let mut v = spec.variant();
    if let Some(o) = v.as_object_mut() {
        o.insert("seed".into(), json!(seed));
    }
    v
}

/// Runs one cell on the CPU: `kernel.launch.completed` data (without `run`) and the fact.
pub fn run_cpu(cell: &Cell, seed: u64) -> Result<(Value, LaunchFact), String> {
    let spec = &cell.spec;
    let inputs = spec.generate(seed, InputRange::default()).map_err(|e| e.to_string())?;
    let launch = run_cpu_checked(spec, &inputs, cell.tolerance).map_err(|e| e.to_string())?;
    let e = &launch.evaluation;
    // A non-finite error is recorded as null (the schema's rule), and fails.
    let max_abs_err = if e.max_abs_err.is_finite() { json!(e.max_abs_err) } else { Value::Null };
    let passed = e.passed && e.max_abs_err.is_finite();
    let variant = variant(spec, seed);
    let data = json!({
        "kernel": spec.name(),
        "variant": variant,
        "backend": "cpu",
        "device": "cpu",
        "grid": [1, 1, 1],
        "block": [1, 1, 1],
        "duration_us": launch.duration_us,
        "input_digest": e.input_digest,
        "output_digest": e.output_digest,
        "reference_digest": e.reference_digest,
        "max_abs_err": max_abs_err,
        "tolerance": e.tolerance,
        "passed": passed,
    });
    Ok((data, LaunchFact { kernel: spec.name(), variant, backend: "cpu", passed, faulted: false }))
}

/// The simulated CUDA fault of an NVFP4 cell on the emulated Blackwell device.
pub fn simulated_fault(cell: &Cell, seed: u64, device_uuid: &str, device_name: &str) -> (Value, LaunchFact) {
    let variant = variant(&cell.spec, seed);
    let data = json!({
        "kernel": cell.spec.name(),
        "variant": variant,
        "backend": "cuda",
        "device": device_uuid,
        "error": "CUDA_ERROR_ILLEGAL_ADDRESS",
        "sticky": true,
        "detail": format!(
            "SIMULATED by assay demo: no GPU ran this launch. The {device_name} node is emulated and this \
             fault is scripted to show how a sticky CUDA_ERROR_ILLEGAL_ADDRESS (700) from an NVFP4 \
             dequantize-matmul is recorded: surfaced at cuStreamSynchronize in the cell's child process, \
             which the runner then replaced; the rest of the campaign continued."
        ),
    });
    (data, LaunchFact { kernel: cell.spec.name(), variant, backend: "cuda", passed: false, faulted: true })
}

/// The campaign file a run names, as its evidence keeps it (the runner's campaign format:
/// one `[[kernel]]` table per cell here, each parameter a one-element list).
pub fn campaign_toml(name: &str, cells: &[Cell], seeds: &[u64], backend: &str) -> String {
    let toml = |v: &Value| match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let mut out = format!(
        "# kernels/campaigns/{name}.toml, run with --backend {backend}\nname = \"{name}\"\nseed = {seeds:?}\nrange = [-1.0, 1.0]\n"
    );
    for c in cells {
        let variant = c.spec.variant();
        let Some(params) = variant.as_object() else { continue };
        let shape: Vec<String> = params
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "m" | "n" | "k" | "rows" | "cols"))
            .map(|(k, v)| format!("{k} = {}", toml(v)))
            .collect();
        out.push_str(&format!(
            "\n[[kernel]]\nname = \"{}\"\nshape = [{{ {} }}]\n",
            c.spec.name(),
            shape.join(", ")
        ));
        for (k, v) in params.iter().filter(|(k, _)| !matches!(k.as_str(), "m" | "n" | "k" | "rows" | "cols"))
        {
            out.push_str(&format!("{k} = [{}]\n", toml(v)));
        }
        out.push_str(&format!("tolerance = {:e}\n", c.tolerance));
    }
    out
}

//! Running one cell and turning its outcome into an event.

use assay_events::EventType;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Cell;
use super::taxonomy::is_error_name;
use crate::backend::Backend;
use crate::cpu::{evaluate, run_cpu_checked};
use crate::cuda::{CudaError, CudaRunner};

/// A launch that produced an output, judged against the CPU reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completed {
    /// Where it ran.
    pub backend: Backend,
    /// `cpu`, or the GPU's UUID.
    pub device: String,
    /// Grid dimensions (`[1, 1, 1]` on the CPU).
    pub grid: [u32; 3],
    /// Block dimensions (`[1, 1, 1]` on the CPU).
    pub block: [u32; 3],
    /// Kernel time, microseconds.
    pub duration_us: u64,
    /// blake3 of the inputs.
    pub input_digest: String,
    /// blake3 of the output.
    pub output_digest: String,
    /// blake3 of the reference output.
    pub reference_digest: String,
    /// Largest absolute error, `None` when it is not finite (a NaN or infinity where the
    /// reference has none).
    pub max_abs_err: Option<f64>,
    /// The tolerance applied.
    pub tolerance: f64,
    /// `max_abs_err <= tolerance`.
    pub passed: bool,
}

/// A launch that did not produce an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faulted {
    /// Where it ran.
    pub backend: Backend,
    /// `cpu`, or the GPU's UUID, when known.
    pub device: Option<String>,
    /// Upper-snake error name: a CUresult name, `SIGNAL_<NAME>`, `TIMEOUT`, …
    pub error: String,
    /// Whether the error poisons the CUDA context.
    pub sticky: bool,
    /// More detail for people.
    pub detail: Option<String>,
}

/// What happened to one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CellOutcome {
    /// It ran; see `passed`.
    Completed(Completed),
    /// It faulted.
    Faulted(Faulted),
}

/// Longest `detail` recorded.
const DETAIL_MAX_CHARS: usize = 4000;

pub(crate) fn clip(text: &str) -> String {
    if text.chars().count() <= DETAIL_MAX_CHARS {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(DETAIL_MAX_CHARS).collect();
        out.push('…');
        out
    }
}

impl CellOutcome {
    /// A fault with a detail message.
    pub fn fault(
        backend: Backend,
        device: Option<String>,
        error: &str,
        sticky: bool,
        detail: impl AsRef<str>,
    ) -> Self {
        let detail = detail.as_ref().trim();
        CellOutcome::Faulted(Faulted {
            backend,
            device,
            error: error.to_owned(),
            sticky,
            detail: (!detail.is_empty()).then(|| clip(detail)),
        })
    }

    /// Whether the launch completed and passed.
    pub fn passed(&self) -> bool {
        matches!(self, CellOutcome::Completed(c) if c.passed)
    }

    /// Whether the CUDA context is unusable after this outcome.
    pub fn is_sticky(&self) -> bool {
        matches!(self, CellOutcome::Faulted(f) if f.sticky)
    }

    /// The backend it ran on.
    pub fn backend(&self) -> Backend {
        match self {
            CellOutcome::Completed(c) => c.backend,
            CellOutcome::Faulted(f) => f.backend,
        }
    }

    /// The event recording this outcome: `(type, data)`, subject `run/<run>`.
    pub fn event(&self, run: &str, cell: &Cell) -> (&'static str, Value) {
        self.event_for(run, cell.spec.name(), cell.variant())
    }

    /// The event recording this outcome of a launch of `kernel` with `variant`.
    pub fn event_for(&self, run: &str, kernel: &str, variant: Value) -> (&'static str, Value) {
        match self {
            CellOutcome::Completed(c) => (
                EventType::KernelLaunchCompleted.as_str(),
                json!({
                    "run": run,
                    "kernel": kernel,
                    "variant": variant,
                    "backend": c.backend,
                    "device": c.device,
                    "grid": c.grid,
                    "block": c.block,
                    "duration_us": c.duration_us,
                    "input_digest": c.input_digest,
                    "output_digest": c.output_digest,
                    "reference_digest": c.reference_digest,
                    "max_abs_err": c.max_abs_err,
                    "tolerance": c.tolerance,
                    "passed": c.passed,
                }),
            ),
            CellOutcome::Faulted(f) => {
                let mut data = json!({
                    "run": run,
                    "kernel": kernel,
                    "variant": variant,
                    "backend": f.backend,
                    "error": f.error,
                    "sticky": f.sticky,
                });
                if let Some(device) = &f.device {
                    data["device"] = Value::from(device.as_str());
                }
                if let Some(detail) = &f.detail {
                    data["detail"] = Value::from(detail.as_str());
                }
                (EventType::KernelLaunchFaulted.as_str(), data)
            }
        }
    }
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Runs a cell on the CPU backend.
pub fn run_cell_cpu(cell: &Cell) -> CellOutcome {
    let device = Some("cpu".to_owned());
    let inputs = match cell.spec.generate(cell.seed, cell.range) {
        Ok(inputs) => inputs,
        Err(e) => return CellOutcome::fault(Backend::Cpu, device, "INVALID_VARIANT", false, e.to_string()),
    };
    match run_cpu_checked(&cell.spec, &inputs, cell.tolerance) {
        Ok(launch) => {
            let e = launch.evaluation;
            let max_abs_err = finite(e.max_abs_err);
            CellOutcome::Completed(Completed {
                backend: Backend::Cpu,
                device: "cpu".into(),
                grid: [1, 1, 1],
                block: [1, 1, 1],
                duration_us: launch.duration_us,
                input_digest: e.input_digest,
                output_digest: e.output_digest,
                reference_digest: e.reference_digest,
                passed: e.passed && max_abs_err.is_some(),
                max_abs_err,
                tolerance: e.tolerance,
            })
        }
        Err(e) => CellOutcome::fault(Backend::Cpu, device, "KERNEL_ERROR", false, e.to_string()),
    }
}

/// Runs a cell on a CUDA context; kernels without a CUDA source run on the CPU.
pub fn run_cell_cuda(cell: &Cell, runner: &mut CudaRunner) -> CellOutcome {
    if !cell.spec.has_cuda_kernel() {
        return run_cell_cpu(cell);
    }
    let device = Some(runner.uuid().to_owned());
    let inputs = match cell.spec.generate(cell.seed, cell.range) {
        Ok(inputs) => inputs,
        Err(e) => return CellOutcome::fault(Backend::Cuda, device, "INVALID_VARIANT", false, e.to_string()),
    };
    let launch = match runner.run(&cell.spec, &inputs) {
        Ok(launch) => launch,
        Err(error) => return cuda_fault(device, &error),
    };
    match evaluate(&cell.spec, &inputs, &launch.output, cell.tolerance) {
        Ok(e) => {
            let max_abs_err = finite(e.max_abs_err);
            CellOutcome::Completed(Completed {
                backend: Backend::Cuda,
                device: runner.uuid().to_owned(),
                grid: launch.dims.grid.map(|d| d.max(1)),
                block: launch.dims.block.map(|d| d.max(1)),
                duration_us: launch.duration_us,
                input_digest: e.input_digest,
                output_digest: e.output_digest,
                reference_digest: e.reference_digest,
                passed: e.passed && max_abs_err.is_some(),
                max_abs_err,
                tolerance: e.tolerance,
            })
        }
        Err(e) => CellOutcome::fault(Backend::Cuda, device, "KERNEL_ERROR", false, e.to_string()),
    }
}

/// The fault a CUDA error is recorded as.
pub(crate) fn cuda_fault(device: Option<String>, error: &CudaError) -> CellOutcome {
    let (name, sticky) = match error {
        CudaError::Driver(fault) => (fault.name.clone(), fault.sticky),
        CudaError::Unavailable { .. } => ("CUDA_UNAVAILABLE".to_owned(), false),
        CudaError::Compile { .. } => ("NVRTC_COMPILE_FAILED".to_owned(), false),
        CudaError::ArchUnsupported { .. } => ("NVRTC_ARCH_UNSUPPORTED".to_owned(), false),
        CudaError::Unsupported { .. } => ("UNSUPPORTED".to_owned(), false),
        CudaError::Kernel(_) => ("INVALID_VARIANT".to_owned(), false),
        CudaError::Panicked { .. } => ("CUDA_LIBRARY_PANICKED".to_owned(), false),
    };
    let name = if is_error_name(&name) { name } else { "CUDA_ERROR".to_owned() };
    CellOutcome::fault(Backend::Cuda, device, &name, sticky, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{InputRange, KernelSpec};
    use crate::cuda::CudaFault;

    fn cell(spec: KernelSpec, tolerance: f64) -> Cell {
        Cell { spec, seed: 3, range: InputRange::default(), tolerance }
    }

    #[test]
    fn cpu_cells_complete_and_the_broken_one_fails() {
        let good = cell(KernelSpec::MatmulTiled { m: 9, n: 7, k: 13, tile: 4 }, 1e-4);
        let outcome = run_cell_cpu(&good);
        assert!(outcome.passed(), "{outcome:?}");
        let (ty, data) = outcome.event("r-1", &good);
        assert_eq!(ty, "kernel.launch.completed");
        assert_eq!(data["kernel"], "matmul_tiled");
        assert_eq!(data["variant"]["tile"], 4);
        assert_eq!(data["device"], "cpu");
        assert_eq!(data["grid"], json!([1, 1, 1]));

        let broken = cell(KernelSpec::MatmulTiledBroken { m: 9, n: 7, k: 13, tile: 4 }, 1e-4);
        let outcome = run_cell_cpu(&broken);
        let CellOutcome::Completed(c) = &outcome else { panic!("{outcome:?}") };
        assert!(!c.passed);
        assert!(c.max_abs_err.is_some_and(|e| e > 1e-4), "{c:?}");
        assert_ne!(c.output_digest, c.reference_digest);
    }

    #[test]
    fn faults_become_events_with_valid_names() {
        let c = cell(KernelSpec::Saxpy { n: 4, alpha: 1.0 }, 0.0);
        let outcome = cuda_fault(
            Some("GPU-1".into()),
            &CudaError::Driver(CudaFault {
                code: 700,
                name: "CUDA_ERROR_ILLEGAL_ADDRESS".into(),
                sticky: true,
            }),
        );
        assert!(outcome.is_sticky());
        let (ty, data) = outcome.event("r-1", &c);
        assert_eq!(ty, "kernel.launch.faulted");
        assert_eq!(data["error"], "CUDA_ERROR_ILLEGAL_ADDRESS");
        assert_eq!(data["sticky"], true);
        assert_eq!(data["device"], "GPU-1");
        let unavailable = cuda_fault(None, &CudaError::Unavailable { reason: "no driver".into() });
        let (_, data) = unavailable.event("r-1", &c);
        assert_eq!(data["error"], "CUDA_UNAVAILABLE");
        assert!(data.get("device").is_none());
        let old_nvrtc =
            cuda_fault(Some("GPU-1".into()), &CudaError::ArchUnsupported { message: "NVRTC 12.8 …".into() });
        let (_, data) = old_nvrtc.event("r-1", &c);
        assert_eq!(data["error"], "NVRTC_ARCH_UNSUPPORTED");
        assert_eq!(data["sticky"], false);
        assert!(is_error_name("SIGNAL_SIGABRT"));
        assert!(!is_error_name("signal") && !is_error_name("") && !is_error_name("A-B"));
    }

    #[test]
    fn non_finite_errors_are_null_and_fail() {
        let c = cell(KernelSpec::Saxpy { n: 4, alpha: 1.0 }, 1e30);
        let inputs = c.spec.generate(c.seed, c.range).expect("inputs");
        let e = evaluate(&c.spec, &inputs, &[f32::NAN; 4], c.tolerance).expect("evaluates");
        assert!(e.max_abs_err.is_infinite());
        let outcome = CellOutcome::Completed(Completed {
            backend: Backend::Cpu,
            device: "cpu".into(),
            grid: [1, 1, 1],
            block: [1, 1, 1],
            duration_us: 0,
            input_digest: e.input_digest,
            output_digest: e.output_digest,
            reference_digest: e.reference_digest,
            max_abs_err: finite(e.max_abs_err),
            tolerance: e.tolerance,
            passed: false,
        });
        let (_, data) = outcome.event("r", &c);
        assert!(data["max_abs_err"].is_null());
        let wire = serde_json::to_string(&outcome).expect("json");
        assert_eq!(serde_json::from_str::<CellOutcome>(&wire).expect("round trip"), outcome);
    }
}

//! Kernel campaigns: the demo runs the campaign files shipped in `kernels/campaigns/`
//! through the kernel runner ([`run_campaign`], as `assay run campaign --backend cpu` does),
//! so its launches are the runner's own events: the CPU reference kernels really run on this
//! machine (input, output and reference digests, errors and verdicts are computed, not made
//! up), including the deliberately broken tiled matmul, which fails its check on every
//! machine.
//!
//! The Blackwell bring-up also asks for CUDA launches of the NVFP4 kernel. This demo has no
//! GPU: those launches are recorded as faulted with CUDA_ERROR_ILLEGAL_ADDRESS, and the
//! event's `detail` says plainly that the fault is the demo's simulation.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use assay_kernels::BackendRequest;
use assay_kernels::campaign::{Campaign, CampaignOptions, Isolation, run_campaign};
use assay_kernels::cpu::{Fp4Format, KernelSpec};
use assay_kernels::cuda::CudaProbe;
use assay_kernels::preflight::Preflight;
use assay_kernels::sink::{EventSink, SinkError};
use serde_json::{Value, json};

/// A campaign file the demo runs, embedded as shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignFile {
    /// The file's stem in `kernels/campaigns/` (also the run's config name).
    pub name: &'static str,
    /// The file's text.
    pub text: &'static str,
}

/// The CPU regression: every kernel on small shapes, the broken matmul included.
pub const REGRESSION: CampaignFile =
    CampaignFile { name: "smoke", text: include_str!("../../kernels/campaigns/smoke.toml") };

/// The Blackwell bring-up: MXFP4/NVFP4 dequant-matmul across shapes, with the tiled matmul
/// and its broken control.
pub const BRINGUP: CampaignFile =
    CampaignFile { name: "blackwell-fp4", text: include_str!("../../kernels/campaigns/blackwell-fp4.toml") };

/// What a campaign launch came to (for the claims that cite it).
#[derive(Debug, Clone)]
pub struct LaunchFact {
    pub kernel: &'static str,
    pub variant: Value,
    pub backend: &'static str,
    pub passed: bool,
    pub faulted: bool,
}

/// One launch the runner recorded: its event and what it came to.
#[derive(Debug, Clone)]
pub struct Launch {
    /// `kernel.launch.completed` or `kernel.launch.faulted`.
    pub ty: String,
    /// The event's `data`, as the runner built it (`run` included).
    pub data: Value,
    pub fact: LaunchFact,
    /// The kernel and its parameters.
    pub spec: KernelSpec,
}

/// Simulated kernel time of a launch, microseconds: a fixed launch cost plus the kernel's
/// multiply-adds (or elements) at about 2 per nanosecond.
fn simulated_duration_us(spec: &KernelSpec) -> u64 {
    let work = match *spec {
        KernelSpec::Saxpy { n, .. } | KernelSpec::ReduceSum { n, .. } => u64::from(n),
        KernelSpec::MatmulTiled { m, n, k, .. }
        | KernelSpec::MatmulTiledBroken { m, n, k, .. }
        | KernelSpec::Fp4DequantMatmul { m, n, k, .. } => u64::from(m) * u64::from(n) * u64::from(k),
        KernelSpec::SoftmaxRows { rows, cols } => 4 * u64::from(rows) * u64::from(cols),
        _ => 0,
    };
    5 + work / 2000
}

/// The sink the demo's campaigns record into. It keeps the launches in order and rewrites
/// each launch's `duration_us` to the simulated worker's time for it.
///
/// Why rewrite: every time in the demo's ledger comes from its simulated clock, and the same
/// seed must give the same history, event for event (payloads, event digests, evidence
/// digests, projection digests). A measured duration differs from one build to the next, so
/// it would make every one of those differ; the computed digests, errors and verdicts do
/// not (the inputs derive from the campaign's seeds), and they stay as the runner measured.
#[derive(Debug, Default)]
struct SimulatedClockSink {
    launches: Vec<(String, Value)>,
}

impl EventSink for SimulatedClockSink {
    fn emit(&mut self, ty: &str, _subject: &str, mut data: Value) -> Result<(), SinkError> {
        match ty {
            "kernel.launch.completed" | "kernel.launch.faulted" => {
                if data.get("duration_us").is_some() {
                    let spec =
                        spec_of(&data).ok_or_else(|| SinkError::new(format!("no kernel in {data}")))?;
                    data["duration_us"] = json!(simulated_duration_us(&spec));
                }
                self.launches.push((ty.to_owned(), data));
            }
            // The runner's `gpu.preflight` describes the machine building the demo, not the
            // simulated worker (whose GPUs the demo's own preflights describe): not recorded.
            _ => {}
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The kernel and its parameters from a launch's `data` (`kernel` and `variant`).
fn spec_of(data: &Value) -> Option<KernelSpec> {
    let mut spec = data.get("variant")?.as_object()?.clone();
    spec.insert("kernel".into(), data.get("kernel")?.clone());
    // The variant also carries dtype, seed and range, which are not kernel parameters.
    for extra in ["dtype", "seed", "range"] {
        spec.remove(extra);
    }
    serde_json::from_value(Value::Object(spec)).ok()
}

/// Runs `file` through the kernel runner on the CPU backend, recording under `run` on
/// `worker`; the launches in the order the runner recorded them.
pub fn run(file: CampaignFile, run: &str, worker: &str) -> Result<Vec<Launch>, String> {
    let campaign =
        Campaign::parse(file.text).map_err(|e| format!("kernels/campaigns/{}.toml: {e}", file.name))?;
    let options = CampaignOptions {
        run: run.to_owned(),
        worker: worker.to_owned(),
        backend: BackendRequest::Cpu,
        isolation: Isolation::MayFault,
        child: None,
        cell_timeout: Duration::from_secs(60),
        device: 0,
        scratch: std::env::temp_dir(),
        kernel_log: None,
        xid_grace: Duration::from_millis(500),
    };
    // Not `Preflight::gather()`: the worker is simulated, and probing the machine that builds
    // the demo would make the history depend on it.
    let preflight = Preflight {
        cuda: CudaProbe::Unavailable { reason: "the demo runs the CPU backend".into() },
        nvml: Err("the demo's GPUs are simulated".into()),
    };
    let mut sink = SimulatedClockSink::default();
    // Built-in cells run and are recorded in matrix order, one launch each.
    let specs: Vec<KernelSpec> = campaign.cells.iter().map(|cell| cell.spec).collect();
    let report =
        run_campaign(&campaign, &options, &preflight, &mut sink, &AtomicBool::new(false), &mut |_| {})
            .map_err(|e| format!("campaign {}: {e}", file.name))?;
    if report.interrupted
        || sink.launches.len() != campaign.cells.len()
        || specs.len() != campaign.cells.len()
    {
        return Err(format!(
            "campaign {}: {} cells, {} launches recorded",
            file.name,
            campaign.cells.len(),
            sink.launches.len()
        ));
    }
    sink.launches
        .into_iter()
        .zip(specs)
        .map(|((ty, data), spec)| {
            let faulted = ty == "kernel.launch.faulted";
            let fact = LaunchFact {
                kernel: spec.name(),
                variant: data["variant"].clone(),
                backend: if data["backend"] == "cuda" { "cuda" } else { "cpu" },
                passed: !faulted && data["passed"] == Value::Bool(true),
                faulted,
            };
            Ok(Launch { ty, data, fact, spec })
        })
        .collect()
}

/// Whether a launch is of the NVFP4 kernel (the one whose CUDA launches fault on Blackwell).
pub fn is_nvfp4(spec: &KernelSpec) -> bool {
    matches!(spec, KernelSpec::Fp4DequantMatmul { format: Fp4Format::Nvfp4, .. })
}

/// The simulated CUDA fault of an NVFP4 launch on the emulated Blackwell device, for the
/// cell `cpu` (the CPU launch of the same cell) ran.
pub fn simulated_fault(cpu: &Launch, device_uuid: &str, device_name: &str) -> (Value, LaunchFact) {
    let variant = cpu.data["variant"].clone();
    let data = json!({
        "run": cpu.data["run"],
        "kernel": cpu.spec.name(),
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
    (data, LaunchFact { kernel: cpu.spec.name(), variant, backend: "cuda", passed: false, faulted: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaigns_run_through_the_runner_and_repeat_exactly() {
        for file in [REGRESSION, BRINGUP] {
            let first = run(file, "r-1", "node-1").unwrap_or_else(|e| panic!("{e}"));
            let cells = Campaign::parse(file.text).expect("parses").cells;
            assert_eq!(first.len(), cells.len(), "{}", file.name);
            for (launch, cell) in first.iter().zip(&cells) {
                assert_eq!(launch.spec, cell.spec);
                assert_eq!(launch.ty, "kernel.launch.completed");
                assert_eq!(launch.data["run"], "r-1");
                assert_eq!(launch.data["variant"], cell.variant());
                assert_eq!(launch.data["duration_us"], json!(simulated_duration_us(&cell.spec)));
            }
            // The broken matmul fails with a real error; everything else passes.
            for launch in &first {
                let broken = launch.spec.name() == "matmul_tiled_broken";
                assert_eq!(launch.fact.passed, !broken, "{}", launch.data);
                if broken {
                    let err = launch.data["max_abs_err"].as_f64().expect("finite error");
                    assert!(err > launch.data["tolerance"].as_f64().expect("tolerance"), "{}", launch.data);
                }
            }
            assert!(first.iter().any(|l| l.spec.name() == "matmul_tiled_broken"), "{}", file.name);
            let again = run(file, "r-1", "node-1").expect("runs again");
            let data = |ls: &[Launch]| ls.iter().map(|l| l.data.clone()).collect::<Vec<_>>();
            assert_eq!(data(&first), data(&again), "{}: the same launches every time", file.name);
        }
    }

    #[test]
    fn the_simulated_fault_names_its_cell() {
        let launches = run(BRINGUP, "r-2", "node-1").expect("runs");
        let nvfp4 = launches.iter().find(|l| is_nvfp4(&l.spec)).expect("an NVFP4 cell");
        let (data, fact) = simulated_fault(nvfp4, "GPU-1", "B200");
        assert_eq!(data["variant"], nvfp4.data["variant"]);
        assert_eq!(data["run"], "r-2");
        assert!(fact.faulted && !fact.passed);
        assert!(data["detail"].as_str().is_some_and(|d| d.starts_with("SIMULATED")));
    }
}

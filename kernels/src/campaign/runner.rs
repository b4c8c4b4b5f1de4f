//! Running a whole campaign: preflight, every cell, one event per cell.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use assay_events::EventType;

use super::cell::{CellOutcome, run_cell_cpu};
use super::isolate::{ChildCommand, IsolatedRunner};
use super::summary::Summary;
use super::{Campaign, CampaignError, Cell};
use crate::backend::{Backend, BackendRequest};
use crate::preflight::Preflight;
use crate::sink::{EventSink, is_identifier};

/// Which cells run in a child process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Isolation {
    /// Cells that may fault (CUDA launches) run in a child; CPU cells run in this process.
    #[default]
    MayFault,
    /// Every cell runs in a child.
    Always,
}

/// How to run a campaign.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// The run id the launches are recorded under.
    pub run: String,
    /// The worker (host) name for `gpu.preflight`.
    pub worker: String,
    /// `--backend`.
    pub backend: BackendRequest,
    /// Which cells run in a child.
    pub isolation: Isolation,
    /// How to start a cell child; required for CUDA cells and [`Isolation::Always`].
    pub child: Option<ChildCommand>,
    /// How long one cell may take in a child before it is killed.
    pub cell_timeout: Duration,
}

/// What a campaign did.
#[derive(Debug, Clone)]
pub struct CampaignReport {
    /// The run id.
    pub run: String,
    /// The backend the cells ran on (CPU-only kernels always run on the CPU).
    pub backend: Backend,
    /// Why CUDA was not used, when it was not.
    pub cuda_unavailable: Option<String>,
    /// Counts and problems.
    pub summary: Summary,
    /// Whether an interrupt stopped it before the last cell.
    pub interrupted: bool,
    /// Child processes started.
    pub children: u64,
}

fn recording(error: impl std::fmt::Display) -> CampaignError {
    CampaignError(format!("recording failed: {error}"))
}

/// Records `gpu.preflight`, then runs every cell and records each outcome. Stops between
/// cells once `interrupted` is set. `progress` sees each cell as it is recorded.
pub fn run_campaign(
    campaign: &Campaign,
    options: &CampaignOptions,
    preflight: &Preflight,
    sink: &mut dyn EventSink,
    interrupted: &AtomicBool,
    progress: &mut dyn FnMut(&Cell, &CellOutcome),
) -> Result<CampaignReport, CampaignError> {
    if !is_identifier(&options.run) {
        return Err(CampaignError(format!("{:?} is not a valid run id", options.run)));
    }
    if !is_identifier(&options.worker) {
        return Err(CampaignError(format!("{:?} is not a valid worker name", options.worker)));
    }
    let subject = format!("worker/{}", options.worker);
    sink.emit(EventType::GpuPreflight.as_str(), &subject, preflight.gpu_preflight(&options.worker))
        .map_err(recording)?;
    let backend = match (options.backend, preflight.available()) {
        (BackendRequest::Cpu, _) | (BackendRequest::Auto, false) => Backend::Cpu,
        (BackendRequest::Auto, true) | (BackendRequest::Cuda, true) => Backend::Cuda,
        (BackendRequest::Cuda, false) => {
            sink.flush().map_err(recording)?;
            let reason = preflight.unavailable_reason().unwrap_or_default();
            return Err(CampaignError(format!("--backend cuda, but CUDA is unavailable: {reason}")));
        }
    };
    let cuda_unavailable = if backend == Backend::Cpu { preflight.unavailable_reason() } else { None };
    let needs_child = backend == Backend::Cuda || options.isolation == Isolation::Always;
    let mut isolated = match (&options.child, needs_child) {
        (Some(command), true) => Some(IsolatedRunner::new(command.clone(), options.cell_timeout)),
        (None, true) => {
            return Err(CampaignError("cells must run in a child, but no child command was given".into()));
        }
        (_, false) => None,
    };
    let subject = format!("run/{}", options.run);
    let mut summary = Summary::default();
    let mut was_interrupted = false;
    for cell in &campaign.cells {
        if interrupted.load(Ordering::Relaxed) {
            was_interrupted = true;
            break;
        }
        let on_cuda = backend == Backend::Cuda && cell.spec.has_cuda_kernel();
        let outcome = match isolated.as_mut() {
            Some(child) if on_cuda => child.run(cell, Backend::Cuda),
            Some(child) if options.isolation == Isolation::Always => child.run(cell, Backend::Cpu),
            _ => run_cell_cpu(cell),
        };
        let (ty, data) = outcome.event(&options.run, cell);
        sink.emit(ty, &subject, data).map_err(recording)?;
        summary.record(cell, &outcome);
        progress(cell, &outcome);
    }
    let children = isolated.as_ref().map_or(0, IsolatedRunner::spawned);
    if let Some(mut child) = isolated {
        child.shutdown();
    }
    sink.flush().map_err(recording)?;
    Ok(CampaignReport {
        run: options.run.clone(),
        backend,
        cuda_unavailable,
        summary,
        interrupted: was_interrupted,
        children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::CudaProbe;
    use crate::sink::MemorySink;

    fn campaign() -> Campaign {
        Campaign::parse(
            r#"
            name = "t"
            tolerance = 1e-4
            [[kernel]]
            name = "saxpy"
            n = [1, 100]
            alpha = 2
            [[kernel]]
            name = "matmul_tiled_broken"
            shape = { m = 8, n = 8, k = 40 }
            tile = 8
            "#,
        )
        .expect("campaign")
    }

    fn options() -> CampaignOptions {
        CampaignOptions {
            run: "r-1".into(),
            worker: "w".into(),
            backend: BackendRequest::Auto,
            isolation: Isolation::MayFault,
            child: None,
            cell_timeout: Duration::from_secs(60),
        }
    }

    fn no_gpu() -> Preflight {
        Preflight { cuda: CudaProbe::Unavailable { reason: "no driver".into() }, nvml: Err("no NVML".into()) }
    }

    #[test]
    fn records_preflight_then_every_cell() {
        let mut sink = MemorySink::new();
        let mut seen = 0;
        let report = run_campaign(
            &campaign(),
            &options(),
            &no_gpu(),
            &mut sink,
            &AtomicBool::new(false),
            &mut |_, _| seen += 1,
        )
        .expect("runs");
        assert_eq!(seen, 3);
        assert_eq!(report.backend, Backend::Cpu);
        assert_eq!(report.cuda_unavailable.as_deref(), Some("no driver; no NVML"));
        assert_eq!(sink.events[0].ty, "gpu.preflight");
        assert_eq!(sink.events[0].subject, "worker/w");
        assert_eq!(sink.events[0].data["unavailable_reason"], "no driver; no NVML");
        let launches = sink.of_type("kernel.launch.completed");
        assert_eq!(launches.len(), 3);
        assert!(launches.iter().all(|e| e.subject == "run/r-1"));
        assert_eq!(launches[2].data["kernel"], "matmul_tiled_broken");
        assert_eq!(launches[2].data["passed"], false);
        assert_eq!(report.summary.totals.failed, 1);
        assert_eq!(report.summary.totals.passed, 2);
        assert!(report.summary.render().contains("matmul_tiled_broken"));
        assert!(sink.flushes >= 1);
    }

    #[test]
    fn cuda_required_without_cuda_is_an_error_after_preflight() {
        let mut sink = MemorySink::new();
        let options = CampaignOptions { backend: BackendRequest::Cuda, ..options() };
        let error = run_campaign(
            &campaign(),
            &options,
            &no_gpu(),
            &mut sink,
            &AtomicBool::new(false),
            &mut |_, _| {},
        )
        .expect_err("cuda is unavailable");
        assert!(error.0.contains("no driver"), "{error}");
        assert_eq!(sink.events.len(), 1);
    }

    #[test]
    fn an_interrupt_stops_between_cells() {
        let mut sink = MemorySink::new();
        let stop = AtomicBool::new(false);
        let report = run_campaign(&campaign(), &options(), &no_gpu(), &mut sink, &stop, &mut |_, _| {
            stop.store(true, Ordering::Relaxed)
        })
        .expect("runs");
        assert!(report.interrupted);
        assert_eq!(report.summary.totals.total(), 1);
    }
}

//! Running a whole campaign: preflight, every cell, one event per cell.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use assay_events::EventType;

use serde_json::Value;

use super::cell::run_cell_cpu;
use super::command_run::{CommandEnv, CommandLaunch, run_command_cell};
use super::cuda_cell::not_runnable;
use super::isolate::{ChildCommand, IsolatedRunner};
use super::kept::{keep_launch, outputs_before};
use super::summary::Summary;
use super::xids::{SeenXid, XidWatch, xid_data};
use super::{Campaign, CampaignError};
use crate::backend::{Backend, BackendRequest};
use crate::preflight::Preflight;
use crate::sink::SinkError;
use crate::sink::{EventSink, is_identifier};
use crate::xid::accepted_actions;

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
    /// How long one cell may take in a child before it is killed (command cells: unless
    /// their table sets `timeout`).
    pub cell_timeout: Duration,
    /// The CUDA device ordinal cells run on (command cells get it as `CUDA_VISIBLE_DEVICES`).
    pub device: u32,
    /// Folder for command cells' result files.
    pub scratch: std::path::PathBuf,
    /// The kernel log to follow for Xids during command cells (a file or a kmsg device).
    pub kernel_log: Option<std::path::PathBuf>,
    /// How long after a cell's end an Xid still counts as the cell's.
    pub xid_grace: Duration,
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
    /// `gpu.xid` events recorded (attached to a launch, and not).
    pub xids: u64,
    /// Why the kernel log stopped being followed, if it did.
    pub xid_note: Option<String>,
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
    progress: &mut dyn FnMut(bool),
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
    // Each launch's ordinal in the run: a fallback names its primary by it, and an Xid the
    // launch it happened in.
    let mut launch = 0u64;
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
        let (ty, mut data) = outcome.event(&options.run, cell);
        data["launch"] = Value::from(launch);
        launch += 1;
        sink.emit(ty, &subject, data).map_err(recording)?;
        summary.record(cell, &outcome);
        progress(outcome.passed());
    }
    // [[cuda]] cells: in a child on CUDA; where CUDA is not used, recorded as not runnable.
    let not_runnable_reason = match (options.backend, &cuda_unavailable) {
        (BackendRequest::Cpu, _) => "the campaign was asked to run on the CPU (--backend cpu)".to_owned(),
        (_, Some(reason)) => reason.clone(),
        (_, None) => "CUDA is not in use".to_owned(),
    };
    for cell in &campaign.cuda {
        if was_interrupted || interrupted.load(Ordering::Relaxed) {
            was_interrupted = true;
            break;
        }
        let outcome = match (backend, isolated.as_mut()) {
            (Backend::Cuda, Some(child)) => child.run_source(cell),
            _ => not_runnable(&not_runnable_reason),
        };
        let (ty, mut data) = outcome.event_for(&options.run, &cell.name, cell.variant());
        data["launch"] = Value::from(launch);
        launch += 1;
        sink.emit(ty, &subject, data).map_err(recording)?;
        summary.record_source(cell, &outcome);
        progress(outcome.passed());
    }
    let env = CommandEnv {
        visible_devices: options.device.to_string(),
        backend,
        device: match backend {
            Backend::Cuda => preflight.device_uuid(options.device).unwrap_or_else(|| "cpu".to_owned()),
            Backend::Cpu => "cpu".to_owned(),
        },
        scratch: options.scratch.clone(),
        timeout: options.cell_timeout,
        spool: sink.keeps_evidence(),
    };
    let mut result_files = 0u64;
    let mut watch = match &options.kernel_log {
        Some(path) => Some(
            XidWatch::open(path)
                .map_err(|e| CampaignError(format!("following the kernel log {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut xids = Xids {
        watch: watch.as_mut(),
        gpu: preflight.device(options.device).map(|d| d.pci.clone()),
        grace: options.xid_grace,
        host: options.worker.clone(),
        accepted: accepted_actions(),
        recorded: 0,
        note: None,
        unattached: Vec::new(),
    };
    for cell in &campaign.commands {
        if was_interrupted || interrupted.load(Ordering::Relaxed) {
            was_interrupted = true;
            break;
        }
        let before = outputs_before(cell);
        let primary = run_command_cell(cell, &env, &mut result_files, interrupted);
        if primary.interrupted() {
            was_interrupted = true;
            break;
        }
        let attached = xids.seen_during(&primary);
        let (ty, data) = primary.event(&options.run, cell, &env, launch, None);
        sink.emit(ty, &subject, data).map_err(recording)?;
        keep_launch(sink, &options.run, launch, cell, &primary, &before).map_err(recording)?;
        xids.record(sink, &attached, &options.run, launch)?;
        summary.record_command(cell, env.backend.as_str(), &primary, &codes(&attached));
        progress(primary.passed());
        let primary_launch = launch;
        launch += 1;
        if let (false, Some(fallback)) = (primary.passed(), &cell.fallback) {
            let before = outputs_before(fallback);
            let second = run_command_cell(fallback, &env, &mut result_files, interrupted);
            if second.interrupted() {
                was_interrupted = true;
                break;
            }
            let attached = xids.seen_during(&second);
            let (ty, data) = second.event(&options.run, fallback, &env, launch, Some(primary_launch));
            sink.emit(ty, &subject, data).map_err(recording)?;
            keep_launch(sink, &options.run, launch, fallback, &second, &before).map_err(recording)?;
            xids.record(sink, &attached, &options.run, launch)?;
            summary.record_fallback(fallback, &second, &codes(&attached));
            launch += 1;
        }
    }
    xids.finish(sink)?;
    let (xids_recorded, xid_note) = (xids.recorded, xids.note.take());
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
        xids: xids_recorded,
        xid_note,
    })
}

/// The kernel log as a campaign follows it, and what it recorded.
struct Xids<'a> {
    watch: Option<&'a mut XidWatch>,
    /// The cell's GPU's PCI id, when NVML knows it.
    gpu: Option<String>,
    grace: Duration,
    host: String,
    accepted: Vec<String>,
    recorded: u64,
    note: Option<String>,
    /// Seen, not attached, not yet recorded.
    unattached: Vec<SeenXid>,
}

impl Xids<'_> {
    /// The Xids that happened during `launch` on its GPU. Waits out the grace only after a
    /// launch that did not pass: a passing cell is not held up for a fault it did not have.
    /// Xids seen that are not the launch's are recorded at once, naming no launch.
    fn seen_during(&mut self, launch: &CommandLaunch) -> Vec<SeenXid> {
        let Some(watch) = self.watch.as_deref_mut() else { return Vec::new() };
        let read =
            if launch.passed() { watch.poll() } else { watch.poll_until(launch.window.1 + self.grace) };
        if let Err(e) = read {
            self.note =
                Some(format!("the kernel log could not be read ({e}); Xids were not followed after that"));
            self.watch = None;
            return Vec::new();
        }
        let (attached, other) = watch.take(launch.window, self.grace, self.gpu.as_deref());
        self.unattached.extend(other);
        attached
    }

    /// Records `attached` (naming `run` and `launch`) and any unattached Xids seen so far.
    fn record(
        &mut self,
        sink: &mut dyn EventSink,
        attached: &[SeenXid],
        run: &str,
        launch: u64,
    ) -> Result<(), CampaignError> {
        for seen in attached {
            self.emit(sink, seen, Some((run, launch))).map_err(recording)?;
        }
        for seen in std::mem::take(&mut self.unattached) {
            self.emit(sink, &seen, None).map_err(recording)?;
        }
        Ok(())
    }

    fn emit(
        &mut self,
        sink: &mut dyn EventSink,
        seen: &SeenXid,
        launch: Option<(&str, u64)>,
    ) -> Result<(), SinkError> {
        let data = xid_data(seen, &self.host, launch, &self.accepted);
        sink.emit(EventType::GpuXid.as_str(), &format!("gpu/{}", seen.report.pci), data)?;
        self.recorded += 1;
        Ok(())
    }

    /// Records what is left pending at the end of the campaign.
    fn finish(&mut self, sink: &mut dyn EventSink) -> Result<(), CampaignError> {
        if let Some(watch) = self.watch.as_deref_mut() {
            let _ = watch.poll();
            let rest = watch.drain();
            self.unattached.extend(rest);
        }
        for seen in std::mem::take(&mut self.unattached) {
            self.emit(sink, &seen, None).map_err(recording)?;
        }
        Ok(())
    }
}

fn codes(xids: &[SeenXid]) -> Vec<u32> {
    xids.iter().map(|x| x.report.code).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::NOT_RUNNABLE;
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
            device: 0,
            scratch: std::env::temp_dir(),
            kernel_log: None,
            xid_grace: Duration::from_millis(500),
        }
    }

    fn no_gpu() -> Preflight {
        Preflight { cuda: CudaProbe::Unavailable { reason: "no driver".into() }, nvml: Err("no NVML".into()) }
    }

    #[test]
    fn records_preflight_then_every_cell() {
        let mut sink = MemorySink::new();
        let mut seen = 0;
        let report =
            run_campaign(&campaign(), &options(), &no_gpu(), &mut sink, &AtomicBool::new(false), &mut |_| {
                seen += 1
            })
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
        let error =
            run_campaign(&campaign(), &options, &no_gpu(), &mut sink, &AtomicBool::new(false), &mut |_| {})
                .expect_err("cuda is unavailable");
        assert!(error.0.contains("no driver"), "{error}");
        assert_eq!(sink.events.len(), 1);
    }

    #[test]
    fn cuda_cells_without_cuda_are_recorded_not_runnable_never_passed() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/examples/own-saxpy.toml");
        let campaign = Campaign::load(&path).unwrap_or_else(|e| panic!("{e}"));
        for backend in [BackendRequest::Auto, BackendRequest::Cpu] {
            let mut sink = MemorySink::new();
            let options = CampaignOptions { backend, ..options() };
            let report = run_campaign(
                &campaign,
                &options,
                &no_gpu(),
                &mut sink,
                &AtomicBool::new(false),
                &mut |passed| assert!(!passed),
            )
            .expect("runs");
            assert!(sink.of_type("kernel.launch.completed").is_empty());
            let faulted = sink.of_type("kernel.launch.faulted");
            assert_eq!(faulted.len(), campaign.cuda.len());
            for (ordinal, (event, cell)) in faulted.iter().zip(&campaign.cuda).enumerate() {
                assert_eq!(event.data["error"], NOT_RUNNABLE);
                assert_eq!(event.data["kernel"], cell.name.as_str());
                assert_eq!(event.data["variant"], cell.variant());
                assert_eq!(event.data["backend"], "cuda");
                assert_eq!(event.data["sticky"], false);
                assert_eq!(event.data["launch"], ordinal as u64);
                let detail = event.data["detail"].as_str().expect("detail");
                let why = if backend == BackendRequest::Cpu { "--backend cpu" } else { "no driver" };
                assert!(detail.contains(why), "{detail}");
            }
            let totals = report.summary.totals;
            assert_eq!((totals.passed, totals.failed, totals.faulted), (0, 0, campaign.cuda.len() as u64));
            assert_eq!(report.summary.not_runnable, campaign.cuda.len() as u64);
            assert!(report.summary.render().contains("not runnable here"), "{}", report.summary.render());
        }
    }

    #[test]
    fn an_interrupt_stops_between_cells() {
        let mut sink = MemorySink::new();
        let stop = AtomicBool::new(false);
        let report = run_campaign(&campaign(), &options(), &no_gpu(), &mut sink, &stop, &mut |_| {
            stop.store(true, Ordering::Relaxed)
        })
        .expect("runs");
        assert!(report.interrupted);
        assert_eq!(report.summary.totals.total(), 1);
    }
}

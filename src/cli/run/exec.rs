//! `assay run exec (--db|--server) --key K.key --run R [--evidence DIR] [--metrics FILE]
//! [--quiet-window 5s] [--cpu-quiet-pct 5] -- CMD ARGS…`: the wake gate.
//!
//! Starts CMD in its own process group and records `run.started`, `run.heartbeat` (CPU% and
//! RSS of the process tree, GPU utilisation via NVML when present), `metric.recorded` per
//! line appended to the metrics file, `run.finished`, `evidence.captured`, and `run.quiesced`
//! once the tree is gone and CPU and GPU stayed under their thresholds for the quiet window.
//! Ctrl-C is forwarded to the group (SIGINT, then SIGTERM, then SIGKILL) and the run is still
//! recorded. Exits with the command's status (128 + signal when it was killed).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use assay_events::roles::Role;
use assay_kernels::nvml::{NvmlUtilization, probe_nvml};
use assay_kernels::supervise::{ExecOptions, GpuUtilization, exec};

use super::{Opened, SinkArgs, count_interrupts, open_sink_keeping, parse_duration};
use crate::cli::Exit;

#[derive(clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// The run id.
    #[arg(long)]
    run: String,
    /// Worker name recorded in run.started.
    #[arg(long)]
    worker: Option<String>,
    /// The run's GPU (PCI id) for run.started and GPU sampling (default: every GPU).
    #[arg(long)]
    gpu: Option<String>,
    /// Folder whose files are hashed into evidence.captured after the command exits (created
    /// if absent, before the command starts, so that it can write there); each file is first
    /// copied into the ledger's evidence store (the server's with --server).
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// JSONL file the command appends metrics to ({"name","step","value","unit"?} per line).
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// How long CPU and GPU must stay under their thresholds after the command exits.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    quiet_window: Duration,
    /// CPU threshold of the quiet window, percent of one core.
    #[arg(long, default_value_t = 5.0)]
    cpu_quiet_pct: f64,
    /// GPU threshold of the quiet window, percent.
    #[arg(long, default_value_t = 5.0)]
    gpu_quiet_pct: f64,
    /// How often the process tree is sampled (default: a fifth of the quiet window, at most 1s).
    #[arg(long, value_parser = parse_duration)]
    sample_every: Option<Duration>,
    /// How often a heartbeat is recorded while the tree runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    heartbeat_every: Duration,
    /// Stop waiting for quiet this long after the command exits (no run.quiesced then).
    #[arg(long, value_parser = parse_duration)]
    quiesce_timeout: Option<Duration>,
    /// Do not sample GPUs through NVML.
    #[arg(long)]
    no_nvml: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<OsString>,
}

pub async fn run(a: ExecArgs) -> anyhow::Result<Exit> {
    anyhow::ensure!(
        a.cpu_quiet_pct.is_finite() && a.cpu_quiet_pct >= 0.0,
        "--cpu-quiet-pct must be a number >= 0"
    );
    anyhow::ensure!(
        a.gpu_quiet_pct.is_finite() && a.gpu_quiet_pct >= 0.0,
        "--gpu-quiet-pct must be a number >= 0"
    );
    let sample_every = a
        .sample_every
        .unwrap_or_else(|| (a.quiet_window / 5).clamp(Duration::from_millis(20), Duration::from_secs(1)));
    let options = ExecOptions {
        run: a.run.clone(),
        command: a.command.clone(),
        worker: a.worker.clone(),
        gpu: a.gpu.clone(),
        evidence: a.evidence.clone(),
        metrics: a.metrics.clone(),
        quiet_window: a.quiet_window,
        cpu_quiet_pct: a.cpu_quiet_pct,
        gpu_quiet_pct: a.gpu_quiet_pct,
        sample_every,
        heartbeat_every: a.heartbeat_every,
        quiesce_timeout: a.quiesce_timeout,
    };
    let Opened { sink, closer, .. } =
        open_sink_keeping(&a.sink, &[Role::Worker, Role::Runner], a.evidence.is_some()).await?;
    if let Some(dir) = &a.evidence
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        closer.close().await;
        return Err(anyhow::Error::new(e).context(format!("--evidence: creating {}", dir.display())));
    }
    let interrupts = count_interrupts()?;
    let no_nvml = a.no_nvml;
    let gpu_pci = a.gpu.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        let mut gpu = if no_nvml {
            None
        } else {
            probe_nvml().ok().map(|handle| NvmlUtilization { handle, pci: gpu_pci })
        };
        let gpu_ref = gpu.as_mut().map(|g| g as &mut dyn GpuUtilization);
        exec(&options, sink.as_mut(), gpu_ref, &interrupts)
    })
    .await
    .context("the supervision task failed")?;
    closer.close().await;
    let report = result?;
    let status = match (report.exit_code, report.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal} ({})", assay_kernels::campaign::signal_name(signal)),
        (None, None) => "unknown status".to_owned(),
    };
    eprintln!(
        "run {}: pid {} ended with {status} after {:.3} s; {} heartbeat(s), {} metric(s), {} evidence file(s){}",
        a.run,
        report.pid,
        report.duration.as_secs_f64(),
        report.heartbeats,
        report.metrics,
        report.evidence_files,
        match report.quiesced {
            Some(q) => format!(", quiesced (cpu max {:.1}%)", q.cpu_pct_max),
            None => ", not quiesced".to_owned(),
        }
    );
    match report.shell_status() {
        0 => Ok(Exit::Ok),
        code => std::process::exit(code),
    }
}

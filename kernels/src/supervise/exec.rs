//! A supervised run: start a command in its own process group, record what it does, and
//! wait for the wake gate.
//!
//! Events, all with subject `run/<run>`: `run.started`; `run.heartbeat` while the tree lives;
//! `metric.recorded` per metrics line as it appears; `run.finished` when the leader exits;
//! `evidence.captured` for the evidence folder; `run.quiesced` once the tree is gone and
//! CPU and GPU stayed quiet for the window.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assay_events::EventType;
use serde_json::{Value, json};

use super::evidence::{evidence_events, hash_folder, keep_files};
use super::metrics::MetricsTail;
use super::proc::{clock_ticks_per_second, page_size, signal_group, snapshot, uptime_seconds};
use super::quiet::{Quiesced, QuietConfig, QuietGate, QuietSample, QuietState};
use super::tree::{TreeSample, TreeTracker};
use crate::campaign::signal_name;
use crate::sink::{EventSink, SinkError, is_identifier};

/// GPU utilisation for heartbeats and the quiet window.
pub trait GpuUtilization {
    /// Current utilisation in percent (0–100), or `None` when it cannot be read.
    fn utilization_pct(&mut self) -> Option<f64>;
}

/// What to run and how to watch it.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Run id.
    pub run: String,
    /// argv; the first element is the program.
    pub command: Vec<OsString>,
    /// Worker name for `run.started`.
    pub worker: Option<String>,
    /// GPU (PCI id) for `run.started`.
    pub gpu: Option<String>,
    /// Folder whose files are hashed into `evidence.captured` after the run.
    pub evidence: Option<PathBuf>,
    /// JSONL file of metrics the run appends to.
    pub metrics: Option<PathBuf>,
    /// Quiet window.
    pub quiet_window: Duration,
    /// CPU threshold of the quiet window, percent of one core.
    pub cpu_quiet_pct: f64,
    /// GPU threshold of the quiet window, percent.
    pub gpu_quiet_pct: f64,
    /// How often the tree is sampled.
    pub sample_every: Duration,
    /// How often a heartbeat is recorded while the tree lives.
    pub heartbeat_every: Duration,
    /// Give up waiting for quiet after this long past the leader's exit.
    pub quiesce_timeout: Option<Duration>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecReport {
    /// The leader's pid (and process group).
    pub pid: u32,
    /// Exit status, when it exited normally.
    pub exit_code: Option<i32>,
    /// Terminating signal, when it was killed.
    pub signal: Option<i32>,
    /// Start to exit of the leader.
    pub duration: Duration,
    /// The quiet window's maxima, when the gate opened.
    pub quiesced: Option<Quiesced>,
    /// Heartbeats recorded.
    pub heartbeats: u64,
    /// Metrics recorded.
    pub metrics: u64,
    /// Metrics lines refused (reported on stderr).
    pub bad_metric_lines: u64,
    /// Evidence files recorded.
    pub evidence_files: usize,
    /// Interrupts forwarded to the group.
    pub interrupts: u32,
}

impl ExecReport {
    /// The status a shell would report: the exit code, or 128 + signal.
    pub fn shell_status(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }
}

/// Why supervision failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The options are unusable.
    #[error("{0}")]
    Invalid(String),
    /// The command could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The sink refused an event; the command (pid) may still be running.
    #[error("recording failed (the command's process group {pid} is left running): {source}")]
    Sink {
        /// The leader's pid.
        pid: u32,
        /// Why.
        source: SinkError,
    },
}

/// Longest argv element recorded in `run.started`, characters.
const ARG_MAX_CHARS: usize = 32_768;
/// Most argv elements recorded.
const ARGS_MAX: usize = 4096;

fn uptime_ticks(ticks_per_second: u64) -> u64 {
    (uptime_seconds().unwrap_or(0.0) * ticks_per_second as f64) as u64
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Runs `options.command` under supervision, recording into `sink`. `interrupts` counts
/// Ctrl-C presses (or SIGTERMs) the caller received: the first is forwarded to the group
/// as SIGINT, the second as SIGTERM, later ones as SIGKILL.
pub fn exec(
    options: &ExecOptions,
    sink: &mut dyn EventSink,
    mut gpu: Option<&mut dyn GpuUtilization>,
    interrupts: &AtomicU32,
) -> Result<ExecReport, ExecError> {
    if !is_identifier(&options.run) {
        return Err(ExecError::Invalid(format!("{:?} is not a valid run id", options.run)));
    }
    if let Some(worker) = options.worker.as_deref().filter(|w| !is_identifier(w)) {
        return Err(ExecError::Invalid(format!("{worker:?} is not a valid worker name")));
    }
    let Some((program, args)) = options.command.split_first() else {
        return Err(ExecError::Invalid("no command given".into()));
    };
    let subject = format!("run/{}", options.run);
    let run = options.run.as_str();
    let ticks_per_second = clock_ticks_per_second();
    let start_uptime = uptime_ticks(ticks_per_second);
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .process_group(0)
        .spawn()
        .map_err(|source| ExecError::Spawn { program: program.to_string_lossy().into_owned(), source })?;
    let pid = child.id();
    // The waiter owns the child and notes the exact exit instant.
    let (exit_tx, exit_rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = exit_tx.send((status, Instant::now()));
    });
    let mut recorder = Recorder { sink, pid, emitted: false };

    let mut started_data = json!({"run": run, "pid": pid});
    let command: Vec<String> = options
        .command
        .iter()
        .take(ARGS_MAX)
        .map(|a| a.to_string_lossy().chars().take(ARG_MAX_CHARS).collect())
        .collect();
    started_data["command"] = Value::from(command);
    if let Some(worker) = &options.worker {
        started_data["worker"] = Value::from(worker.as_str());
    }
    if let Some(gpu) = &options.gpu {
        started_data["gpu"] = Value::from(gpu.as_str());
    }
    recorder.emit(EventType::RunStarted.as_str(), &subject, started_data)?;
    recorder.submit()?;

    let mut tracker = TreeTracker::new(pid, pid, ticks_per_second, page_size(), start_uptime);
    let mut gate = QuietGate::new(QuietConfig {
        window_ns: i64::try_from(options.quiet_window.as_nanos()).unwrap_or(i64::MAX),
        cpu_pct: options.cpu_quiet_pct,
        gpu_pct: options.gpu_quiet_pct,
    });
    let mut metrics = options.metrics.clone().map(MetricsTail::new);
    let sample_every = options.sample_every.max(Duration::from_millis(10));
    let heartbeat_every = options.heartbeat_every.max(Duration::from_millis(10));
    let tick = sample_every.min(Duration::from_millis(100));
    let mut next_sample = started + sample_every;
    let mut last_heartbeat = started;
    let mut report = ExecReport {
        pid,
        exit_code: None,
        signal: None,
        duration: Duration::ZERO,
        quiesced: None,
        heartbeats: 0,
        metrics: 0,
        bad_metric_lines: 0,
        evidence_files: 0,
        interrupts: 0,
    };
    let mut exited_at: Option<Instant> = None;

    loop {
        // Interrupts: escalate SIGINT → SIGTERM → SIGKILL to the whole group.
        // Once the command has exited and its group is gone, an interrupt stops the wait for
        // quiet instead (nothing is left to signal).
        let pressed = interrupts.load(Ordering::Relaxed);
        let mut stop_waiting = false;
        while report.interrupts < pressed {
            report.interrupts += 1;
            let signal = match report.interrupts {
                1 => libc::SIGINT,
                2 => libc::SIGTERM,
                _ => libc::SIGKILL,
            };
            if signal_group(pid, signal) {
                eprintln!("forwarded {} to process group {pid}", signal_name(signal));
            } else if exited_at.is_some() {
                stop_waiting = true;
            }
        }
        if stop_waiting {
            if let Some(tail) = metrics.as_mut() {
                record_metrics(tail, true, run, &subject, &mut recorder, &mut report)?;
            }
            recorder.flush()?;
            eprintln!("interrupted while waiting for quiet; no run.quiesced recorded");
            return Ok(report);
        }

        // Metrics as they appear.
        if let Some(tail) = metrics.as_mut() {
            record_metrics(tail, false, run, &subject, &mut recorder, &mut report)?;
        }

        // The leader's exit.
        if exited_at.is_none()
            && let Ok((status, at)) = exit_rx.try_recv()
        {
            exited_at = Some(at);
            report.duration = at.saturating_duration_since(started);
            match status {
                Ok(status) => {
                    report.exit_code = status.code();
                    report.signal = status.signal();
                }
                Err(e) => eprintln!("waiting for pid {pid}: {e}"),
            }
            if let Some(tail) = metrics.as_mut() {
                // With the whole tree gone nobody will finish a last line without a newline.
                let tree_gone = snapshot()
                    .map(|all| tracker.members(&all).iter().all(|p| p.is_zombie()))
                    .unwrap_or(false);
                record_metrics(tail, tree_gone, run, &subject, &mut recorder, &mut report)?;
            }
            let duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX);
            recorder.emit(
                EventType::RunFinished.as_str(),
                &subject,
                json!({"run": run, "exit_code": report.exit_code, "signal": report.signal, "duration_ms": duration_ms}),
            )?;
            if let Some(folder) = &options.evidence {
                match hash_folder(folder) {
                    Ok((files, warnings)) => {
                        for warning in warnings {
                            eprintln!("evidence: {warning}");
                        }
                        if files.is_empty() {
                            eprintln!("evidence: {} holds no files; nothing captured", folder.display());
                        }
                        let files = keep_files(
                            files.into_iter().map(|f| (folder.join(&f.path), f)).collect(),
                            &mut *recorder.sink,
                        );
                        report.evidence_files = files.len();
                        for data in evidence_events(run, &files) {
                            recorder.emit(EventType::EvidenceCaptured.as_str(), &subject, data)?;
                        }
                    }
                    Err(e) => eprintln!("evidence: {}: {e}; nothing captured", folder.display()),
                }
            }
            recorder.submit()?;
        }

        let now = Instant::now();
        if now >= next_sample {
            next_sample = now + sample_every;
            let sample = match snapshot() {
                Ok(processes) => tracker.sample(&processes, uptime_ticks(ticks_per_second)),
                Err(e) => {
                    eprintln!("reading /proc: {e}");
                    TreeSample { processes: 0, cpu_pct: 0.0, rss_bytes: 0 }
                }
            };
            let gpu_util = gpu.as_mut().and_then(|g| g.utilization_pct()).map(|u| u.clamp(0.0, 100.0));
            if sample.processes > 0 && now.saturating_duration_since(last_heartbeat) >= heartbeat_every {
                last_heartbeat = now;
                let mut data = json!({
                    "run": run,
                    "cpu_pct": round1(sample.cpu_pct.max(0.0)),
                    "rss_bytes": sample.rss_bytes,
                    "processes": sample.processes,
                });
                if let Some(util) = gpu_util {
                    data["gpu_util_pct"] = Value::from(round1(util));
                }
                recorder.emit(EventType::RunHeartbeat.as_str(), &subject, data)?;
                report.heartbeats += 1;
            }
            let state = gate.observe(&QuietSample {
                at_ns: i64::try_from(now.saturating_duration_since(started).as_nanos()).unwrap_or(i64::MAX),
                leader_exited: exited_at.is_some(),
                processes: sample.processes,
                cpu_pct: sample.cpu_pct,
                gpu_util_pct: gpu_util,
            });
            if let QuietState::Quiesced(quiesced) = state {
                if let Some(tail) = metrics.as_mut() {
                    record_metrics(tail, true, run, &subject, &mut recorder, &mut report)?;
                }
                let data = json!({
                    "run": run,
                    "quiet_window_ms": quiesced.quiet_window_ms,
                    "cpu_pct_max": round1(quiesced.cpu_pct_max.max(0.0)),
                    "gpu_util_max": quiesced.gpu_util_max.map(round1),
                });
                recorder.emit(EventType::RunQuiesced.as_str(), &subject, data)?;
                recorder.flush()?;
                report.quiesced = Some(quiesced);
                return Ok(report);
            }
            if let (Some(limit), Some(at)) = (options.quiesce_timeout, exited_at)
                && now.saturating_duration_since(at) >= limit
            {
                if let Some(tail) = metrics.as_mut() {
                    record_metrics(tail, true, run, &subject, &mut recorder, &mut report)?;
                }
                recorder.flush()?;
                eprintln!(
                    "not quiet {:.1} s after the command exited ({} process(es) left in group {pid}); no run.quiesced recorded",
                    limit.as_secs_f64(),
                    sample.processes
                );
                return Ok(report);
            }
        }
        if recorder.emitted {
            recorder.submit()?;
        }
        let wait = next_sample.saturating_duration_since(Instant::now()).min(tick);
        std::thread::sleep(wait.max(Duration::from_millis(1)));
    }
}

struct Recorder<'a> {
    sink: &'a mut dyn EventSink,
    pid: u32,
    emitted: bool,
}

impl Recorder<'_> {
    fn emit(&mut self, ty: &str, subject: &str, data: Value) -> Result<(), ExecError> {
        self.emitted = true;
        self.sink.emit(ty, subject, data).map_err(|source| ExecError::Sink { pid: self.pid, source })
    }

    /// Hands emitted events on without waiting (sampling must not wait for commits).
    fn submit(&mut self) -> Result<(), ExecError> {
        self.emitted = false;
        self.sink.submit().map_err(|source| ExecError::Sink { pid: self.pid, source })
    }

    /// Waits until everything emitted is recorded.
    fn flush(&mut self) -> Result<(), ExecError> {
        self.emitted = false;
        self.sink.flush().map_err(|source| ExecError::Sink { pid: self.pid, source })
    }
}

fn record_metrics(
    tail: &mut MetricsTail,
    finish: bool,
    run: &str,
    subject: &str,
    recorder: &mut Recorder<'_>,
    report: &mut ExecReport,
) -> Result<(), ExecError> {
    let lines = match tail.poll(finish) {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("metrics: {e}");
            return Ok(());
        }
    };
    for (number, parsed) in lines {
        match parsed {
            Ok(metric) => {
                recorder.emit(EventType::MetricRecorded.as_str(), subject, metric.data(run))?;
                report.metrics += 1;
            }
            Err(reason) => {
                report.bad_metric_lines += 1;
                eprintln!("metrics line {number}: {reason}; skipped");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;

    fn options(run: &str, command: &[&str]) -> ExecOptions {
        ExecOptions {
            run: run.into(),
            command: command.iter().map(OsString::from).collect(),
            worker: None,
            gpu: None,
            evidence: None,
            metrics: None,
            quiet_window: Duration::from_millis(200),
            cpu_quiet_pct: 5.0,
            gpu_quiet_pct: 5.0,
            sample_every: Duration::from_millis(50),
            heartbeat_every: Duration::from_millis(50),
            quiesce_timeout: Some(Duration::from_secs(20)),
        }
    }

    #[test]
    fn records_start_finish_and_quiet() {
        let mut sink = MemorySink::new();
        let report = exec(&options("r-1", &["sh", "-c", "exit 3"]), &mut sink, None, &AtomicU32::new(0))
            .expect("exec");
        assert_eq!(report.exit_code, Some(3));
        assert_eq!(report.shell_status(), 3);
        assert!(report.quiesced.is_some());
        let types: Vec<&str> =
            sink.events.iter().map(|e| e.ty.as_str()).filter(|t| *t != "run.heartbeat").collect();
        assert_eq!(types, vec!["run.started", "run.finished", "run.quiesced"]);
        assert_eq!(sink.events[0].data["command"], json!(["sh", "-c", "exit 3"]));
        let finished = &sink.of_type("run.finished")[0].data;
        assert_eq!(finished["exit_code"], 3);
        assert!(finished["signal"].is_null());
        assert!(sink.of_type("run.quiesced")[0].data["gpu_util_max"].is_null());
    }

    #[test]
    fn a_signal_is_recorded_and_bad_input_refused() {
        let mut sink = MemorySink::new();
        let report =
            exec(&options("r-2", &["sh", "-c", "kill -TERM $$"]), &mut sink, None, &AtomicU32::new(0))
                .expect("exec");
        assert_eq!((report.exit_code, report.signal), (None, Some(15)));
        assert_eq!(report.shell_status(), 143);
        assert_eq!(sink.of_type("run.finished")[0].data["signal"], 15);
        assert!(matches!(
            exec(&options("bad id", &["true"]), &mut sink, None, &AtomicU32::new(0)),
            Err(ExecError::Invalid(_))
        ));
        assert!(matches!(
            exec(&options("r", &[]), &mut sink, None, &AtomicU32::new(0)),
            Err(ExecError::Invalid(_))
        ));
        assert!(matches!(
            exec(&options("r", &["/nonexistent/program"]), &mut sink, None, &AtomicU32::new(0)),
            Err(ExecError::Spawn { .. })
        ));
    }
}

//! Running a command cell: a child in its own process group with the cell in its environment,
//! a wall-clock limit, its output digested and classified, its verdict turned into a launch
//! event.
//!
//! Outcome classes (DESIGN §10): a CUDA error named in the output, a signal, a timeout or a
//! non-finite result → faulted; otherwise exit status 0 → completed (passed unless the command
//! reported `passed: false` or an error above the tolerance); any other exit status →
//! completed and failed.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use assay_events::EventType;
use serde::Serialize;
use serde_json::{Value, json};

use super::capture::{Spool, StreamReport, capture, capture_to};
use super::cell::clip;
use super::command::CommandCell;
use super::result::{CellResult, RESULT_BYTES_MAX, ResultError, metrics_value, parse_result};
use super::taxonomy::{self, Ending, FaultClass, NAN_IN_OUTPUT};
use crate::backend::Backend;
use crate::supervise::signal_group;

/// How often a waiting cell looks at the interrupt flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How long the output readers may go on after the child's group was killed (a process that
/// left the group can hold the pipes open; its output is then cut there).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Where and how command cells run.
#[derive(Debug, Clone)]
pub struct CommandEnv {
    /// `CUDA_VISIBLE_DEVICES` for every cell: the GPU the campaign runs on.
    pub visible_devices: String,
    /// The backend launches are recorded as (`cuda` when the runner found a usable GPU).
    pub backend: Backend,
    /// The device recorded: the GPU's UUID, or `cpu`.
    pub device: String,
    /// Folder for `ASSAY_RESULT_FILE`s (each removed after its cell).
    pub scratch: PathBuf,
    /// A cell's limit when its table sets none.
    pub timeout: Duration,
    /// Whether cells' stdout and stderr are spooled to `scratch` to be kept as evidence.
    pub spool: bool,
}

/// One run of a command.
#[derive(Debug, Clone)]
pub struct Execution {
    /// How it ended; `None` when it could not be started.
    pub ending: Option<Ending>,
    /// Whether an interrupt stopped it (it is then not recorded: it did not finish).
    pub interrupted: bool,
    /// Why it could not be started.
    pub spawn_error: Option<String>,
    /// Wall clock from start to exit, microseconds.
    pub wall_us: u64,
    /// When it started and ended (the window an Xid is attached in).
    pub window: (SystemTime, SystemTime),
    /// Its stdout.
    pub stdout: StreamReport,
    /// Its stderr.
    pub stderr: StreamReport,
    /// What it reported, if it reported.
    pub result: Option<Result<CellResult, ResultError>>,
    /// Its stdout and stderr as written to scratch files (with [`CommandEnv::spool`]).
    pub spools: [Option<Arc<Spool>>; 2],
}

fn empty_stream() -> StreamReport {
    capture(std::io::empty())
}

/// Runs `cell` once. `id` makes its result file's name unique within the campaign.
pub fn execute(cell: &CommandCell, env: &CommandEnv, id: u64, stop: &AtomicBool) -> Execution {
    let result_file = env.scratch.join(format!("assay-result-{}-{id}.json", std::process::id()));
    let _ = std::fs::remove_file(&result_file);
    let cell_json = Value::Object(cell.variant.clone()).to_string();
    let mut command = Command::new(&cell.argv[0]);
    command
        .args(&cell.argv[1..])
        .current_dir(&cell.cwd)
        .envs(cell.env.iter().map(|(k, v)| (k, v)))
        // The runner's own variables come last: a table's env cannot redirect them.
        .env("ASSAY_CELL", &cell_json)
        .env("ASSAY_RESULT_FILE", &result_file)
        .env("CUDA_VISIBLE_DEVICES", &env.visible_devices)
        // So that CUDA's ordinal is NVML's index (the device recorded on the launch).
        .env("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Execution {
                ending: None,
                interrupted: false,
                spawn_error: Some(format!("starting {:?}: {e}", cell.argv[0])),
                wall_us: 0,
                window: (started_at, SystemTime::now()),
                stdout: empty_stream(),
                stderr: empty_stream(),
                result: None,
                spools: [None, None],
            };
        }
    };
    let pid = child.id();
    let (out_tx, out_rx) = mpsc::sync_channel(1);
    let (err_tx, err_rx) = mpsc::sync_channel(1);
    // A spool that cannot be made leaves the stream digested, not kept.
    let spool_for = |stream: &str| {
        let path = env.scratch.join(format!("assay-{stream}-{}-{id}", std::process::id()));
        env.spool.then(|| std::fs::File::create(&path).ok().map(|file| (file, path))).flatten()
    };
    if let Some(stdout) = child.stdout.take() {
        let spool = spool_for("stdout");
        std::thread::spawn(move || {
            let _ = out_tx.send(capture_to(stdout, spool));
        });
    }
    if let Some(stderr) = child.stderr.take() {
        let spool = spool_for("stderr");
        std::thread::spawn(move || {
            let _ = err_tx.send(capture_to(stderr, spool));
        });
    }
    let (exit_tx, exit_rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = exit_tx.send((status, Instant::now()));
    });
    let limit = cell.timeout.unwrap_or(env.timeout);
    let deadline = started + limit;
    let mut interrupted = false;
    // Waits in slices so that an interrupt reaches a long cell: the cell's group is not the
    // terminal's, so Ctrl-C is forwarded to it (SIGINT, then SIGKILL after a grace).
    let waited = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        match exit_rx.recv_timeout(left.min(STOP_POLL)) {
            Ok(exit) => break Some(exit),
            Err(mpsc::RecvTimeoutError::Timeout) if stop.load(Ordering::Relaxed) && !interrupted => {
                interrupted = true;
                signal_group(pid, libc::SIGINT);
                match exit_rx.recv_timeout(DRAIN_GRACE) {
                    Ok(exit) => break Some(exit),
                    Err(_) => break None,
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Some((Err(std::io::Error::other("the waiter ended")), Instant::now()));
            }
        }
    };
    let (ending, exited) = match waited {
        Some((Ok(status), at)) => {
            let ending = match (status.code(), status.signal()) {
                (Some(code), _) => Ending::Exited(code),
                (None, Some(signal)) => Ending::Signaled(signal),
                (None, None) => Ending::Exited(-1),
            };
            (ending, at)
        }
        Some((Err(_), at)) => (Ending::Exited(-1), at),
        None => {
            signal_group(pid, libc::SIGKILL);
            // The leader was killed with the group; reap it so no zombie is left.
            let _ = exit_rx.recv_timeout(DRAIN_GRACE);
            (Ending::TimedOut, Instant::now())
        }
    };
    // Whatever the cell started is not left running after it.
    signal_group(pid, libc::SIGKILL);
    let wall_us = u64::try_from(exited.duration_since(started).as_micros()).unwrap_or(u64::MAX);
    let ended_at = SystemTime::now();
    let drain = |rx: mpsc::Receiver<(StreamReport, Option<Spool>)>| {
        rx.recv_timeout(DRAIN_GRACE).unwrap_or_else(|_| {
            let report = StreamReport {
                read_error: Some("the output was still open after the cell's group was killed".into()),
                ..empty_stream()
            };
            (report, None)
        })
    };
    let (stdout, stdout_spool) = drain(out_rx);
    let (stderr, stderr_spool) = drain(err_rx);
    let from_file = read_result_file(&result_file);
    let _ = std::fs::remove_file(&result_file);
    let result = from_file
        .or_else(|| stdout.result_line.as_deref().map(parse_result))
        .or_else(|| stderr.result_line.as_deref().map(parse_result));
    Execution {
        ending: Some(ending),
        interrupted,
        spawn_error: None,
        wall_us,
        window: (started_at, ended_at),
        stdout,
        stderr,
        result,
        spools: [stdout_spool.map(Arc::new), stderr_spool.map(Arc::new)],
    }
}

fn read_result_file(path: &std::path::Path) -> Option<Result<CellResult, ResultError>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    let read = file.take(RESULT_BYTES_MAX as u64 + 1).read_to_string(&mut text);
    Some(match read {
        Ok(_) if text.trim().is_empty() => return None,
        Ok(_) => parse_result(text.trim()),
        Err(e) => Err(ResultError::Invalid(format!("reading ASSAY_RESULT_FILE: {e}"))),
    })
}

/// Durations of a repeated cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Repeats {
    /// Runs measured.
    pub count: u32,
    /// Shortest, microseconds.
    pub min_us: u64,
    /// Median (nearest rank), microseconds.
    pub median_us: u64,
    /// 90th percentile (nearest rank), microseconds.
    pub p90_us: u64,
}

impl Repeats {
    /// The summary of `durations_us` (not empty).
    pub fn of(durations_us: &[u64]) -> Repeats {
        assert!(!durations_us.is_empty(), "repeats of no runs");
        let mut sorted = durations_us.to_vec();
        sorted.sort_unstable();
        // Nearest rank: the smallest value with at least p of the runs at or below it.
        let rank = |percent: usize| sorted[(sorted.len() * percent).div_ceil(100).max(1) - 1];
        Repeats { count: sorted.len() as u32, min_us: sorted[0], median_us: rank(50), p90_us: rank(90) }
    }
}

/// The verdict on a command cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It ran to an exit status; `passed` as the module docs say.
    Completed {
        /// Whether it passed.
        passed: bool,
        /// The error it reported.
        max_abs_err: Option<f64>,
    },
    /// It faulted.
    Faulted {
        /// Upper-snake error name.
        error: String,
        /// Whether the CUDA context was lost.
        sticky: bool,
        /// The evidence: the line that named the error, the signal, the limit.
        detail: String,
    },
}

/// One recorded launch of a command cell.
#[derive(Debug, Clone)]
pub struct CommandLaunch {
    /// What happened.
    pub verdict: Verdict,
    /// The measured time: the command's own `duration_us` when it reported one, else wall
    /// clock; the median when repeated.
    pub duration_us: u64,
    /// The last run's execution.
    pub last: Execution,
    /// Named metrics from the last run's result.
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// Durations when the cell ran more than once.
    pub repeats: Option<Repeats>,
    /// From the first run's start to the last run's end.
    pub window: (SystemTime, SystemTime),
}

/// Judges one execution of `cell`.
pub fn judge(cell: &CommandCell, execution: &Execution, timeout: Duration) -> Verdict {
    if let Some(error) = &execution.spawn_error {
        return Verdict::Faulted {
            error: "COMMAND_NOT_STARTED".into(),
            sticky: false,
            detail: error.clone(),
        };
    }
    let ending = execution.ending.unwrap_or(Ending::Exited(-1));
    let named = merge(execution.stderr.fault.clone(), execution.stdout.fault.clone());
    if let Some(class) = taxonomy::classify(ending, named) {
        let detail = match (ending, class.evidence.is_empty()) {
            (Ending::TimedOut, true) => {
                format!("still running after {:.3} s; its process group was killed", timeout.as_secs_f64())
            }
            (Ending::Signaled(signal), true) => {
                format!("killed by signal {signal} ({})", super::signal_name(signal))
            }
            _ => class.evidence.clone(),
        };
        return Verdict::Faulted { error: class.error, sticky: class.sticky, detail };
    }
    if let Some(Err(ResultError::NonFinite(text))) = &execution.result {
        return Verdict::Faulted {
            error: NAN_IN_OUTPUT.into(),
            sticky: false,
            detail: format!("the result holds a non-finite value: {text}"),
        };
    }
    let reported = match &execution.result {
        Some(Ok(result)) => Some(result),
        _ => None,
    };
    let max_abs_err = reported.and_then(|r| r.max_abs_err);
    if !matches!(ending, Ending::Exited(0)) {
        return Verdict::Completed { passed: false, max_abs_err };
    }
    if let Some(Err(error)) = &execution.result {
        return Verdict::Faulted { error: "RESULT_INVALID".into(), sticky: false, detail: error.to_string() };
    }
    let within = match (cell.tolerance, max_abs_err) {
        (Some(tolerance), Some(err)) => err <= tolerance,
        _ => true,
    };
    Verdict::Completed { passed: reported.and_then(|r| r.passed).unwrap_or(true) && within, max_abs_err }
}

/// The fault two streams name: a sticky one first, else stderr's, else stdout's.
fn merge(stderr: Option<FaultClass>, stdout: Option<FaultClass>) -> Option<FaultClass> {
    match (stderr, stdout) {
        (Some(e), Some(o)) if !e.sticky && o.sticky => Some(o),
        (e, o) => e.or(o),
    }
}

/// Runs `cell` `cell.repeat` times (stopping at the first run that does not pass, or that
/// `stop` interrupted) and judges it. `next_id` numbers result files.
pub fn run_command_cell(
    cell: &CommandCell,
    env: &CommandEnv,
    next_id: &mut u64,
    stop: &AtomicBool,
) -> CommandLaunch {
    let timeout = cell.timeout.unwrap_or(env.timeout);
    let mut durations = Vec::with_capacity(cell.repeat as usize);
    let mut first_start = None;
    loop {
        *next_id += 1;
        let execution = execute(cell, env, *next_id, stop);
        let started = *first_start.get_or_insert(execution.window.0);
        let verdict = judge(cell, &execution, timeout);
        let reported = match &execution.result {
            Some(Ok(result)) => Some(result.clone()),
            _ => None,
        };
        durations.push(reported.as_ref().and_then(|r| r.duration_us).unwrap_or(execution.wall_us));
        let passed = matches!(verdict, Verdict::Completed { passed: true, .. });
        if !passed || execution.interrupted || durations.len() >= cell.repeat as usize {
            let repeats = (cell.repeat > 1).then(|| Repeats::of(&durations));
            return CommandLaunch {
                verdict,
                duration_us: repeats.map_or(durations[durations.len() - 1], |r| r.median_us),
                metrics: reported.map(|r| r.metrics).unwrap_or_default(),
                window: (started, execution.window.1),
                last: execution,
                repeats,
            };
        }
    }
}

impl CommandLaunch {
    /// Whether an interrupt stopped it before it finished (it is not recorded then).
    pub fn interrupted(&self) -> bool {
        self.last.interrupted
    }

    /// Whether it completed and passed.
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Completed { passed: true, .. })
    }

    /// The launch event: `(type, data)`, subject `run/<run>`. `launch` is its ordinal in the
    /// run; `fallback_of` the ordinal of the primary launch it stands in for.
    pub fn event(
        &self,
        run: &str,
        cell: &CommandCell,
        env: &CommandEnv,
        launch: u64,
        fallback_of: Option<u64>,
    ) -> (&'static str, Value) {
        let e = &self.last;
        let (exit_code, signal) = match e.ending {
            Some(Ending::Exited(code)) => (Some(code), None),
            Some(Ending::Signaled(signal)) => (None, Some(super::signal_name(signal))),
            _ => (None, None),
        };
        let command = json!({
            "argv": cell.argv,
            "exit_code": exit_code,
            "signal": signal,
            "wall_us": e.wall_us,
            "stdout": e.stdout.data(),
            "stderr": e.stderr.data(),
        });
        let mut data = json!({
            "run": run,
            "kernel": cell.name,
            "variant": cell.variant_value(),
            "backend": env.backend,
            "device": env.device,
            "command": command,
            "launch": launch,
        });
        let ty = match &self.verdict {
            Verdict::Completed { passed, max_abs_err } => {
                data["duration_us"] = Value::from(self.duration_us);
                data["passed"] = Value::from(*passed);
                if let Some(err) = max_abs_err {
                    data["max_abs_err"] = Value::from(*err);
                }
                if let Some(tolerance) = cell.tolerance {
                    data["tolerance"] = Value::from(tolerance);
                }
                EventType::KernelLaunchCompleted
            }
            Verdict::Faulted { error, sticky, detail } => {
                data["error"] = Value::from(error.as_str());
                data["sticky"] = Value::from(*sticky);
                let detail = detail.trim();
                if !detail.is_empty() {
                    data["detail"] = Value::from(clip(detail));
                }
                EventType::KernelLaunchFaulted
            }
        };
        if !self.metrics.is_empty() {
            data["metrics"] = metrics_value(&self.metrics);
        }
        if let Some(repeats) = self.repeats {
            data["repeats"] = json!(repeats);
        }
        if let Some(primary) = fallback_of {
            data["fallback_of"] = Value::from(primary);
        }
        (ty.as_str(), data)
    }

    /// `failed: …` or `faulted: …` for the summary, naming the Xids attached to it.
    pub fn problem_with(&self, xids: &[u32]) -> Option<String> {
        let problem = self.problem()?;
        if xids.is_empty() {
            return Some(problem);
        }
        let codes: Vec<String> = xids.iter().map(u32::to_string).collect();
        let with = format!(" with Xid {}", codes.join(", "));
        // "faulted: CUDA_ERROR_ILLEGAL_INSTRUCTION with Xid 13 (detail)"
        Some(match problem.find(" (") {
            Some(at) => format!("{}{with}{}", &problem[..at], &problem[at..]),
            None => format!("{problem}{with}"),
        })
    }

    /// `failed: …` or `faulted: …` for the summary.
    pub fn problem(&self) -> Option<String> {
        match &self.verdict {
            Verdict::Completed { passed: true, .. } => None,
            Verdict::Completed { max_abs_err, .. } => Some(match (&self.last.ending, max_abs_err) {
                (Some(Ending::Exited(code)), _) if *code != 0 => format!("failed: exit status {code}"),
                (_, Some(err)) => format!("failed: max_abs_err {err:.3e}"),
                _ => "failed: the command reported passed: false".to_owned(),
            }),
            Verdict::Faulted { error, detail, .. } => Some(format!("faulted: {error} ({detail})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_use_nearest_ranks() {
        let r = Repeats::of(&[50, 10, 40, 20, 30, 60, 70, 80, 90, 100]);
        assert_eq!((r.count, r.min_us, r.median_us, r.p90_us), (10, 10, 50, 90));
        let one = Repeats::of(&[7]);
        assert_eq!((one.min_us, one.median_us, one.p90_us), (7, 7, 7));
        let three = Repeats::of(&[3, 1, 2]);
        assert_eq!((three.median_us, three.p90_us), (2, 3));
    }
}

//! Cells in a child process, so that a sticky CUDA error (or a crash) cannot poison the rest
//! of a campaign.
//!
//! The parent starts a child (the `assay` binary with a hidden subcommand that calls
//! [`serve_cells`]) in its own process group and writes one [`CellRequest`] per line to its
//! stdin; the child answers each with one [`CellOutcome`] per line on stdout. After a sticky
//! fault the child exits, and the parent starts a fresh one for the next cell. A child that
//! dies, or answers nothing within the timeout, is recorded as a fault of the cell it was
//! running: `SIGNAL_<NAME>`, `CHILD_EXITED` or `TIMEOUT`.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Cell;
use super::cell::{CellOutcome, cuda_fault, run_cell_cpu, run_cell_cuda};
use super::cuda_cell::run_source_cell;
use super::cuda_table::SourceCell;
use crate::backend::Backend;
use crate::cuda::{CudaError, CudaRunner};
use crate::supervise::signal_group;

/// Re-exported for the callers that name it through `campaign`; it lives in the taxonomy.
pub use super::taxonomy::signal_name;

/// Lines of a worker's stdout queued for the cell loop, at most.
const LINES_QUEUED_MAX: usize = 1024;

/// One request to a cell child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CellRequest {
    /// A built-in kernel's cell.
    Builtin {
        /// The cell.
        cell: Cell,
        /// The backend to run it on.
        backend: Backend,
    },
    /// A `[[cuda]]` cell (always on CUDA).
    Source {
        /// The cell, with its source text.
        cell: Box<SourceCell>,
    },
}

impl CellRequest {
    /// The kernel name the launch is recorded under.
    pub fn kernel(&self) -> &str {
        match self {
            CellRequest::Builtin { cell, .. } => cell.spec.name(),
            CellRequest::Source { cell } => &cell.name,
        }
    }

    /// The backend it runs on.
    pub fn backend(&self) -> Backend {
        match self {
            CellRequest::Builtin { backend, .. } => *backend,
            CellRequest::Source { .. } => Backend::Cuda,
        }
    }
}

/// Settings of the child side.
#[derive(Debug, Clone, Default)]
pub struct ServeHooks {
    /// The CUDA device ordinal to open.
    pub ordinal: usize,
    /// Abort the process (SIGABRT) when asked to run this kernel: lets tests exercise the
    /// path of a child that dies mid-cell.
    pub abort_kernel: Option<String>,
}

/// The child side: answers each request line on `input` with an outcome line on `output`.
/// Returns after a sticky fault (the context is unusable; the parent starts a new child), at
/// the end of the input, or on an I/O error.
pub fn serve_cells(input: impl BufRead, mut output: impl Write, hooks: &ServeHooks) -> io::Result<()> {
    let mut cuda: Option<Result<CudaRunner, CudaError>> = None;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let request: CellRequest = serde_json::from_str(&line)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad cell request: {e}")))?;
        if hooks.abort_kernel.as_deref() == Some(request.kernel()) {
            std::process::abort();
        }
        let outcome = match &request {
            CellRequest::Builtin { cell, backend: Backend::Cpu } => run_cell_cpu(cell),
            CellRequest::Builtin { cell, backend: Backend::Cuda } => {
                match cuda.get_or_insert_with(|| CudaRunner::new(hooks.ordinal)) {
                    Ok(runner) => run_cell_cuda(cell, runner),
                    Err(error) => cuda_fault(None, error),
                }
            }
            CellRequest::Source { cell } => {
                match cuda.get_or_insert_with(|| CudaRunner::new(hooks.ordinal)) {
                    Ok(runner) => run_source_cell(cell, runner),
                    Err(error) => cuda_fault(None, error),
                }
            }
        };
        let mut text = serde_json::to_vec(&outcome).map_err(io::Error::other)?;
        text.push(b'\n');
        output.write_all(&text)?;
        output.flush()?;
        if outcome.is_sticky() {
            return Ok(());
        }
    }
    Ok(())
}

/// How to start a cell child.
#[derive(Debug, Clone)]
pub struct ChildCommand {
    /// The program (normally the running `assay` binary).
    pub program: PathBuf,
    /// Its arguments (the hidden subcommand).
    pub args: Vec<OsString>,
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

/// The parent side: runs cells in a child process, starting a new one whenever the last one
/// ended.
pub struct IsolatedRunner {
    command: ChildCommand,
    timeout: Duration,
    worker: Option<Worker>,
    spawned: u64,
}

impl std::fmt::Debug for IsolatedRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedRunner")
            .field("command", &self.command)
            .field("timeout", &self.timeout)
            .field("pid", &self.worker.as_ref().map(|w| w.child.id()))
            .field("spawned", &self.spawned)
            .finish()
    }
}

/// How long a child that was asked to stop may take before it is killed.
const RETIRE_GRACE: Duration = Duration::from_secs(5);

/// Waits up to `limit` for `child`; `None` if it is still running.
pub(crate) fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

impl IsolatedRunner {
    /// A runner that starts children with `command` and gives each cell `timeout`.
    pub fn new(command: ChildCommand, timeout: Duration) -> Self {
        IsolatedRunner { command, timeout, worker: None, spawned: 0 }
    }

    /// Children started so far.
    pub fn spawned(&self) -> u64 {
        self.spawned
    }

    fn worker(&mut self) -> io::Result<&mut Worker> {
        if self.worker.is_none() {
            let mut child = Command::new(&self.command.program)
                .args(&self.command.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .process_group(0)
                .spawn()?;
            let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout pipe"))?;
            let stdin = child.stdin.take();
            // Bounded: the reader thread waits for the cell loop instead of queuing without limit.
            let (tx, lines) = mpsc::sync_channel(LINES_QUEUED_MAX);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            self.spawned += 1;
            self.worker = Some(Worker { child, stdin, lines });
        }
        self.worker.as_mut().ok_or_else(|| io::Error::other("no child"))
    }

    /// Runs one built-in kernel's cell in the child (starting one if needed).
    pub fn run(&mut self, cell: &Cell, backend: Backend) -> CellOutcome {
        self.exchange(&CellRequest::Builtin { cell: *cell, backend })
    }

    /// Runs one `[[cuda]]` cell in the child (starting one if needed).
    pub fn run_source(&mut self, cell: &SourceCell) -> CellOutcome {
        self.exchange(&CellRequest::Source { cell: Box::new(cell.clone()) })
    }

    /// Sends `request` to the child and waits for its outcome.
    fn exchange(&mut self, request: &CellRequest) -> CellOutcome {
        let backend = request.backend();
        let timeout = self.timeout;
        let worker = match self.worker() {
            Ok(worker) => worker,
            Err(e) => {
                return CellOutcome::fault(
                    backend,
                    None,
                    "CHILD_SPAWN_FAILED",
                    false,
                    format!("starting {}: {e}", self.command.program.display()),
                );
            }
        };
        let mut request = serde_json::to_vec(request).unwrap_or_default();
        request.push(b'\n');
        let sent = match worker.stdin.as_mut() {
            Some(stdin) => stdin.write_all(&request).and_then(|()| stdin.flush()),
            None => Err(io::Error::other("stdin closed")),
        };
        if sent.is_err() {
            return self.death(backend);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let received = match self.worker.as_mut() {
                Some(worker) => worker.lines.recv_timeout(left),
                None => Err(RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(text) => match serde_json::from_str::<CellOutcome>(&text) {
                    Ok(outcome) => {
                        if outcome.is_sticky() {
                            self.retire();
                        }
                        return outcome;
                    }
                    // Not an answer: something else in the child wrote to stdout.
                    Err(_) => eprintln!("cell child: {text}"),
                },
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    return CellOutcome::fault(
                        backend,
                        None,
                        "TIMEOUT",
                        false,
                        format!("no result within {:.1} s; the child was killed", timeout.as_secs_f64()),
                    );
                }
                Err(RecvTimeoutError::Disconnected) => return self.death(backend),
            }
        }
    }

    /// The child ended without answering: the fault it died of.
    fn death(&mut self, backend: Backend) -> CellOutcome {
        let Some(mut worker) = self.worker.take() else {
            return CellOutcome::fault(backend, None, "CHILD_EXITED", false, "the child is gone");
        };
        drop(worker.stdin.take());
        let pid = worker.child.id();
        let status = match wait_for(&mut worker.child, RETIRE_GRACE) {
            Some(status) => status,
            None => {
                signal_group(pid, libc::SIGKILL);
                match worker.child.wait() {
                    Ok(status) => status,
                    Err(e) => {
                        return CellOutcome::fault(
                            backend,
                            None,
                            "CHILD_EXITED",
                            false,
                            format!("waiting for pid {pid}: {e}"),
                        );
                    }
                }
            }
        };
        match (status.signal(), status.code()) {
            (Some(signal), _) => {
                let name = signal_name(signal);
                let core = if status.core_dumped() { ", core dumped" } else { "" };
                CellOutcome::fault(
                    backend,
                    None,
                    &format!("SIGNAL_{name}"),
                    false,
                    format!(
                        "the cell's child process (pid {pid}) was killed by signal {signal} ({name}){core}"
                    ),
                )
            }
            (None, code) => CellOutcome::fault(
                backend,
                None,
                "CHILD_EXITED",
                false,
                format!(
                    "the cell's child process (pid {pid}) exited with status {} without a result",
                    code.unwrap_or(-1)
                ),
            ),
        }
    }

    /// Kills the child's process group and reaps it.
    fn kill(&mut self) {
        if let Some(mut worker) = self.worker.take() {
            signal_group(worker.child.id(), libc::SIGKILL);
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }

    /// Closes the child's input and waits for it to exit (killing it after a grace period).
    fn retire(&mut self) {
        if let Some(mut worker) = self.worker.take() {
            drop(worker.stdin.take());
            if wait_for(&mut worker.child, RETIRE_GRACE).is_none() {
                signal_group(worker.child.id(), libc::SIGKILL);
                let _ = worker.child.wait();
            }
        }
    }

    /// Stops the child, if one is running.
    pub fn shutdown(&mut self) {
        self.retire();
    }
}

impl Drop for IsolatedRunner {
    fn drop(&mut self) {
        self.retire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{InputRange, KernelSpec};

    #[test]
    fn serve_answers_each_request_on_its_own_line() {
        let cell = Cell {
            spec: KernelSpec::Saxpy { n: 8, alpha: 2.0 },
            seed: 1,
            range: InputRange::default(),
            tolerance: 0.0,
        };
        let request =
            serde_json::to_string(&CellRequest::Builtin { cell, backend: Backend::Cpu }).expect("json");
        let input = format!("{request}\n\n{request}\n");
        let mut output = Vec::new();
        serve_cells(input.as_bytes(), &mut output, &ServeHooks::default()).expect("serves");
        let lines: Vec<CellOutcome> = String::from_utf8(output)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("outcome"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(CellOutcome::passed));
        assert!(serve_cells("not json\n".as_bytes(), Vec::new(), &ServeHooks::default()).is_err());
    }

    #[test]
    fn cuda_requests_without_a_driver_fault_cleanly() {
        if crate::cuda::driver_library_present() {
            return;
        }
        let cell = Cell {
            spec: KernelSpec::Saxpy { n: 8, alpha: 2.0 },
            seed: 1,
            range: InputRange::default(),
            tolerance: 0.0,
        };
        let request =
            serde_json::to_string(&CellRequest::Builtin { cell, backend: Backend::Cuda }).expect("json");
        let mut output = Vec::new();
        serve_cells(format!("{request}\n").as_bytes(), &mut output, &ServeHooks::default()).expect("serves");
        let outcome: CellOutcome = serde_json::from_slice(output.trim_ascii_end()).expect("outcome");
        let CellOutcome::Faulted(fault) = outcome else { panic!("{outcome:?}") };
        assert_eq!(fault.error, "CUDA_UNAVAILABLE");

        // A [[cuda]] cell travels with its source text and reaches the driver boundary too.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/examples/own-saxpy.toml");
        let campaign = super::super::Campaign::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let request = CellRequest::Source { cell: Box::new(campaign.cuda[2].clone()) };
        let line = serde_json::to_string(&request).expect("json");
        assert_eq!(serde_json::from_str::<CellRequest>(&line).expect("back"), request);
        assert_eq!((request.kernel(), request.backend()), ("own_saxpy", Backend::Cuda));
        let mut output = Vec::new();
        serve_cells(format!("{line}\n").as_bytes(), &mut output, &ServeHooks::default()).expect("serves");
        let outcome: CellOutcome = serde_json::from_slice(output.trim_ascii_end()).expect("outcome");
        let CellOutcome::Faulted(fault) = outcome else { panic!("{outcome:?}") };
        assert_eq!(fault.error, "CUDA_UNAVAILABLE");
        assert!(fault.detail.is_some_and(|d| d.contains("libcuda")));
    }

    #[test]
    fn a_child_killed_by_a_signal_is_a_fault_named_after_it() {
        let command =
            ChildCommand { program: "sh".into(), args: vec!["-c".into(), "read line; kill -ABRT $$".into()] };
        let mut runner = IsolatedRunner::new(command, Duration::from_secs(20));
        let cell = Cell {
            spec: KernelSpec::Saxpy { n: 8, alpha: 2.0 },
            seed: 1,
            range: InputRange::default(),
            tolerance: 0.0,
        };
        let outcome = runner.run(&cell, Backend::Cpu);
        let CellOutcome::Faulted(fault) = outcome else { panic!("{outcome:?}") };
        assert_eq!(fault.error, "SIGNAL_SIGABRT");
        assert!(fault.detail.as_deref().is_some_and(|d| d.contains("signal 6")), "{fault:?}");

        let silent = ChildCommand { program: "sh".into(), args: vec!["-c".into(), "exec sleep 30".into()] };
        let mut runner = IsolatedRunner::new(silent, Duration::from_millis(200));
        let outcome = runner.run(&cell, Backend::Cpu);
        let CellOutcome::Faulted(fault) = outcome else { panic!("{outcome:?}") };
        assert_eq!(fault.error, "TIMEOUT");

        let quitter =
            ChildCommand { program: "sh".into(), args: vec!["-c".into(), "read line; exit 3".into()] };
        let mut runner = IsolatedRunner::new(quitter, Duration::from_secs(20));
        let CellOutcome::Faulted(fault) = runner.run(&cell, Backend::Cpu) else { panic!("expected a fault") };
        assert_eq!(fault.error, "CHILD_EXITED");
        let CellOutcome::Faulted(_) = runner.run(&cell, Backend::Cpu) else { panic!("expected a fault") };
        assert_eq!(runner.spawned(), 2, "a new child for the next cell");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(40), "SIG40");
    }
}

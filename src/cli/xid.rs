//! `assay xid parse FILE [--json] [--host NAME]` and `assay xid watch (--db|--server) --key
//! K.key [--host NAME] [--kmsg PATH | --journal] [--nvml]`.
//!
//! `parse` prints one object per Xid found, `{"line","pci","code","pid","name","message",
//! "severity","action"}` (and `"host"` when `--host` is given); malformed Xid lines are
//! reported on stderr and never stop it.
//! `watch` follows the kernel log (`/dev/kmsg`, a file, or `journalctl -k -f`) and, with
//! `--nvml`, NVML's critical-Xid events; reports of one Xid by both sources are recorded
//! once, as `gpu.xid` with subject `gpu/<pci>` and `host` the watched node (by default the
//! key's name, as `assay gpu preflight` names its worker): nodes of one model share PCI bus
//! ids, so the host is what tells their GPUs apart.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use assay_events::EventType;
use assay_events::roles::Role;
use assay_kernels::nvml::probe_nvml;
use assay_kernels::sink::EventSink;
use assay_kernels::xid::{
    FALLEN_OFF_THE_BUS, JournalReader, KernelLog, LineReport, Seen, XidDeduper, XidReport, accepted_actions,
    recorded_action,
};

use super::Exit;
use super::run::{Opened, SinkArgs, count_interrupts, open_sink, parse_duration};

#[derive(clap::Subcommand)]
pub enum XidCommand {
    /// Print the Xids in a kernel log file.
    Parse(ParseArgs),
    /// Follow the kernel log (and NVML) and record each Xid as gpu.xid.
    Watch(WatchArgs),
}

#[derive(clap::Args)]
pub struct ParseArgs {
    /// A kernel log: dmesg, journalctl -k, syslog or raw /dev/kmsg lines.
    file: PathBuf,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// The host (worker name) whose log this is, added to each JSON object as `host`.
    #[arg(long, value_parser = parse_host)]
    host: Option<String>,
}

#[derive(clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// The host (worker name) being watched, recorded as each gpu.xid's `host`; the name
    /// dispatch uses as `worker` (default: the key's name, as for `assay gpu preflight`).
    #[arg(long, value_parser = parse_host)]
    host: Option<String>,
    /// The kernel log to follow: /dev/kmsg (the default) or a file being appended to.
    #[arg(long, conflicts_with = "journal")]
    kmsg: Option<PathBuf>,
    /// Follow `journalctl -k -f` instead.
    #[arg(long)]
    journal: bool,
    /// Also take NVML's critical-Xid events (when NVML is available).
    #[arg(long)]
    nvml: bool,
    /// Read what the log already holds too, not only what is appended from now on.
    #[arg(long)]
    from_start: bool,
    /// Two sources reporting the same (GPU, Xid) this close together are one Xid.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    dedup_window: Duration,
    /// How often the log is polled.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    poll: Duration,
    /// Stop after recording N Xids.
    #[arg(long)]
    exit_after: Option<u64>,
    /// Stop once nothing new arrived for this long.
    #[arg(long, value_parser = parse_duration)]
    until_idle: Option<Duration>,
    /// Print each recorded Xid as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: XidCommand) -> anyhow::Result<Exit> {
    match command {
        XidCommand::Parse(a) => parse(a),
        XidCommand::Watch(a) => watch(a).await,
    }
}

/// A host name as the schemas' `id` accepts it.
fn parse_host(text: &str) -> Result<String, String> {
    if assay_kernels::sink::is_identifier(text) {
        Ok(text.to_owned())
    } else {
        Err("not a valid host name (1-128 letters, digits and ._:/-, starting with a letter or digit)".into())
    }
}

/// Reads lines of at most `max` bytes (the rest of a longer line is dropped), lossily.
fn bounded_lines(reader: impl Read, mut each: impl FnMut(u64, &str)) -> std::io::Result<()> {
    const MAX: usize = 64 * 1024;
    let mut reader = BufReader::new(reader);
    let mut buffer = Vec::new();
    let mut number = 0u64;
    loop {
        buffer.clear();
        let mut overflow = false;
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX.saturating_sub(buffer.len());
            buffer.extend_from_slice(&chunk[..take.min(room)]);
            overflow |= take > room;
            reader.consume(take);
            if done {
                break;
            }
        }
        if buffer.is_empty() && !overflow {
            return Ok(());
        }
        number += 1;
        let text = String::from_utf8_lossy(&buffer);
        each(number, text.trim_end_matches(['\n', '\r']));
    }
}

fn parse(a: ParseArgs) -> anyhow::Result<Exit> {
    let file = std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
    let accepted = accepted_actions();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failure: Option<std::io::Error> = None;
    let (mut found, mut malformed) = (0u64, 0u64);
    bounded_lines(file, |number, line| {
        if failure.is_some() {
            return;
        }
        let written = match XidReport::from_line(line) {
            LineReport::Xid(report) => {
                found += 1;
                let action = recorded_action(report.action, &accepted);
                if a.json {
                    let mut value = serde_json::json!({
                        "line": number,
                        "pci": report.pci,
                        "code": report.code,
                        "pid": report.pid,
                        "name": report.process,
                        "message": report.message,
                        "severity": report.severity.as_str(),
                        "action": action,
                    });
                    if let Some(host) = &a.host {
                        value["host"] = host.as_str().into();
                    }
                    writeln!(out, "{value}")
                } else {
                    let who = match (&report.pid, &report.process) {
                        (Some(pid), Some(name)) => format!(" pid {pid} ({name})"),
                        (Some(pid), None) => format!(" pid {pid}"),
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "line {number}: gpu {} Xid {} [{} / {}]{who}: {}",
                        report.pci,
                        report.code,
                        report.severity.as_str(),
                        action,
                        report.message
                    )
                }
            }
            LineReport::Malformed(reason) => {
                malformed += 1;
                eprintln!(
                    "{}:{number}: malformed Xid line ({reason}): {}",
                    a.file.display(),
                    clip(line, 200)
                );
                Ok(())
            }
            LineReport::None => Ok(()),
        };
        if let Err(e) = written {
            failure = Some(e);
        }
    })
    .with_context(|| format!("reading {}", a.file.display()))?;
    match failure {
        // A closed pipe (`| head`) is not an error of ours.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(Exit::Ok),
        Some(e) => return Err(e.into()),
        None => {}
    }
    out.flush()?;
    if !a.json {
        eprintln!("{found} Xid(s), {malformed} malformed line(s)");
    }
    Ok(Exit::Ok)
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

/// Pairs an Xid 79 line with a "fallen off the bus" line for the same GPU (drivers print
/// both for one event, in either order): the second of a pair is not recorded again.
#[derive(Default)]
struct BusLossPairing {
    /// (pci, is the bus-loss text, at) of unpaired reports.
    recent: Vec<(String, bool, Instant)>,
}

impl BusLossPairing {
    fn is_repeat(&mut self, report: &XidReport, bus_text: bool, window: Duration) -> bool {
        let now = Instant::now();
        self.recent.retain(|(_, _, at)| now.duration_since(*at) <= window);
        if let Some(index) =
            self.recent.iter().position(|(pci, kind, _)| *pci == report.pci && *kind != bus_text)
        {
            self.recent.remove(index);
            return true;
        }
        if self.recent.len() >= 1024 {
            self.recent.remove(0);
        }
        self.recent.push((report.pci.clone(), bus_text, now));
        false
    }
}

enum Incoming {
    Line(String),
    Nvml { pci: String, code: Option<u64> },
    Note(String),
}

async fn watch(a: WatchArgs) -> anyhow::Result<Exit> {
    let opened = open_sink(&a.sink, &[Role::Runner]).await?;
    // The default is the one `assay gpu preflight` uses for its worker: the key's name.
    let host = a.host.clone().unwrap_or_else(|| opened.producer());
    anyhow::ensure!(
        assay_kernels::sink::is_identifier(&host),
        "{host:?} is not a valid host name (letters, digits and ._:/-); pass --host NAME"
    );
    let Opened { sink, closer, .. } = opened;
    let interrupts = count_interrupts()?;
    let result = tokio::task::spawn_blocking(move || watch_blocking(a, &host, sink, &interrupts))
        .await
        .context("the watch task failed")?;
    closer.close().await;
    result?;
    Ok(Exit::Ok)
}

/// NVML events queued between the NVML thread and the watch loop, at most.
const NVML_QUEUED_MAX: usize = 1024;

fn watch_blocking(
    a: WatchArgs,
    host: &str,
    mut sink: Box<dyn EventSink + Send>,
    interrupts: &Arc<AtomicU32>,
) -> anyhow::Result<()> {
    let accepted = accepted_actions();
    // Bounded: a stalled loop makes the NVML thread wait rather than queue without limit.
    let (tx, rx) = mpsc::sync_channel::<Incoming>(NVML_QUEUED_MAX);
    let mut log = if a.journal {
        let reader = JournalReader::start(a.from_start).context("starting journalctl -k -f")?;
        eprintln!("watching journalctl -k");
        KernelLog::Journal(reader)
    } else {
        let path = a.kmsg.clone().unwrap_or_else(|| PathBuf::from("/dev/kmsg"));
        let log =
            KernelLog::open(&path, a.from_start).with_context(|| format!("opening {}", path.display()))?;
        eprintln!("watching {}", path.display());
        log
    };
    if a.nvml {
        start_nvml(tx.clone());
    }
    drop(tx);
    let mut dedup = XidDeduper::new(
        i64::try_from(a.dedup_window.as_nanos()).unwrap_or(i64::MAX),
        XidDeduper::DEFAULT_CAPACITY,
    );
    let mut pairing = BusLossPairing::default();
    let started = Instant::now();
    let mut last_activity = Instant::now();
    let mut recorded = 0u64;
    let mut nvml_open = a.nvml;
    let stdout = std::io::stdout();
    loop {
        if interrupts.load(Ordering::Relaxed) > 0 {
            eprintln!("interrupted");
            break;
        }
        let mut incoming: Vec<Incoming> = log.poll()?.into_iter().map(Incoming::Line).collect();
        while nvml_open {
            match rx.try_recv() {
                Ok(item) => incoming.push(item),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => nvml_open = false,
            }
        }
        let mut emitted = false;
        for item in incoming {
            if !matches!(&item, Incoming::Note(_)) {
                last_activity = Instant::now();
            }
            let at_ns = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
            let report = match item {
                Incoming::Note(note) => {
                    if !note.is_empty() {
                        eprintln!("{note}");
                    }
                    continue;
                }
                Incoming::Line(line) => match XidReport::from_line(&line) {
                    LineReport::Xid(report) => {
                        let bus_text = report.code == FALLEN_OFF_THE_BUS && !line.contains("Xid");
                        if report.code == FALLEN_OFF_THE_BUS
                            && pairing.is_repeat(&report, bus_text, a.dedup_window)
                        {
                            continue;
                        }
                        report
                    }
                    LineReport::Malformed(reason) => {
                        eprintln!("malformed Xid line ({reason}): {}", clip(&line, 200));
                        continue;
                    }
                    LineReport::None => continue,
                },
                Incoming::Nvml { pci, code } => match code.and_then(|c| u32::try_from(c).ok()) {
                    Some(code) => XidReport::from_nvml(&pci, code),
                    None => {
                        eprintln!("NVML reported an Xid with an unknown code on {pci}; not recorded");
                        continue;
                    }
                },
            };
            if dedup.observe(report.source, &report.pci, report.code, at_ns) == Seen::Duplicate {
                continue;
            }
            let action = recorded_action(report.action, &accepted);
            let mut data = report.data(&action);
            data["host"] = host.into();
            sink.emit(EventType::GpuXid.as_str(), &format!("gpu/{}", report.pci), data.clone())?;
            emitted = true;
            recorded += 1;
            let mut out = stdout.lock();
            if a.json {
                let _ = writeln!(out, "{data}");
            } else {
                let _ = writeln!(
                    out,
                    "gpu {} Xid {} [{} / {}] from {}: {}",
                    report.pci,
                    report.code,
                    report.severity.as_str(),
                    action,
                    report.source.as_str(),
                    report.message
                );
            }
            let _ = out.flush();
            if a.exit_after.is_some_and(|n| recorded >= n) {
                break;
            }
        }
        if emitted {
            sink.submit()?;
        }
        if a.exit_after.is_some_and(|n| recorded >= n) {
            break;
        }
        if a.until_idle.is_some_and(|idle| last_activity.elapsed() >= idle) {
            break;
        }
        std::thread::sleep(a.poll.max(Duration::from_millis(5)));
    }
    sink.flush()?;
    eprintln!("recorded {recorded} Xid(s)");
    Ok(())
}

/// NVML's critical-Xid events on a thread of their own; without NVML, one note and nothing
/// else.
fn start_nvml(tx: mpsc::SyncSender<Incoming>) {
    std::thread::spawn(move || {
        let handle = match probe_nvml() {
            Ok(handle) => handle,
            Err(reason) => {
                let _ = tx.send(Incoming::Note(format!(
                    "NVML unavailable ({reason}); following the kernel log only"
                )));
                return;
            }
        };
        let events = match handle.xid_events() {
            Ok(events) => events,
            Err(reason) => {
                let _ = tx.send(Incoming::Note(format!(
                    "NVML Xid events unavailable ({reason}); following the kernel log only"
                )));
                return;
            }
        };
        loop {
            match events.next(500) {
                Ok(Some(xid)) => {
                    if tx.send(Incoming::Nvml { pci: xid.pci, code: xid.code }).is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    // Stop once the watcher is gone.
                    if tx.send(Incoming::Note(String::new())).is_err() {
                        return;
                    }
                }
                Err(reason) => {
                    let _ = tx.send(Incoming::Note(format!("NVML stopped: {reason}")));
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_number_and_clip() {
        let long = "x".repeat(70 * 1024);
        let text = format!("a\r\n{long}\nb");
        let mut seen = Vec::new();
        bounded_lines(text.as_bytes(), |n, l| seen.push((n, l.len()))).expect("reads");
        assert_eq!(seen, vec![(1, 1), (2, 64 * 1024), (3, 1)]);
    }

    #[test]
    fn schema_actions_are_read() {
        let accepted = accepted_actions();
        assert!(accepted.iter().any(|a| a == "RESET_GPU"), "{accepted:?}");
    }
}

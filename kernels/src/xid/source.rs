//! Where kernel-log lines come from: a file being appended to, `/dev/kmsg`, or
//! `journalctl -k -f`; and the timestamp each line carries.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};

use crate::follow::{FileFollower, FollowEvent};

/// Lines of journalctl's output queued for the watch loop, at most.
const LINES_QUEUED_MAX: usize = 4096;

/// Longest kernel-log timestamp kept.
const TIME_MAX_CHARS: usize = 64;

/// The timestamp a kernel-log line carries, as printed: the raw `/dev/kmsg` microseconds
/// (`4,2280,1399140323,-;…` → `1399.140323`), the dmesg `[ 1399.140323]` seconds, a
/// journal or syslog ISO time (`2026-09-08T01:00:00+0000 …`), or a classic syslog
/// `Sep  8 01:00:00`. `None` if there is none before `NVRM:`.
pub fn kernel_time(line: &str) -> Option<String> {
    let head = match line.find("NVRM:") {
        Some(at) => &line[..at],
        None => line,
    };
    if let Some((prefix, _)) = head.split_once(';') {
        let fields: Vec<&str> = prefix.split(',').collect();
        if fields.len() >= 3
            && fields[..3].iter().all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        {
            let usec: u64 = fields[2].parse().ok()?;
            return Some(format!("{}.{:06}", usec / 1_000_000, usec % 1_000_000));
        }
    }
    let first = head.split_whitespace().next()?;
    let b = first.as_bytes();
    if b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-' {
        return Some(first.chars().take(TIME_MAX_CHARS).collect());
    }
    if let Some(open) = head.find('[')
        && let Some(close) = head[open..].find(']')
    {
        let inner = head[open + 1..open + close].trim();
        if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Some(inner.chars().take(TIME_MAX_CHARS).collect());
        }
    }
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    if head.len() >= 15 && head.is_char_boundary(15) && MONTHS.iter().any(|m| head.starts_with(m)) {
        let stamp = &head[..15];
        if stamp.as_bytes()[9] == b':' && stamp.as_bytes()[12] == b':' {
            return Some(stamp.to_owned());
        }
    }
    None
}

/// `/dev/kmsg`: one kernel-log record per read.
#[derive(Debug)]
pub struct KmsgReader {
    file: File,
    path: PathBuf,
}

impl KmsgReader {
    /// Opens a kmsg device (normally `/dev/kmsg`), positioned after the last record unless
    /// `from_start`.
    pub fn open(path: &Path, from_start: bool) -> io::Result<Self> {
        let mut file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        if !from_start {
            file.seek(SeekFrom::End(0))?;
        }
        Ok(KmsgReader { file, path: path.to_owned() })
    }

    /// Records available now, each as `prio,seq,usec,flags;message` (continuation lines
    /// dropped).
    pub fn poll(&mut self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match self.file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buffer[..n]);
                    if let Some(first) = text.lines().next() {
                        out.push(first.to_owned());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EPIPE: records were overwritten before we read them; reading goes on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    eprintln!(
                        "{}: some kernel-log records were lost (overwritten before read)",
                        self.path.display()
                    );
                }
                Err(e) => return Err(e),
            }
            if out.len() >= 10_000 {
                break;
            }
        }
        Ok(out)
    }
}

/// `journalctl -k -f`: the kernel log through systemd's journal.
#[derive(Debug)]
pub struct JournalReader {
    child: Child,
    lines: Receiver<String>,
}

impl JournalReader {
    /// Starts `journalctl -k -f -o short-iso` (from the end, or the whole boot with
    /// `from_start`).
    pub fn start(from_start: bool) -> io::Result<Self> {
        let mut command = Command::new("journalctl");
        command.args(["-k", "-f", "-o", "short-iso", "--no-pager", "-q"]);
        if !from_start {
            command.args(["-n", "0"]);
        }
        let mut child =
            command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout from journalctl"))?;
        // Bounded: journalctl's reader waits for the watch loop instead of queuing without limit.
        let (tx, lines) = mpsc::sync_channel(LINES_QUEUED_MAX);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(JournalReader { child, lines })
    }

    /// Lines available now; an error once journalctl has exited.
    pub fn poll(&mut self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        loop {
            match self.lines.try_recv() {
                Ok(line) => out.push(line),
                Err(TryRecvError::Empty) => return Ok(out),
                Err(TryRecvError::Disconnected) if out.is_empty() => {
                    let status = self.child.wait()?;
                    return Err(io::Error::other(format!("journalctl exited ({status})")));
                }
                Err(TryRecvError::Disconnected) => return Ok(out),
            }
        }
    }
}

impl Drop for JournalReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One of the kernel-log sources.
#[derive(Debug)]
#[non_exhaustive]
pub enum KernelLog {
    /// A file being appended to (tests, or a syslog file).
    File(FileFollower),
    /// A kmsg device.
    Kmsg(KmsgReader),
    /// journalctl.
    Journal(JournalReader),
}

impl KernelLog {
    /// Opens `path`: a character device is read as kmsg, anything else followed as a file.
    pub fn open(path: &Path, from_start: bool) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        let is_device = std::fs::metadata(path).map(|m| m.file_type().is_char_device()).unwrap_or(false);
        if is_device {
            Ok(KernelLog::Kmsg(KmsgReader::open(path, from_start)?))
        } else if from_start {
            Ok(KernelLog::File(FileFollower::from_start(path.to_owned())))
        } else {
            Ok(KernelLog::File(FileFollower::from_end(path.to_owned())?))
        }
    }

    /// Lines available now.
    pub fn poll(&mut self) -> io::Result<Vec<String>> {
        match self {
            KernelLog::File(follower) => Ok(follower
                .poll(false)?
                .into_iter()
                .filter_map(|event| match event {
                    FollowEvent::Line { text, .. } => Some(text),
                    FollowEvent::Skipped { number, reason } => {
                        eprintln!("{}: line {number}: {reason}", follower.path().display());
                        None
                    }
                    FollowEvent::Truncated => {
                        eprintln!(
                            "{}: truncated; reading it again from the start",
                            follower.path().display()
                        );
                        None
                    }
                })
                .collect()),
            KernelLog::Kmsg(reader) => reader.poll(),
            KernelLog::Journal(reader) => reader.poll(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_timestamp_shape() {
        assert_eq!(
            kernel_time("4,2280,1399140323,-;NVRM: Xid (PCI:0000:01:00): 79, x").as_deref(),
            Some("1399.140323")
        );
        assert_eq!(
            kernel_time("[ 1399.140323] NVRM: Xid (PCI:0000:01:00): 32, x").as_deref(),
            Some("1399.140323")
        );
        assert_eq!(
            kernel_time("2026-09-08T01:00:02+0000 n1 kernel: NVRM: Xid (PCI:0000:01:00): 48, x").as_deref(),
            Some("2026-09-08T01:00:02+0000")
        );
        assert_eq!(
            kernel_time("Sep  8 01:00:00 host kernel: [123.4] NVRM: Xid (PCI:0000:01:00): 13, x").as_deref(),
            Some("123.4")
        );
        assert_eq!(
            kernel_time("Sep  8 01:00:00 host kernel: NVRM: Xid (PCI:0000:01:00): 13, x").as_deref(),
            Some("Sep  8 01:00:00")
        );
        assert_eq!(kernel_time("NVRM: Xid (0000:03:00): 14, Channel 00000001"), None);
        assert_eq!(kernel_time("é;NVRM: x"), None);
        assert_eq!(kernel_time(""), None);
    }
}

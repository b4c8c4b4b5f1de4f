//! Xids attached to the cell that caused them. While a campaign runs, the kernel log is
//! followed (from its end, as `assay xid watch` does); an Xid on the cell's GPU whose time
//! falls inside the cell's window (its start to its end plus a grace, since the driver logs
//! a fault a little after it happens) is recorded as `gpu.xid` naming the cell's launch
//! (`run`, `launch`), so a fault reads "CUDA_ERROR_ILLEGAL_INSTRUCTION with Xid 13". Other
//! Xids seen meanwhile are recorded too, naming no launch.
//!
//! An Xid's time is the one its line carries when that is a wall-clock time (journal and
//! syslog ISO stamps) or a time since boot (`/dev/kmsg`, dmesg), else the time it was read.
//! When the runner does not know the cell's GPU's PCI id (no NVML), an Xid on any GPU in the
//! window attaches.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::xid::{KernelLog, LineReport, XidReport, recorded_action};

/// Xids held between polls, at most (the oldest are dropped beyond).
const PENDING_MAX: usize = 1024;
/// Lines read in one poll, at most.
const LINES_PER_POLL_MAX: usize = 10_000;
/// How often the log is read while waiting out a grace.
const GRACE_POLL: Duration = Duration::from_millis(25);

/// One Xid read from the log, with the time it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenXid {
    /// What the line said.
    pub report: XidReport,
    /// When it happened (see the module docs).
    pub at: SystemTime,
}

/// The kernel log, followed for a campaign.
#[derive(Debug)]
pub struct XidWatch {
    log: KernelLog,
    boot: Option<SystemTime>,
    pending: VecDeque<SeenXid>,
    /// Lines that looked like Xids but could not be read, for the operator.
    pub malformed: u64,
}

impl XidWatch {
    /// Follows `path` (a file being appended to, or a kmsg device) from its end.
    pub fn open(path: &Path) -> io::Result<XidWatch> {
        let log = KernelLog::open(path, false)?;
        let boot = crate::supervise::uptime_seconds()
            .ok()
            .and_then(|up| SystemTime::now().checked_sub(Duration::from_secs_f64(up)));
        Ok(XidWatch { log, boot, pending: VecDeque::new(), malformed: 0 })
    }

    /// Reads what the log holds now into the pending list.
    pub fn poll(&mut self) -> io::Result<()> {
        let lines = self.log.poll()?;
        let read_at = SystemTime::now();
        for line in lines.iter().take(LINES_PER_POLL_MAX) {
            match XidReport::from_line(line) {
                LineReport::Xid(report) => {
                    let at = line_time(report.kernel_time.as_deref(), self.boot).unwrap_or(read_at);
                    if self.pending.len() >= PENDING_MAX {
                        self.pending.pop_front();
                    }
                    self.pending.push_back(SeenXid { report, at });
                }
                LineReport::Malformed(_) => self.malformed += 1,
                LineReport::None => {}
            }
        }
        Ok(())
    }

    /// Reads the log until `until` (polling), then once more.
    pub fn poll_until(&mut self, until: SystemTime) -> io::Result<()> {
        // Bounded: the grace is short, and each wait is at most GRACE_POLL.
        while let Ok(left) = until.duration_since(SystemTime::now()) {
            self.poll()?;
            std::thread::sleep(left.min(GRACE_POLL));
        }
        self.poll()
    }

    /// Takes the pending Xids: those inside `window` (plus `grace`) on `gpu` (any GPU when
    /// `None`) first, then the rest that happened before the window's end plus grace; later
    /// ones stay pending for the next cell.
    pub fn take(
        &mut self,
        window: (SystemTime, SystemTime),
        grace: Duration,
        gpu: Option<&str>,
    ) -> (Vec<SeenXid>, Vec<SeenXid>) {
        let end = window.1 + grace;
        let (mut attached, mut other, mut later) = (Vec::new(), Vec::new(), VecDeque::new());
        for seen in self.pending.drain(..) {
            let in_window = seen.at >= window.0 && seen.at <= end;
            let on_gpu = gpu.is_none_or(|pci| assay_events::pci::same_gpu(&seen.report.pci, pci));
            if in_window && on_gpu {
                attached.push(seen);
            } else if seen.at <= end {
                other.push(seen);
            } else {
                later.push_back(seen);
            }
        }
        self.pending = later;
        (attached, other)
    }

    /// Everything still pending.
    pub fn drain(&mut self) -> Vec<SeenXid> {
        self.pending.drain(..).collect()
    }
}

/// `gpu.xid` data for `seen`, on `host`, naming the launch when it is attached to one.
pub fn xid_data(seen: &SeenXid, host: &str, launch: Option<(&str, u64)>, accepted: &[String]) -> Value {
    let mut data = seen.report.data(&recorded_action(seen.report.action, accepted));
    data["host"] = Value::from(host);
    if let Some((run, ordinal)) = launch {
        data["run"] = Value::from(run);
        data["launch"] = Value::from(ordinal);
    }
    data
}

/// The wall-clock time a kernel-log timestamp stands for: seconds since boot
/// (`1399.140323`) given the boot time, or an ISO time (`2026-09-08T01:00:02+0000`,
/// `…T01:00:02.5Z`). `None` for other shapes (a syslog `Sep  8 01:00:00` has no year).
pub fn line_time(stamp: Option<&str>, boot: Option<SystemTime>) -> Option<SystemTime> {
    let stamp = stamp?;
    if stamp.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds: f64 = stamp.parse().ok()?;
        return boot?.checked_add(Duration::try_from_secs_f64(seconds).ok()?);
    }
    iso_time(stamp)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)`.
fn iso_time(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u64>().ok()? * 10u64.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        zone if zone.len() >= 5 && matches!(zone.as_bytes()[0], b'+' | b'-') => {
            let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            let (h, m) = (digits[..2].parse::<i64>().ok()?, digits[2..].parse::<i64>().ok()?);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos as u32))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn stamps_become_times() {
        assert_eq!(iso_time("1970-01-01T00:00:00Z"), Some(unix(0)));
        assert_eq!(iso_time("2026-09-08T01:00:02+0000"), Some(unix(1_788_829_202)));
        assert_eq!(iso_time("2026-09-08T03:00:02+02:00"), Some(unix(1_788_829_202)));
        assert_eq!(
            iso_time("2026-09-08T01:00:02.250Z"),
            Some(unix(1_788_829_202) + Duration::from_millis(250))
        );
        for bad in ["2026-09-08", "2026-13-08T01:00:02Z", "2026-09-08T01:00:02", "Sep  8 01:00:00"] {
            assert_eq!(iso_time(bad), None, "{bad}");
        }
        let boot = unix(1_000);
        assert_eq!(line_time(Some("12.5"), Some(boot)), Some(unix(1_012) + Duration::from_millis(500)));
        assert_eq!(line_time(Some("12.5"), None), None);
        assert_eq!(line_time(None, Some(boot)), None);
    }
}

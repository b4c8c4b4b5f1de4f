//! Reading processes from `/proc` (Linux): `stat` lines, the process list, clock ticks.

// One of the files ARCHITECTURE.md names as holding `unsafe`: `sysconf` and `kill(2)` through
// libc; every block says why it is sound.
#![allow(unsafe_code)]

use std::io;

/// One process as `/proc/<pid>/stat` describes it (the fields supervision needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: u32,
    /// Executable name (truncated to 15 bytes by the kernel).
    pub comm: String,
    /// State letter: `R` running, `S` sleeping, `Z` zombie, …
    pub state: char,
    /// Parent's pid.
    pub ppid: u32,
    /// Process group id.
    pub pgrp: u32,
    /// CPU time in user mode, clock ticks.
    pub utime: u64,
    /// CPU time in kernel mode, clock ticks.
    pub stime: u64,
    /// CPU time of waited-for children, user mode, clock ticks.
    pub cutime: u64,
    /// CPU time of waited-for children, kernel mode, clock ticks.
    pub cstime: u64,
    /// Start time after boot, clock ticks (with the pid, identifies the process).
    pub starttime: u64,
    /// Resident set size, pages.
    pub rss_pages: u64,
}

impl ProcStat {
    /// CPU time of the process and of its waited-for children, clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime).saturating_add(self.cutime).saturating_add(self.cstime)
    }

    /// Whether the process has exited and waits to be reaped.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// `(pid, starttime)`: tells a process from a later one that reused its pid.
    pub fn identity(&self) -> (u32, u64) {
        (self.pid, self.starttime)
    }
}

/// Parses a `/proc/<pid>/stat` line. The command name may hold spaces and parentheses, so
/// the fields are read after its last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // Indices after the comm: 0 state, 1 ppid, 2 pgrp, 11 utime, 12 stime, 13 cutime,
    // 14 cstime, 19 starttime, 21 rss.
    let number = |i: usize| -> Option<u64> {
        let field = fields.get(i)?;
        // cutime and cstime are signed in the kernel's format; negative values mean none.
        field.parse::<u64>().ok().or_else(|| field.parse::<i64>().ok().map(|v| v.max(0) as u64))
    };
    Some(ProcStat {
        pid,
        comm,
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(number(1)?).ok()?,
        pgrp: u32::try_from(number(2)?).ok()?,
        utime: number(11)?,
        stime: number(12)?,
        cutime: number(13)?,
        cstime: number(14)?,
        starttime: number(19)?,
        rss_pages: number(21)?,
    })
}

/// Reads `/proc/<pid>/stat`.
pub fn read_stat(pid: u32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unreadable /proc/{pid}/stat")))
}

/// Every process visible now. Processes that exit while the list is read are skipped.
pub fn snapshot() -> io::Result<Vec<ProcStat>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Ok(stat) = read_stat(pid) {
            out.push(stat);
        }
    }
    Ok(out)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, normally 100).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// The memory page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

/// Sends `signal` to the process group led by `pid`; false if there is none.
pub fn signal_group(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe { libc::kill(-pid, signal) == 0 }
}

/// Seconds since boot, from `/proc/uptime`.
pub fn uptime_seconds() -> io::Result<f64> {
    let text = std::fs::read_to_string("/proc/uptime")?;
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/uptime"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 37 -5 3 20 0 1 0 123456 1000000 321 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.comm, "my (odd) name");
        assert_eq!((stat.state, stat.ppid, stat.pgrp), ('S', 1, 4242));
        assert_eq!((stat.utime, stat.stime, stat.cutime, stat.cstime), (250, 37, 0, 3));
        assert_eq!(stat.cpu_ticks(), 290);
        assert_eq!((stat.starttime, stat.rss_pages), (123456, 321));
        assert!(!stat.is_zombie());
        assert!(parse_stat("").is_none());
        assert!(parse_stat("12 (x) S 1").is_none());
        assert!(parse_stat("x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21").is_none());
    }

    #[test]
    fn reads_this_process() {
        let me = read_stat(std::process::id()).expect("own stat");
        assert_eq!(me.pid, std::process::id());
        assert!(me.rss_pages > 0);
        assert!(snapshot().expect("snapshot").iter().any(|p| p.pid == me.pid));
        assert!(clock_ticks_per_second() > 0 && page_size() >= 1024);
        assert!(uptime_seconds().expect("uptime") > 0.0);
    }
}

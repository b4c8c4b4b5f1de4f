//! A supervised process tree: which processes belong to the run, and their CPU and memory.
//!
//! A process belongs to the run when it is in the run's process group, descends (by parent
//! pid) from the leader or from another member, or was a member in an earlier sample and
//! still runs (so a grandchild that moved to a new session or group, or was re-parented
//! when its parent exited, stays tracked once seen).

use std::collections::{HashMap, HashSet, VecDeque};

use super::proc::ProcStat;

/// CPU and memory of the tree at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeSample {
    /// Live (non-zombie) processes in the tree.
    pub processes: usize,
    /// CPU use since the previous sample, percent of one core (may exceed 100).
    pub cpu_pct: f64,
    /// Resident memory of the live processes.
    pub rss_bytes: u64,
}

/// Follows one process tree across samples.
#[derive(Debug, Clone)]
pub struct TreeTracker {
    leader: u32,
    pgid: u32,
    ticks_per_second: u64,
    page_size: u64,
    /// (pid, starttime) → CPU ticks at the previous sample.
    seen: HashMap<(u32, u64), u64>,
    /// Uptime (ticks) of the previous sample.
    last_uptime_ticks: u64,
}

impl TreeTracker {
    /// Tracks the tree of `leader`, which leads process group `pgid`; `uptime_ticks` is the
    /// clock before the leader started (processes started later count from zero).
    pub fn new(leader: u32, pgid: u32, ticks_per_second: u64, page_size: u64, uptime_ticks: u64) -> Self {
        TreeTracker {
            leader,
            pgid,
            ticks_per_second: ticks_per_second.max(1),
            page_size,
            seen: HashMap::new(),
            last_uptime_ticks: uptime_ticks,
        }
    }

    /// The members of the tree among `processes`.
    pub fn members<'a>(&self, processes: &'a [ProcStat]) -> Vec<&'a ProcStat> {
        let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
        for (index, p) in processes.iter().enumerate() {
            children.entry(p.ppid).or_default().push(index);
        }
        let mut included: HashSet<usize> = HashSet::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        for (index, p) in processes.iter().enumerate() {
            let member = p.pid == self.leader || p.pgrp == self.pgid || self.seen.contains_key(&p.identity());
            if member && included.insert(index) {
                queue.push_back(index);
            }
        }
        // The leader may be gone already; its orphans were re-parented, but children it
        // still has (as a zombie) are found through it.
        if let Some(kids) = children.get(&self.leader) {
            for &k in kids {
                if included.insert(k) {
                    queue.push_back(k);
                }
            }
        }
        while let Some(index) = queue.pop_front() {
            if let Some(kids) = children.get(&processes[index].pid) {
                for &k in kids {
                    if included.insert(k) {
                        queue.push_back(k);
                    }
                }
            }
        }
        let mut members: Vec<usize> = included.into_iter().collect();
        members.sort_unstable();
        members.into_iter().map(|i| &processes[i]).collect()
    }

    /// Takes a sample from a snapshot of every process at `uptime_ticks`.
    pub fn sample(&mut self, processes: &[ProcStat], uptime_ticks: u64) -> TreeSample {
        let members = self.members(processes);
        let mut delta_ticks = 0u64;
        let mut seen = HashMap::with_capacity(members.len());
        let mut live = 0usize;
        let mut rss_pages = 0u64;
        for p in &members {
            let ticks = p.cpu_ticks();
            let before = match self.seen.get(&p.identity()) {
                Some(&before) => before,
                // New since the last sample: count all of it if it started since then.
                None if p.starttime >= self.last_uptime_ticks => 0,
                // Older, seen for the first time: start counting now.
                None => ticks,
            };
            delta_ticks = delta_ticks.saturating_add(ticks.saturating_sub(before));
            seen.insert(p.identity(), ticks);
            // A process with no resident memory that is not yet a zombie is exiting: the
            // kernel has released its memory and it becomes a zombie next. It is not counted
            // as live (a heartbeat said "1 process, 0 bytes" in that instant), but its last
            // ticks count, as a zombie's do.
            if !p.is_zombie() && p.rss_pages > 0 {
                live += 1;
                rss_pages = rss_pages.saturating_add(p.rss_pages);
            }
        }
        let elapsed_ticks = uptime_ticks.saturating_sub(self.last_uptime_ticks);
        let cpu_pct =
            if elapsed_ticks == 0 { 0.0 } else { delta_ticks as f64 * 100.0 / elapsed_ticks as f64 };
        self.seen = seen;
        self.last_uptime_ticks = uptime_ticks.max(self.last_uptime_ticks);
        TreeSample { processes: live, cpu_pct, rss_bytes: rss_pages.saturating_mul(self.page_size) }
    }

    /// Clock ticks per second this tracker converts with.
    pub fn ticks_per_second(&self) -> u64 {
        self.ticks_per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, pgrp: u32, ticks: u64, start: u64) -> ProcStat {
        ProcStat {
            pid,
            comm: format!("p{pid}"),
            state: 'S',
            ppid,
            pgrp,
            utime: ticks,
            stime: 0,
            cutime: 0,
            cstime: 0,
            starttime: start,
            rss_pages: 10,
        }
    }

    #[test]
    fn members_are_the_group_and_descendants() {
        let tracker = TreeTracker::new(100, 100, 100, 4096, 1000);
        let all = vec![
            p(1, 0, 1, 0, 0),
            p(50, 1, 50, 0, 0),       // the supervisor
            p(100, 50, 100, 0, 1000), // the leader
            p(101, 100, 100, 0, 1001),
            p(102, 101, 102, 0, 1002), // grandchild in its own group
            p(103, 1, 103, 0, 1003),   // unrelated
            p(104, 1, 100, 0, 1004),   // orphan still in the group
        ];
        let pids: Vec<u32> = tracker.members(&all).iter().map(|m| m.pid).collect();
        assert_eq!(pids, vec![100, 101, 102, 104]);
    }

    #[test]
    fn cpu_is_counted_from_deltas_and_escapees_stay_tracked() {
        let mut tracker = TreeTracker::new(100, 100, 100, 4096, 1000);
        // After 1 s (100 ticks): the leader used 50 ticks, its child (new) 30.
        let first = tracker.sample(&[p(100, 50, 100, 50, 1000), p(101, 100, 100, 30, 1010)], 1100);
        assert_eq!(first.processes, 2);
        assert!((first.cpu_pct - 80.0).abs() < 1e-9, "{first:?}");
        assert_eq!(first.rss_bytes, 2 * 10 * 4096);
        // The leader exits; the child moved to its own group and was re-parented to 1, and
        // used 100 more ticks in the next second: still ours.
        let second = tracker.sample(&[p(101, 1, 101, 130, 1010)], 1200);
        assert_eq!(second.processes, 1);
        assert!((second.cpu_pct - 100.0).abs() < 1e-9, "{second:?}");
        // A pid reused by an unrelated process (different start time) is not ours.
        let third = tracker.sample(&[p(101, 1, 101, 500, 1150)], 1300);
        assert_eq!(third.processes, 0);
        assert_eq!(third.cpu_pct, 0.0);
        // Zombies are not live but their last ticks count.
        let mut tracker = TreeTracker::new(7, 7, 100, 4096, 0);
        tracker.sample(&[p(7, 1, 7, 10, 0)], 100);
        let mut zombie = p(7, 1, 7, 30, 0);
        zombie.state = 'Z';
        let sample = tracker.sample(&[zombie], 200);
        assert_eq!(sample.processes, 0);
        assert!((sample.cpu_pct - 20.0).abs() < 1e-9);
        // Nor is a process whose memory is released as it exits (not yet a zombie): its
        // last ticks count.
        let mut tracker = TreeTracker::new(8, 8, 100, 4096, 0);
        tracker.sample(&[p(8, 1, 8, 10, 0), p(9, 8, 8, 0, 0)], 100);
        let mut exiting = p(8, 1, 8, 40, 0);
        exiting.state = 'R';
        exiting.rss_pages = 0;
        let sample = tracker.sample(&[exiting, p(9, 8, 8, 0, 0)], 200);
        assert_eq!(sample.processes, 1);
        assert_eq!(sample.rss_bytes, 10 * 4096);
        assert!((sample.cpu_pct - 30.0).abs() < 1e-9, "{sample:?}");
    }
}

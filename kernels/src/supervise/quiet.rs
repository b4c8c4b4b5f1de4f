//! The wake gate: when is a finished run quiet?
//!
//! A run is quiesced once its leader has exited, every sample for at least the quiet window
//! had the tree's CPU and the GPU under their thresholds, and the whole tree is gone. A busy
//! sample (or the leader still running) restarts the window; an idle process that lingers
//! holds the gate shut until it exits. Time is data: samples carry their own instant.

use serde::Serialize;

/// Thresholds and window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuietConfig {
    /// How long CPU and GPU must stay under their thresholds, nanoseconds.
    pub window_ns: i64,
    /// Highest CPU percent (of one core) that counts as quiet.
    pub cpu_pct: f64,
    /// Highest GPU utilisation percent that counts as quiet.
    pub gpu_pct: f64,
}

/// What the gate is told at each sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuietSample {
    /// Monotonic instant of the sample, nanoseconds.
    pub at_ns: i64,
    /// Whether the leader has exited.
    pub leader_exited: bool,
    /// Live processes left in the tree.
    pub processes: usize,
    /// CPU of the tree since the previous sample, percent of one core.
    pub cpu_pct: f64,
    /// GPU utilisation, when a GPU is sampled.
    pub gpu_util_pct: Option<f64>,
}

/// The highest values seen during a completed quiet window: `run.quiesced` data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quiesced {
    /// The window's length, milliseconds.
    pub quiet_window_ms: u64,
    /// Highest CPU percent observed in the window.
    pub cpu_pct_max: f64,
    /// Highest GPU utilisation observed in the window, `None` when no GPU was sampled.
    pub gpu_util_max: Option<f64>,
}

/// Where the gate is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuietState {
    /// The leader is still running.
    Running,
    /// The leader has exited; waiting for quiet (since the given instant, if quiet now) and
    /// for the tree to be gone.
    Settling {
        /// Start of the current quiet stretch.
        quiet_since_ns: Option<i64>,
        /// Live processes left.
        processes: usize,
    },
    /// Quiet for the whole window with the tree gone.
    Quiesced(Quiesced),
}

/// The quiet-window state machine.
#[derive(Debug, Clone)]
pub struct QuietGate {
    config: QuietConfig,
    since_ns: Option<i64>,
    cpu_max: f64,
    gpu_max: Option<f64>,
    done: Option<Quiesced>,
}

impl QuietGate {
    /// A gate with `config`.
    pub fn new(config: QuietConfig) -> Self {
        QuietGate { config, since_ns: None, cpu_max: 0.0, gpu_max: None, done: None }
    }

    /// Feeds one sample. Once quiesced, stays quiesced.
    pub fn observe(&mut self, sample: &QuietSample) -> QuietState {
        if let Some(done) = self.done {
            return QuietState::Quiesced(done);
        }
        if !sample.leader_exited {
            self.since_ns = None;
            return QuietState::Running;
        }
        let cpu_quiet = sample.cpu_pct <= self.config.cpu_pct;
        let gpu_quiet = sample.gpu_util_pct.is_none_or(|gpu| gpu <= self.config.gpu_pct);
        if !(cpu_quiet && gpu_quiet) {
            self.since_ns = None;
            return QuietState::Settling { quiet_since_ns: None, processes: sample.processes };
        }
        let since = match self.since_ns {
            Some(since) => {
                self.cpu_max = self.cpu_max.max(sample.cpu_pct);
                self.gpu_max = match (self.gpu_max, sample.gpu_util_pct) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                since
            }
            None => {
                self.since_ns = Some(sample.at_ns);
                self.cpu_max = sample.cpu_pct;
                self.gpu_max = sample.gpu_util_pct;
                sample.at_ns
            }
        };
        if sample.processes == 0 && sample.at_ns.saturating_sub(since) >= self.config.window_ns {
            let done = Quiesced {
                quiet_window_ms: u64::try_from(self.config.window_ns / 1_000_000).unwrap_or(0),
                cpu_pct_max: self.cpu_max,
                gpu_util_max: self.gpu_max,
            };
            self.done = Some(done);
            return QuietState::Quiesced(done);
        }
        QuietState::Settling { quiet_since_ns: Some(since), processes: sample.processes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn gate() -> QuietGate {
        QuietGate::new(QuietConfig { window_ns: 300 * MS, cpu_pct: 5.0, gpu_pct: 5.0 })
    }

    fn s(at_ms: i64, exited: bool, processes: usize, cpu: f64, gpu: Option<f64>) -> QuietSample {
        QuietSample { at_ns: at_ms * MS, leader_exited: exited, processes, cpu_pct: cpu, gpu_util_pct: gpu }
    }

    #[test]
    fn quiesces_one_window_after_the_tree_goes_quiet() {
        let mut g = gate();
        assert_eq!(g.observe(&s(0, false, 1, 0.0, None)), QuietState::Running);
        assert_eq!(
            g.observe(&s(100, true, 0, 0.0, None)),
            QuietState::Settling { quiet_since_ns: Some(100 * MS), processes: 0 }
        );
        assert!(matches!(g.observe(&s(300, true, 0, 2.0, None)), QuietState::Settling { .. }));
        let QuietState::Quiesced(q) = g.observe(&s(400, true, 0, 1.0, None)) else { panic!("not quiesced") };
        assert_eq!(q, Quiesced { quiet_window_ms: 300, cpu_pct_max: 2.0, gpu_util_max: None });
        // Stays quiesced.
        assert!(matches!(g.observe(&s(500, true, 3, 99.0, None)), QuietState::Quiesced(_)));
    }

    #[test]
    fn a_busy_grandchild_restarts_the_window_and_an_idle_one_holds_it() {
        let mut g = gate();
        g.observe(&s(0, true, 1, 100.0, None));
        g.observe(&s(500, true, 1, 100.0, None));
        // Idle but alive for a long time: no quiescence while it lives.
        for t in (600..3000).step_by(100) {
            assert!(matches!(g.observe(&s(t, true, 1, 0.0, None)), QuietState::Settling { .. }), "{t}");
        }
        // Gone: the quiet stretch began at 600, so the window has long passed.
        let QuietState::Quiesced(q) = g.observe(&s(3000, true, 0, 0.0, None)) else { panic!("not quiesced") };
        assert_eq!(q.cpu_pct_max, 0.0);

        let mut g = gate();
        g.observe(&s(0, true, 1, 0.0, None));
        g.observe(&s(200, true, 1, 80.0, None)); // busy again: restart
        assert!(matches!(g.observe(&s(300, true, 0, 0.0, None)), QuietState::Settling { .. }));
        assert!(matches!(g.observe(&s(500, true, 0, 0.0, None)), QuietState::Settling { .. }));
        assert!(matches!(g.observe(&s(600, true, 0, 0.0, None)), QuietState::Quiesced(_)));
    }

    #[test]
    fn the_gpu_must_be_quiet_too() {
        let mut g = gate();
        g.observe(&s(0, true, 0, 0.0, Some(90.0)));
        assert!(matches!(
            g.observe(&s(400, true, 0, 0.0, Some(50.0))),
            QuietState::Settling { quiet_since_ns: None, .. }
        ));
        g.observe(&s(500, true, 0, 0.0, Some(3.0)));
        g.observe(&s(600, true, 0, 0.0, Some(4.0)));
        let QuietState::Quiesced(q) = g.observe(&s(800, true, 0, 0.0, Some(1.0))) else {
            panic!("not quiesced")
        };
        assert_eq!(q.gpu_util_max, Some(4.0));
        // The leader running again (never happens, but must not quiesce) resets.
        let mut g = gate();
        g.observe(&s(0, true, 0, 0.0, None));
        assert_eq!(g.observe(&s(200, false, 1, 0.0, None)), QuietState::Running);
        assert!(matches!(g.observe(&s(400, true, 0, 0.0, None)), QuietState::Settling { .. }));
    }
}

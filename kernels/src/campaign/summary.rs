//! The matrix printed at the end of a campaign: kernel × outcome, and every cell that did
//! not pass.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::Cell;
use super::cell::CellOutcome;
use super::command::CommandCell;
use super::command_run::{CommandLaunch, Verdict};
use super::cuda_cell::NOT_RUNNABLE;
use super::cuda_table::SourceCell;
use super::routes::Routes;
use crate::backend::Backend;

/// Counts of one kernel (or of all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KernelCounts {
    /// Completed within tolerance.
    pub passed: u64,
    /// Completed outside tolerance.
    pub failed: u64,
    /// Did not complete.
    pub faulted: u64,
}

impl KernelCounts {
    /// All cells counted.
    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.faulted
    }

    fn add(&mut self, class: Class) {
        match class {
            Class::Passed => self.passed += 1,
            Class::Failed => self.failed += 1,
            Class::Faulted => self.faulted += 1,
        }
    }
}

/// A cell's outcome class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Passed,
    Failed,
    Faulted,
}

/// A cell that did not pass, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// Kernel name.
    pub kernel: String,
    /// Backend name.
    pub backend: String,
    /// Human label of the variant.
    pub variant: String,
    /// `failed: max_abs_err … > tolerance …` or `faulted: ERROR (detail)`.
    pub what: String,
}

/// Most problems listed one by one.
const PROBLEMS_LISTED: usize = 50;

/// Counts per (kernel, backend), and the cells that did not pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// (kernel, backend) → counts.
    pub matrix: BTreeMap<(String, String), KernelCounts>,
    /// Every cell.
    pub totals: KernelCounts,
    /// Cells that failed or faulted (the first few hundred).
    pub problems: Vec<Problem>,
    /// Fallback launches (counted apart from the cells: each stands in for a primary).
    pub fallbacks: KernelCounts,
    /// What each fallback did (the first few hundred).
    pub fallback_lines: Vec<Problem>,
    /// Repeated, passed command cells by route, for A/B timing.
    #[serde(skip)]
    pub routes: Routes,
    /// `[[cuda]]` cells recorded as not runnable here (counted among the faulted).
    pub not_runnable: u64,
}

impl Summary {
    /// Adds one built-in kernel's outcome.
    pub fn record(&mut self, cell: &Cell, outcome: &CellOutcome) {
        self.add_outcome(cell.spec.name(), outcome, || cell.label());
    }

    fn add_outcome(&mut self, kernel: &str, outcome: &CellOutcome, label: impl FnOnce() -> String) {
        let what = match outcome {
            CellOutcome::Completed(c) if c.passed => None,
            CellOutcome::Completed(c) => Some(match c.max_abs_err {
                Some(err) => format!("failed: max_abs_err {err:.3e} > tolerance {:.1e}", c.tolerance),
                None => "failed: non-finite output".to_owned(),
            }),
            CellOutcome::Faulted(f) => Some(match &f.detail {
                Some(detail) => format!("faulted: {} ({detail})", f.error),
                None => format!("faulted: {}", f.error),
            }),
        };
        let class = match outcome {
            CellOutcome::Completed(c) if c.passed => Class::Passed,
            CellOutcome::Completed(_) => Class::Failed,
            CellOutcome::Faulted(_) => Class::Faulted,
        };
        self.add(kernel, outcome.backend().as_str(), class, label, what);
    }

    /// Adds one `[[cuda]]` cell's outcome; a cell that could not run is also counted in
    /// `not_runnable` (the reason is listed with the first only: it is the same for all).
    pub fn record_source(&mut self, cell: &SourceCell, outcome: &CellOutcome) {
        let not_runnable = matches!(outcome, CellOutcome::Faulted(f) if f.error == NOT_RUNNABLE);
        if not_runnable {
            self.not_runnable += 1;
            let what = match outcome {
                CellOutcome::Faulted(f) if self.not_runnable == 1 => {
                    format!("faulted: {NOT_RUNNABLE} ({})", f.detail.as_deref().unwrap_or_default())
                }
                _ => format!("faulted: {NOT_RUNNABLE}"),
            };
            self.add(&cell.name, Backend::Cuda.as_str(), Class::Faulted, || cell.label(), Some(what));
            return;
        }
        self.add_outcome(&cell.name, outcome, || cell.label());
    }

    /// Adds one command cell's launch, with the codes of the Xids attached to it.
    pub fn record_command(
        &mut self,
        cell: &CommandCell,
        backend: &str,
        launch: &CommandLaunch,
        xids: &[u32],
    ) {
        let class = match launch.verdict {
            Verdict::Completed { passed: true, .. } => Class::Passed,
            Verdict::Completed { .. } => Class::Failed,
            Verdict::Faulted { .. } => Class::Faulted,
        };
        self.add(&cell.name, backend, class, || cell.label(), launch.problem_with(xids));
        if let (Class::Passed, Some(repeats)) = (class, launch.repeats) {
            self.routes.add(&cell.name, &cell.variant, repeats);
        }
    }

    /// Adds a fallback launch, which re-ran a primary cell that did not pass.
    pub fn record_fallback(&mut self, cell: &CommandCell, launch: &CommandLaunch, xids: &[u32]) {
        let class = match launch.verdict {
            Verdict::Completed { passed: true, .. } => Class::Passed,
            Verdict::Completed { .. } => Class::Failed,
            Verdict::Faulted { .. } => Class::Faulted,
        };
        self.fallbacks.add(class);
        if self.fallback_lines.len() < PROBLEMS_LISTED * 4 {
            self.fallback_lines.push(Problem {
                kernel: cell.name.clone(),
                backend: String::new(),
                variant: cell.label(),
                what: launch.problem_with(xids).unwrap_or_else(|| "passed".to_owned()),
            });
        }
    }

    fn add(
        &mut self,
        kernel: &str,
        backend: &str,
        class: Class,
        label: impl FnOnce() -> String,
        what: Option<String>,
    ) {
        let key = (kernel.to_owned(), backend.to_owned());
        self.matrix.entry(key).or_default().add(class);
        self.totals.add(class);
        let Some(what) = what else { return };
        if self.problems.len() >= PROBLEMS_LISTED * 4 {
            return;
        }
        self.problems.push(Problem {
            kernel: kernel.to_owned(),
            backend: backend.to_owned(),
            variant: label(),
            what,
        });
    }

    /// The matrix as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<22} {:<7} {:>7} {:>7} {:>7} {:>7}",
            "kernel", "backend", "cells", "passed", "failed", "faulted"
        );
        for ((kernel, backend), counts) in &self.matrix {
            let _ = writeln!(
                out,
                "{kernel:<22} {backend:<7} {:>7} {:>7} {:>7} {:>7}",
                counts.total(),
                counts.passed,
                counts.failed,
                counts.faulted
            );
        }
        let t = self.totals;
        let _ = writeln!(
            out,
            "{:<22} {:<7} {:>7} {:>7} {:>7} {:>7}",
            "total",
            "",
            t.total(),
            t.passed,
            t.failed,
            t.faulted
        );
        if !self.problems.is_empty() {
            let _ = writeln!(out, "\ncells that did not pass:");
            for p in self.problems.iter().take(PROBLEMS_LISTED) {
                let _ = writeln!(out, "  {} [{}] {}: {}", p.kernel, p.backend, p.variant, p.what);
            }
            let more = (t.failed + t.faulted).saturating_sub(PROBLEMS_LISTED as u64);
            if more > 0 {
                let _ = writeln!(out, "  … and {more} more");
            }
        }
        let comparisons = self.routes.comparisons();
        if !comparisons.is_empty() {
            let _ = writeln!(
                out,
                "\nroutes (repeated cells; beyond the spread: the faster p90 is below the slower min):"
            );
            for c in comparisons.iter().take(PROBLEMS_LISTED) {
                let _ = writeln!(
                    out,
                    "  {} {}: {} {} µs [{}–{}] vs {} {} µs [{}–{}]: {} faster ×{:.2}, {}",
                    c.kernel,
                    c.cell,
                    c.faster.route,
                    c.faster.repeats.median_us,
                    c.faster.repeats.min_us,
                    c.faster.repeats.p90_us,
                    c.slower.route,
                    c.slower.repeats.median_us,
                    c.slower.repeats.min_us,
                    c.slower.repeats.p90_us,
                    c.faster.route,
                    c.ratio,
                    if c.beyond_spread { "beyond the spread" } else { "within the spread" }
                );
            }
        }
        if self.not_runnable > 0 {
            let _ = writeln!(
                out,
                "\n{} [[cuda]] cell(s) not runnable here (recorded as faulted, NOT_RUNNABLE)",
                self.not_runnable
            );
        }
        let f = self.fallbacks;
        if f.total() > 0 {
            let _ = writeln!(
                out,
                "\nfallbacks: {} ran for cells that did not pass; {} passed, {} failed, {} faulted",
                f.total(),
                f.passed,
                f.failed,
                f.faulted
            );
            for line in self.fallback_lines.iter().take(PROBLEMS_LISTED) {
                let _ = writeln!(out, "  {} {}: {}", line.kernel, line.variant, line.what);
            }
        }
        out
    }
}

//! The matrix printed at the end of a campaign: kernel × outcome, and every cell that did
//! not pass.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::Cell;
use super::cell::CellOutcome;

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

    fn add(&mut self, outcome: &CellOutcome) {
        match outcome {
            CellOutcome::Completed(c) if c.passed => self.passed += 1,
            CellOutcome::Completed(_) => self.failed += 1,
            CellOutcome::Faulted(_) => self.faulted += 1,
        }
    }
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
}

impl Summary {
    /// Adds one outcome.
    pub fn record(&mut self, cell: &Cell, outcome: &CellOutcome) {
        let key = (cell.spec.name().to_owned(), outcome.backend().as_str().to_owned());
        self.matrix.entry(key).or_default().add(outcome);
        self.totals.add(outcome);
        if outcome.passed() || self.problems.len() >= PROBLEMS_LISTED * 4 {
            return;
        }
        let what = match outcome {
            CellOutcome::Completed(c) => match c.max_abs_err {
                Some(err) => format!("failed: max_abs_err {err:.3e} > tolerance {:.1e}", c.tolerance),
                None => "failed: non-finite output".to_owned(),
            },
            CellOutcome::Faulted(f) => match &f.detail {
                Some(detail) => format!("faulted: {} ({detail})", f.error),
                None => format!("faulted: {}", f.error),
            },
        };
        self.problems.push(Problem {
            kernel: cell.spec.name().to_owned(),
            backend: outcome.backend().as_str().to_owned(),
            variant: cell.label(),
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
        out
    }
}

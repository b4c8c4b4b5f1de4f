//! The kernel campaign matrix: kernel × variant × backend → launches passed, failed and
//! faulted. A variant is keyed by its canonical JSON text (keys sorted, compact), e.g.
//! `{"block":256,"dtype":"f32","n":1048576,"seed":7}`.

use std::collections::BTreeMap;

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use serde::Serialize;

use crate::canon::canonical_string;
use crate::data::{bool_of, f64_of, owned, str_of, u64_of};
use crate::kernel_runs::{Ended, RecentRuns};

/// One cell of the matrix.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cell {
    pub passed: u64,
    pub failed: u64,
    pub faulted: u64,
    /// `max_abs_err` of the latest completed launch (`None` if it was non-finite or none ran).
    pub last_max_abs_err: Option<f64>,
    pub last_tolerance: Option<f64>,
    pub last_duration_us: Option<u64>,
    /// `error` of the latest faulted launch.
    pub last_error: Option<String>,
    pub last_seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelTotals {
    pub launches: u64,
    pub passed: u64,
    pub failed: u64,
    pub faulted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Kernels {
    /// kernel → canonical variant JSON → backend → cell.
    matrix: BTreeMap<String, BTreeMap<String, BTreeMap<String, Cell>>>,
    totals: KernelTotals,
    /// The runs of the launches (subject `run/<run>`), for the dashboard: not part of the
    /// state or its digest (see [`crate::kernel_runs`]).
    #[serde(skip)]
    runs: RecentRuns,
}

impl Kernels {
    pub fn new() -> Kernels {
        Kernels::default()
    }

    pub fn apply(&mut self, record: &Record) {
        let faulted = match record.event_type() {
            Some(EventType::KernelLaunchCompleted) => false,
            Some(EventType::KernelLaunchFaulted) => true,
            _ => return,
        };
        let data = &record.event.data;
        let (Some(kernel), Some(variant), Some(backend)) =
            (str_of(data, "kernel"), data.get("variant"), str_of(data, "backend"))
        else {
            return;
        };
        let cell = self
            .matrix
            .entry(kernel.to_owned())
            .or_default()
            .entry(canonical_string(variant))
            .or_default()
            .entry(backend.to_owned())
            .or_default();
        cell.last_seq = record.seq;
        self.totals.launches += 1;
        let ended = if faulted {
            Ended::Faulted
        } else if bool_of(data, "passed") == Some(true) {
            Ended::Passed
        } else {
            Ended::Failed
        };
        if let Some(run) = record.event.subject.as_deref().and_then(|s| s.strip_prefix("run/")) {
            self.runs.record(run, record, ended);
        }
        match ended {
            Ended::Faulted => {
                cell.faulted += 1;
                cell.last_error = owned(str_of(data, "error"));
                self.totals.faulted += 1;
            }
            Ended::Passed => {
                cell.passed += 1;
                self.totals.passed += 1;
            }
            Ended::Failed => {
                cell.failed += 1;
                self.totals.failed += 1;
            }
        }
        if !faulted {
            cell.last_max_abs_err = f64_of(data, "max_abs_err");
            cell.last_tolerance = f64_of(data, "tolerance");
            cell.last_duration_us = u64_of(data, "duration_us");
        }
    }

    /// kernel → canonical variant JSON → backend → cell.
    pub fn matrix(&self) -> &BTreeMap<String, BTreeMap<String, BTreeMap<String, Cell>>> {
        &self.matrix
    }

    /// The cell for `kernel`, a variant (any key order) and a backend.
    pub fn cell(&self, kernel: &str, variant: &serde_json::Value, backend: &str) -> Option<&Cell> {
        self.matrix.get(kernel)?.get(&canonical_string(variant))?.get(backend)
    }

    pub fn totals(&self) -> &KernelTotals {
        &self.totals
    }

    /// The campaign runs, the one with the latest launch first.
    pub fn runs(&self) -> &RecentRuns {
        &self.runs
    }

    pub fn digest(&self) -> Hash32 {
        crate::digest::state_digest(self)
    }
}

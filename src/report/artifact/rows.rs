//! The report's tables of the runs its claims rest on: the runs themselves, the Xids inside
//! their windows (and those attached to their launches), and the kernel matrix cells its
//! kernel checks match.

use assay_projections::audit::{Audit, Check, RunFacts};
use assay_projections::canon::canonical_string;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: String,
    pub workers: Vec<String>,
    pub gpus: Vec<String>,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// `0`, `1`, `signal 9`, or `—` when it has not finished.
    pub exit: String,
    pub quiesced: bool,
    pub evidence: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidRow {
    pub run: String,
    /// The GPU's PCI id, or `launch <n>` for an Xid attached to a launch.
    pub gpu: String,
    pub host: Option<String>,
    pub code: u32,
    pub class: String,
    pub taints: bool,
    pub seq: u64,
    pub time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRow {
    pub claim: String,
    pub kernel: String,
    pub variant: String,
    pub backend: String,
    pub passed: u64,
    pub failed: u64,
    pub faulted: u64,
    pub errors: Vec<String>,
    pub runs: Vec<String>,
}

fn time_of(ns: Option<i64>) -> Option<String> {
    ns.map(crate::clock::rfc3339)
}

pub fn run_row(id: &str, f: &RunFacts) -> RunRow {
    let exit = match (f.finished, f.exit_code, f.signal) {
        (false, _, _) => "—".to_owned(),
        (true, Some(code), _) => code.to_string(),
        (true, None, Some(signal)) => format!("signal {signal}"),
        (true, None, None) => "unknown".to_owned(),
    };
    RunRow {
        id: id.to_owned(),
        workers: f.workers.iter().cloned().collect(),
        gpus: f.gpus.iter().cloned().collect(),
        started: time_of(f.started_ns),
        finished: time_of(f.finished_ns.filter(|_| f.finished)),
        exit,
        quiesced: f.quiesced,
        evidence: f.evidence,
    }
}

pub fn xid_rows(audit: &Audit, run: &str) -> Vec<XidRow> {
    let mut rows: Vec<XidRow> = audit
        .xids_in_window(run)
        .map(|(gpu, x)| XidRow {
            run: run.to_owned(),
            gpu: gpu.to_owned(),
            host: x.host.clone(),
            code: x.code,
            class: x.class.as_str().to_owned(),
            taints: x.class.taints(),
            seq: x.seq,
            time: time_of(Some(x.time_ns)),
        })
        .chain(audit.launch_xids(run).iter().map(|x| XidRow {
            run: run.to_owned(),
            gpu: format!("launch {}", x.launch),
            host: None,
            code: x.code,
            class: x.class.as_str().to_owned(),
            taints: x.class.taints(),
            seq: x.seq,
            time: None,
        }))
        .collect();
    rows.sort_by_key(|r| r.seq);
    rows.dedup();
    rows
}

pub fn cell_rows(audit: &Audit, slug: &str, claim: &str) -> Vec<CellRow> {
    let check = audit.claims().get(slug).and_then(|m| m.get(claim)).and_then(|c| c.check.as_ref());
    let Some(Check::Kernel { kernel, variant, backend }) = check else { return Vec::new() };
    audit
        .matching_cells(kernel, variant.as_ref(), backend.as_deref())
        .map(|(b, cell)| CellRow {
            claim: claim.to_owned(),
            kernel: kernel.clone(),
            variant: canonical_string(&cell.variant),
            backend: b.to_owned(),
            passed: cell.passed,
            failed: cell.failed,
            faulted: cell.faulted,
            errors: cell.errors.iter().cloned().collect(),
            runs: cell.runs.iter().cloned().collect(),
        })
        .collect()
}

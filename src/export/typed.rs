//! The typed tables: one row per event of the types each table takes, with flat columns taken
//! from the event's `data` (nested values as canonical JSON text). Every row keeps `seq` and the
//! producer's `time`, so it joins back to `events`. `verdicts` is the audit projection's
//! verdicts at the export's checkpoint (see [`verdict_rows`]).

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use assay_events::EventType;
use assay_projections::audit::AuditReport;
use serde_json::{Value, json};

use super::columns::{BatchBuilder, Cell, Column, Kind, Row, integer, schema_of};

/// A typed table: its name (the folder under the export), the event types it takes, and its
/// columns.
pub struct TableDef {
    pub name: &'static str,
    pub types: &'static [EventType],
    pub columns: &'static [Column],
    pub required: &'static [&'static str],
}

impl TableDef {
    pub fn schema(&self) -> SchemaRef {
        schema_of(self.columns, self.required)
    }

    pub fn builder(&self, capacity: usize) -> BatchBuilder<'static> {
        let columns: &'static [Column] = self.columns;
        BatchBuilder::new(columns, self.schema(), capacity)
    }
}

macro_rules! col {
    ($name:literal, $kind:ident, $get:expr) => {
        Column { name: $name, kind: Kind::$kind, get: $get }
    };
}

const SEQ: Column = col!("seq", U64, |r| Cell::U64(r.seq));
const TIME: Column = col!("time", Ts, |r| r.time_ns.map_or(Cell::Null, Cell::Ts));
const EVENT: Column = col!("event", Str, |r| r.event());
const RUN: Column = col!("run", Str, |r| r.str("run"));

fn nested<'a>(r: &Row<'a>, outer: &str, inner: &str) -> Cell<'a> {
    r.data.get(outer).and_then(|o| o.get(inner)).and_then(Value::as_str).map_or(Cell::Null, Cell::Str)
}

pub const RUNS: TableDef = TableDef {
    name: "runs",
    types: &[
        EventType::RunQueued,
        EventType::RunStarted,
        EventType::RunFinished,
        EventType::RunQuiesced,
        EventType::RunCancelled,
    ],
    columns: &[
        SEQ,
        TIME,
        RUN,
        EVENT,
        col!("project", Str, |r| r.str("project")),
        col!("needs_gpu", Bool, |r| r.bool("needs_gpu")),
        col!("spec", Str, |r| r.json("spec")),
        col!("host", Str, |r| r.str("worker")),
        col!("gpu", Str, |r| r.pci("gpu")),
        col!("pid", I64, |r| r.i64("pid")),
        col!("command", Str, |r| r.json("command")),
        col!("exit_code", I64, |r| r.i64("exit_code")),
        col!("signal", I64, |r| r.i64("signal")),
        col!("duration_ms", I64, |r| r.i64("duration_ms")),
        col!("quiet_window_ms", I64, |r| r.i64("quiet_window_ms")),
        col!("cpu_pct_max", F64, |r| r.f64("cpu_pct_max")),
        col!("gpu_util_max", F64, |r| r.f64("gpu_util_max")),
        col!("reason", Str, |r| r.str("reason")),
    ],
    required: &["seq", "run", "event"],
};

pub const DISPATCHES: TableDef = TableDef {
    name: "dispatches",
    types: &[EventType::DispatchRequested, EventType::DispatchDecided],
    columns: &[
        SEQ,
        TIME,
        RUN,
        EVENT,
        col!("host", Str, |r| r.str("worker")),
        col!("gpu", Str, |r| r.pci("gpu")),
        col!("accepted", Bool, |r| r.bool("accepted")),
        col!("reasons", Strs, |r| r.strs("reasons")),
        col!("request", Str, |r| r.str("request")),
    ],
    required: &["seq", "run", "event"],
};

pub const METRICS: TableDef = TableDef {
    name: "metrics",
    types: &[EventType::MetricRecorded],
    columns: &[
        RUN,
        col!("name", Str, |r| r.str("name")),
        col!("step", U64, |r| r.u64("step")),
        col!("value", F64, |r| r.f64("value")),
        col!("unit", Str, |r| r.str("unit")),
        SEQ,
        TIME,
    ],
    // `step` is null only for an event a ledger accepted before integer fields had to be
    // integers of their column's range (`step: 1e30`); see `columns::integer`.
    required: &["seq", "run", "name", "value"],
};

pub const KERNEL_LAUNCHES: TableDef = TableDef {
    name: "kernel_launches",
    types: &[EventType::KernelLaunchCompleted, EventType::KernelLaunchFaulted],
    columns: &[
        SEQ,
        TIME,
        RUN,
        col!("kernel", Str, |r| r.str("kernel")),
        col!("outcome", Str, |r| {
            if r.ty == EventType::KernelLaunchFaulted.as_str() {
                Cell::Str("faulted")
            } else if r.data.get("passed").and_then(Value::as_bool) == Some(true) {
                Cell::Str("passed")
            } else {
                Cell::Str("failed")
            }
        }),
        col!("variant", Str, |r| r.json("variant")),
        col!("backend", Str, |r| r.str("backend")),
        col!("device", Str, |r| r.str("device")),
        col!("grid", Str, |r| r.json("grid")),
        col!("block", Str, |r| r.json("block")),
        col!("duration_us", I64, |r| r.i64("duration_us")),
        col!("max_abs_err", F64, |r| r.f64("max_abs_err")),
        col!("tolerance", F64, |r| r.f64("tolerance")),
        col!("passed", Bool, |r| r.bool("passed")),
        col!("error", Str, |r| r.str("error")),
        col!("sticky", Bool, |r| r.bool("sticky")),
        col!("detail", Str, |r| r.str("detail")),
        col!("input_digest", Str, |r| r.str("input_digest")),
        col!("output_digest", Str, |r| r.str("output_digest")),
        col!("reference_digest", Str, |r| r.str("reference_digest")),
    ],
    required: &["seq", "run", "kernel", "outcome"],
};

pub const XIDS: TableDef = TableDef {
    name: "xids",
    types: &[EventType::GpuXid],
    columns: &[
        SEQ,
        TIME,
        // Null for events recorded before producers gave the host.
        col!("host", Str, |r| r.str("host")),
        col!("pci", Str, |r| r.pci("pci")),
        col!("code", U64, |r| r.u64("code")),
        col!("pid", I64, |r| r.i64("pid")),
        col!("process", Str, |r| r.str("process")),
        col!("message", Str, |r| r.str("message")),
        col!("source", Str, |r| r.str("source")),
        col!("severity", Str, |r| r.str("severity")),
        col!("action", Str, |r| r.str("action")),
        col!("kernel_time", Str, |r| r.str("kernel_time")),
    ],
    // `code`: as `metrics.step`.
    required: &["seq", "pci"],
};

pub const TELEMETRY: TableDef = TableDef {
    name: "telemetry",
    types: &[EventType::GpuTelemetry],
    columns: &[
        SEQ,
        TIME,
        col!("uuid", Str, |r| r.str("uuid")),
        // Null for events recorded before producers gave the host.
        col!("host", Str, |r| r.str("host")),
        col!("pci", Str, |r| r.pci("pci")),
        col!("temp_c", I64, |r| r.i64("temp_c")),
        col!("power_mw", I64, |r| r.i64("power_mw")),
        col!("util_gpu_pct", F64, |r| r.f64("util_gpu_pct")),
        col!("mem_used_bytes", I64, |r| r.i64("mem_used_bytes")),
        col!("clocks", Str, |r| r.json("clocks")),
        col!("throttle", Strs, |r| r.strs("throttle")),
    ],
    required: &["seq", "pci"],
};

pub const CLAIMS: TableDef = TableDef {
    name: "claims",
    types: &[EventType::ClaimAsserted, EventType::ClaimWithdrawn],
    columns: &[
        SEQ,
        TIME,
        col!("artifact", Str, |r| r.str("artifact")),
        col!("claim", Str, |r| r.str("claim")),
        EVENT,
        col!("statement", Str, |r| r.str("statement")),
        col!("location", Str, |r| r.str("location")),
        col!("check_kind", Str, |r| nested(r, "check", "kind")),
        col!("check_run", Str, |r| nested(r, "check", "run")),
        col!("check_metric", Str, |r| nested(r, "check", "metric")),
        col!("check", Str, |r| r.json("check")),
        col!("evidence", Strs, |r| r.strs("evidence")),
        col!("reason", Str, |r| r.str("reason")),
    ],
    required: &["seq", "artifact", "claim", "event"],
};

pub const ARTIFACTS: TableDef = TableDef {
    name: "artifacts",
    types: &[
        EventType::ArtifactSubmitted,
        EventType::ArtifactAdmitted,
        EventType::ArtifactRejected,
        EventType::ArtifactSuperseded,
    ],
    columns: &[
        SEQ,
        TIME,
        col!("slug", Str, |r| r.str("slug")),
        col!("version", U64, |r| r.u64("version")),
        EVENT,
        col!("title", Str, |r| r.str("title")),
        col!("content_digest", Str, |r| r.str("content_digest")),
        col!("runs", Strs, |r| r.strs("runs")),
        col!("files", U64, |r| {
            r.data.get("files").and_then(Value::as_array).map_or(Cell::Null, |a| Cell::U64(a.len() as u64))
        }),
        // Null when the sum does not fit in 64 bits (10 000 files of up to 2^64 - 1 bytes each).
        col!("bytes", U64, |r| {
            let files = r.data.get("files").and_then(Value::as_array);
            files
                .and_then(|files| {
                    files.iter().try_fold(0u64, |sum, f| {
                        let bytes = f.get("bytes").and_then(integer).and_then(|b| u64::try_from(b).ok())?;
                        sum.checked_add(bytes)
                    })
                })
                .map_or(Cell::Null, Cell::U64)
        }),
        col!("generator", Str, |r| r.str("generator")),
        col!("submission", Str, |r| r.str("submission")),
        col!("reasons", Strs, |r| r.strs("reasons")),
        col!("by", U64, |r| r.u64("by")),
        col!("reason", Str, |r| r.str("reason")),
    ],
    // `version`: as `metrics.step`.
    required: &["seq", "slug", "event"],
};

/// The tables built from events, in manifest order.
pub const EVENT_TABLES: &[&TableDef] =
    &[&RUNS, &DISPATCHES, &METRICS, &KERNEL_LAUNCHES, &XIDS, &TELEMETRY, &CLAIMS, &ARTIFACTS];

/// The index in [`EVENT_TABLES`] of the table taking `ty`, if any.
pub fn table_of(ty: EventType) -> Option<usize> {
    EVENT_TABLES.iter().position(|t| t.types.contains(&ty))
}

/// `verdicts`: one row per claim that is not withdrawn (`level` = `claim`) and one per artifact
/// (`level` = `artifact`, `claim` null), as the audit projection judges them at the
/// checkpoint. `passes` is the artifact's verdict on artifact rows and `verdict = supported`
/// on claim rows.
///
/// An export holds the verdicts at its checkpoint as one file, [`CURRENT_VERDICTS`], which each
/// `--since` step replaces, so a plain glob over `verdicts/` reads one current row per claim;
/// and each step's snapshot under [`VERDICTS_HISTORY`]`/checkpoint=<size>/` (the partition
/// key), never rewritten.
pub const VERDICTS: TableDef = TableDef {
    name: "verdicts",
    types: &[],
    columns: &[
        col!("artifact", Str, |r| r.str("artifact")),
        col!("claim", Str, |r| r.str("claim")),
        col!("level", Str, |r| r.str("level")),
        col!("kind", Str, |r| r.str("kind")),
        col!("verdict", Str, |r| r.str("verdict")),
        col!("passes", Bool, |r| r.bool("passes")),
        col!("canonical_version", U64, |r| r.u64("canonical_version")),
        col!("reasons", Strs, |r| r.strs("reasons")),
        col!("context", Strs, |r| r.strs("context")),
        col!("runs", Strs, |r| r.strs("runs")),
        col!("evidence", Strs, |r| r.strs("evidence")),
        col!("asserted_seq", U64, |r| r.u64("asserted_seq")),
        col!("registration", Str, |r| r.str("registration")),
    ],
    required: &["artifact", "level", "passes"],
};

/// Columns of [`VERDICTS`] added after its first layout, last in the table. A verdicts file
/// written before one was added lacks it, and `verify-export` compares that file without it
/// (`registration`: whether each claim was preregistered; null on artifact rows).
pub const VERDICTS_ADDED: &[&str] = &["registration"];

/// The verdicts at the export's checkpoint (table [`VERDICTS`]).
pub const CURRENT_VERDICTS: &str = "verdicts/current.parquet";

/// The table (and folder) of each export step's verdicts, `checkpoint=<size>/` partitioned.
pub const VERDICTS_HISTORY: &str = "verdicts_history";

/// The `data` of each verdicts row (see [`VERDICTS`]): artifacts first, each followed by its
/// claims, in the report's order.
pub fn verdict_rows(report: &AuditReport) -> Vec<Value> {
    let mut rows = Vec::with_capacity(report.artifacts.len() + report.claims.len());
    for a in &report.artifacts {
        rows.push(json!({
            "artifact": a.slug,
            "level": "artifact",
            "passes": a.passes,
            "canonical_version": a.canonical_version,
            "reasons": a.reasons,
        }));
        for c in report.claims_of(&a.slug) {
            rows.push(json!({
                "artifact": c.artifact,
                "claim": c.claim,
                "level": "claim",
                "kind": c.kind,
                "verdict": c.verdict.as_str(),
                "passes": c.verdict == assay_projections::audit::Verdict::Supported,
                "canonical_version": a.canonical_version,
                "reasons": c.reasons,
                "context": c.context,
                "runs": c.runs,
                "evidence": c.evidence,
                "asserted_seq": c.asserted_seq,
                "registration": c.registration.as_str(),
            }));
        }
    }
    rows
}

/// The verdicts batch of a report.
pub fn verdicts_batch(report: &AuditReport) -> Result<RecordBatch, ArrowError> {
    let rows = verdict_rows(report);
    let mut b = VERDICTS.builder(rows.len());
    for data in &rows {
        b.push(&Row { seq: 0, time_ns: None, ty: "", data });
    }
    b.finish()
}

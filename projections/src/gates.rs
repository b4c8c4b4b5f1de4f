//! Gates: pure decisions the sequencer takes against the head state, then records as the
//! ledger's own event (`dispatch.decided`, `artifact.admitted` / `artifact.rejected`).
//!
//! The decision does not depend on whether the request record itself was already applied
//! to `state`: requests change nothing a gate reads. Once the ledger appends the decision
//! and applies it, the state reflects it (an accepted dispatch holds its lane; an admitted
//! artifact is canonical), so the next request is decided against it.

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use serde::Serialize;
use serde_json::{Value, json};

use crate::bundle::Projections;
use crate::data::{str_of, strs_of, u64_of};
use crate::pci;
use crate::queue::RunState;

/// Most reasons a ledger event may carry (`maxItems` of the schemas).
pub const MAX_REASONS: usize = 64;

/// Why a record could not be decided on. The ledger validated the record's `data`, so
/// these mean the caller passed the wrong record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    #[error("record {seq} is a {got}, not a {expected}")]
    WrongType { seq: u64, expected: EventType, got: String },
    #[error("record {seq}: data field `{field}` is missing or malformed")]
    Field { seq: u64, field: &'static str },
}

/// A decision the ledger records as its own event.
pub trait LedgerDecision {
    /// The CloudEvents `type` of the ledger's event.
    fn event_type(&self) -> EventType;
    /// The CloudEvents `subject`.
    fn subject(&self) -> String;
    /// The event's `data`, valid against `schemas/events/<event_type>.json`.
    fn ledger_event_data(&self) -> Value;
}

/// The `data` of the ledger's event for `decision`.
pub fn ledger_event_data(decision: &impl LedgerDecision) -> Value {
    decision.ledger_event_data()
}

/// The dispatch gate's decision on one `dispatch.requested`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchDecision {
    pub run: String,
    pub worker: String,
    /// As requested (verbatim), `None` for a CPU-only run.
    pub gpu: Option<String>,
    pub accepted: bool,
    /// Empty iff accepted.
    pub reasons: Vec<String>,
    /// Event digest of the `dispatch.requested`.
    pub request: Hash32,
}

impl LedgerDecision for DispatchDecision {
    fn event_type(&self) -> EventType {
        EventType::DispatchDecided
    }
    fn subject(&self) -> String {
        format!("run/{}", self.run)
    }
    fn ledger_event_data(&self) -> Value {
        json!({
            "run": self.run,
            "worker": self.worker,
            "gpu": self.gpu,
            "accepted": self.accepted,
            "reasons": self.reasons,
            "request": self.request.to_hex(),
        })
    }
}

/// Decides a `dispatch.requested` against `state`. Refusal reasons, in this order, all that
/// apply:
///
/// - `run_not_queued`: the run is unknown or not in state `queued`;
/// - `paused`; `maintenance` (a maintenance scope covers the lane);
/// - `preflight_missing` (the worker never sent `worker.preflight`), `preflight_failed`
///   (its latest one is unhealthy), `preflight_stale` (its latest one was received more than
///   `preflight_max_age_ns` before the request's `received_at_ns`);
/// - `gpu_required`: the run was queued with `needs_gpu: true` and the request names no GPU;
/// - `gpu_not_offered:<pci>`: the worker's latest preflight does not list that GPU;
/// - `gpu_needs_reset:<pci>`: an Xid whose catalog action is a reset (or reboot) hit that GPU
///   of this worker (or, recorded without a host, that PCI id) and no `gpu.preflight` has
///   found it working since (see [`crate::gpus`]): work sent there would fault or be tainted;
/// - `lane_held_by:<run>`: the (worker, GPU) lane is held by an accepted run that has not
///   quiesced or been cancelled.
pub fn dispatch_decision(
    state: &Projections,
    request: &Record,
    preflight_max_age_ns: i64,
) -> Result<DispatchDecision, GateError> {
    expect_type(request, EventType::DispatchRequested)?;
    let data = &request.event.data;
    let run = field(request, "run", str_of(data, "run"))?;
    let worker = field(request, "worker", str_of(data, "worker"))?;
    let gpu = str_of(data, "gpu");
    let lane = match gpu {
        Some(g) => Some(field(request, "gpu", pci::canonical(g))?),
        None => None,
    };
    let queue = &state.queue;
    let mut reasons = Vec::new();

    let queued = queue.run(run);
    if queued.is_none_or(|r| r.state != RunState::Queued) {
        reasons.push("run_not_queued".to_owned());
    }
    if queue.paused().is_some() {
        reasons.push("paused".to_owned());
    }
    if queue.maintenance().covering(worker, lane.as_deref()).is_some() {
        reasons.push("maintenance".to_owned());
    }
    let preflight = queue.preflight(worker);
    match preflight {
        None => reasons.push("preflight_missing".to_owned()),
        Some(p) => {
            if !p.healthy {
                reasons.push("preflight_failed".to_owned());
            }
            if request.received_at_ns.saturating_sub(p.received_at_ns) > preflight_max_age_ns {
                reasons.push("preflight_stale".to_owned());
            }
        }
    }
    if lane.is_none() && queued.is_some_and(|r| r.needs_gpu == Some(true)) {
        reasons.push("gpu_required".to_owned());
    }
    if let (Some(lane), Some(p)) = (&lane, preflight)
        && !p.gpus.contains(lane)
    {
        reasons.push(format!("gpu_not_offered:{}", gpu.unwrap_or_default()));
    }
    if let Some(lane) = &lane
        && state.gpus.needs_reset(worker, lane).is_some()
    {
        reasons.push(format!("gpu_needs_reset:{}", gpu.unwrap_or_default()));
    }
    if let Some(holder) = lane.as_deref().and_then(|g| queue.lanes().get(worker)?.get(g)?.holder.as_deref()) {
        reasons.push(format!("lane_held_by:{holder}"));
    }
    Ok(DispatchDecision {
        run: run.to_owned(),
        worker: worker.to_owned(),
        gpu: gpu.map(str::to_owned),
        accepted: reasons.is_empty(),
        reasons: cap_reasons(reasons),
        request: request.digest,
    })
}

/// The provenance gate's decision on one `artifact.submitted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdmissionDecision {
    pub slug: String,
    pub version: u64,
    pub admitted: bool,
    /// Empty iff admitted.
    pub reasons: Vec<String>,
    /// Event digest of the `artifact.submitted`.
    pub submission: Hash32,
}

impl LedgerDecision for AdmissionDecision {
    fn event_type(&self) -> EventType {
        if self.admitted { EventType::ArtifactAdmitted } else { EventType::ArtifactRejected }
    }
    fn subject(&self) -> String {
        format!("artifact/{}", self.slug)
    }
    fn ledger_event_data(&self) -> Value {
        json!({
            "slug": self.slug,
            "version": self.version,
            "submission": self.submission.to_hex(),
            "reasons": self.reasons,
        })
    }
}

/// Decides an `artifact.submitted` against `state`. Rejection reasons, all that apply:
///
/// - per referenced run, in the submission's order: `run_not_finished:<run>` (no
///   `run.finished`; unknown runs included), `run_without_evidence:<run>` (no
///   `evidence.captured`);
/// - `evidence_not_synced:<digest>`: the evidence gate is on (`control.evidence_sync`) and a
///   claim of the slug standing at submission cites an `evidence.captured` without its
///   `evidence.synced` (its files are not all in the evidence store), per digest, sorted;
/// - `content_duplicate_of:<slug>`: an admitted artifact (any slug, this one included)
///   already has this content digest;
/// - `slug_canonical:<slug>@<version>`: the slug has a canonical version (an admin must
///   `artifact.superseded` it first);
/// - `version_not_newer`: the version is not above every version of the slug ever admitted.
pub fn admission_decision(state: &Projections, submission: &Record) -> Result<AdmissionDecision, GateError> {
    expect_type(submission, EventType::ArtifactSubmitted)?;
    let data = &submission.event.data;
    let slug = field(submission, "slug", str_of(data, "slug"))?;
    let version = field(submission, "version", u64_of(data, "version"))?;
    let content = field(submission, "content_digest", str_of(data, "content_digest"))?;
    let mut reasons = Vec::new();
    for run in strs_of(data, "runs") {
        let facts = state.audit.run(run);
        if facts.is_none_or(|f| !f.finished) {
            reasons.push(format!("run_not_finished:{run}"));
        }
        if facts.is_none_or(|f| f.evidence == 0) {
            reasons.push(format!("run_without_evidence:{run}"));
        }
    }
    for digest in state.audit.unsynced_cited(slug) {
        reasons.push(format!("evidence_not_synced:{digest}"));
    }
    if let Some(first) = state.corpus.content_admitted(content) {
        reasons.push(format!("content_duplicate_of:{}", first.slug));
    }
    if let Some(canonical) = state.corpus.canonical(slug) {
        reasons.push(format!("slug_canonical:{slug}@{canonical}"));
    }
    if state.corpus.max_admitted(slug).is_some_and(|max| version <= max) {
        reasons.push("version_not_newer".to_owned());
    }
    Ok(AdmissionDecision {
        slug: slug.to_owned(),
        version,
        admitted: reasons.is_empty(),
        reasons: cap_reasons(reasons),
        submission: submission.digest,
    })
}

fn expect_type(record: &Record, expected: EventType) -> Result<(), GateError> {
    if record.event_type() == Some(expected) {
        Ok(())
    } else {
        Err(GateError::WrongType { seq: record.seq, expected, got: record.event.ty.clone() })
    }
}

fn field<T>(record: &Record, name: &'static str, value: Option<T>) -> Result<T, GateError> {
    value.ok_or(GateError::Field { seq: record.seq, field: name })
}

/// At most [`MAX_REASONS`]: past that, the first 63 and `more_reasons:<n>` for the rest.
fn cap_reasons(mut reasons: Vec<String>) -> Vec<String> {
    if reasons.len() > MAX_REASONS {
        let rest = reasons.len() - (MAX_REASONS - 1);
        reasons.truncate(MAX_REASONS - 1);
        reasons.push(format!("more_reasons:{rest}"));
    }
    reasons
}

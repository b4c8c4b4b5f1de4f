//! The claim/evidence audit.
//!
//! `apply` only gathers the inputs a verdict needs (cheap): run windows and GPUs, metric
//! series, Xids per GPU, kernel launches, evidence bundles and claims. Verdicts are
//! evaluated on demand ([`Audit::verdicts`], [`Audit::report`]), so evidence that arrives
//! after a claim changes its verdict, and the verdicts at any seq are those of the state
//! folded up to it. The rules are in [`verdict`].

pub mod bootstrap;
pub mod checks;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet};

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use serde::Serialize;
use serde_json::Value;

use crate::canon::{canonical, canonical_string};
use crate::data::{bool_of, event_time_ns, f64_of, i64_of, owned, producer_keyid, str_of, strs_of, u64_of};
use crate::pci;
use crate::xid_class::{XidClass, classify};

pub use checks::{Agg, Aggregate, Check, MetricPoint, Op};
pub use verdict::{
    ArtifactVerdict, AuditReport, ClaimVerdict, Registration, Verdict, VerdictCounts, WithdrawnClaim,
};

/// What the audit knows of a run. Times are the producers' event `time` (Unix ns), so an
/// Xid recorded late still falls in the window it happened in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunFacts {
    /// Normalized PCI ids: the GPU of the accepted dispatch and of `run.started`.
    pub gpus: BTreeSet<String>,
    /// The worker of the accepted dispatch and of `run.started`: the host its GPUs are on.
    /// Left out of the serialized state when empty, so the digest of a run without a GPU
    /// or worker is what it was before workers were kept.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub workers: BTreeSet<String>,
    /// Earliest `run.started`.
    pub started_ns: Option<i64>,
    /// Latest `run.finished`.
    pub finished_ns: Option<i64>,
    pub finished: bool,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub quiesced: bool,
    /// `evidence.captured` events for this run.
    pub evidence: u64,
}

impl RunFacts {
    /// Finished with exit code 0.
    pub fn succeeded(&self) -> bool {
        self.finished && self.exit_code == Some(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XidFact {
    /// The host that reported it; `None` for an Xid recorded without one, which may have
    /// happened on that PCI id on any host (left out of the serialized state when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub seq: u64,
    pub time_ns: i64,
    pub code: u32,
    pub class: XidClass,
}

/// Whether an Xid reported by `xid_host` on a run's PCI id was on the run's GPU, the run
/// being on `run_workers`: the Xid names the same host, or it names none (recorded before
/// hosts were, so it may have been on any host with that PCI id). A run whose worker is
/// unknown matches every host, for the same reason.
pub fn xid_on_run_host(xid_host: Option<&str>, run_workers: &BTreeSet<String>) -> bool {
    match xid_host {
        None => true,
        Some(host) => run_workers.is_empty() || run_workers.contains(host),
    }
}

/// An Xid the runner attached to one launch of a campaign run (it happened on the launch's GPU
/// inside the launch's window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchXid {
    /// The launch's ordinal in its run.
    pub launch: u64,
    pub seq: u64,
    pub code: u32,
    pub class: XidClass,
}

/// Attached Xids kept per run, at most (a run whose launches keep faulting the GPU needs no
/// more to be tainted).
pub const LAUNCH_XIDS_PER_RUN_MAX: usize = 1024;

/// An `evidence.captured` event, by its event digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceFact {
    pub run: String,
    pub seq: u64,
    /// keyid of the signature by the `source` key.
    pub producer: Option<String>,
    pub bundle_digest: Option<String>,
    /// The seq of the `evidence.synced` that found every file of it in the evidence store.
    /// Left out of the serialized state when absent, so ledgers without any keep their audit
    /// digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synced: Option<u64>,
}

/// Kernel launches of one (kernel, variant, backend).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LaunchCell {
    /// The variant, keys sorted.
    pub variant: Value,
    pub passed: u64,
    pub failed: u64,
    pub faulted: u64,
    pub errors: BTreeSet<String>,
    pub runs: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withdrawal {
    pub seq: u64,
    pub reason: Option<String>,
}

/// The latest `claim.asserted` for (artifact, claim).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub statement: String,
    pub location: Option<String>,
    /// `None` if the check did not parse (verdict `unsupported`, reason `check_invalid`).
    pub check: Option<Check>,
    /// Cited event digests.
    pub evidence: Vec<String>,
    pub asserted_seq: u64,
    pub withdrawn: Option<Withdrawal>,
    /// Asserted before any data it rests on existed ([`Audit::registered_before_data`]).
    /// Left out of the serialized state when false, so the digest of a ledger whose claims
    /// all came after their runs is what it was before registration was kept.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub preregistered: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Audit {
    runs: BTreeMap<String, RunFacts>,
    /// run → metric name → values.
    metrics: BTreeMap<String, BTreeMap<String, Vec<MetricPoint>>>,
    /// normalized PCI id → Xids (of every host; [`xid_on_run_host`] picks a run's).
    xids: BTreeMap<String, Vec<XidFact>>,
    /// kernel → canonical variant JSON → backend → launches.
    kernels: BTreeMap<String, BTreeMap<String, BTreeMap<String, LaunchCell>>>,
    /// campaign run → the Xids attached to its launches (`gpu.xid` naming `run` and
    /// `launch`). Left out of the serialized state when empty, so ledgers without any keep
    /// their audit digest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    launch_xids: BTreeMap<String, Vec<LaunchXid>>,
    /// event digest (hex) → evidence bundle.
    evidence: BTreeMap<String, EvidenceFact>,
    /// artifact slug → claim id → claim.
    claims: BTreeMap<String, BTreeMap<String, Claim>>,
    /// The evidence gate is on (the latest `control.evidence_sync` said `required: true`):
    /// cited evidence must have its files in the evidence store. Left out of the serialized
    /// state when off, so ledgers that never turned it on keep their audit digest.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    evidence_sync_required: bool,
    /// Metric points are not kept ([`Audit::for_gates`]). Not part of the state's JSON: an
    /// audit for gates is never digested or reported.
    #[serde(skip)]
    for_gates: bool,
}

impl Audit {
    pub fn new() -> Audit {
        Audit::default()
    }

    /// An audit that keeps what gates read (runs, evidence, claims) but no metric points:
    /// only claim verdicts read those, and they are one per metric event, so the sequencer's
    /// state would otherwise grow with every metric the ledger holds. Its [`Audit::series`]
    /// are empty; its verdicts, report and digest are not the ledger's.
    pub fn for_gates() -> Audit {
        Audit { for_gates: true, ..Audit::default() }
    }

    pub fn apply(&mut self, record: &Record) {
        let data = &record.event.data;
        let Some(ty) = record.event_type() else { return };
        match ty {
            EventType::MetricRecorded if self.for_gates => {}
            EventType::MetricRecorded => {
                let (Some(run), Some(name), Some(step), Some(value)) =
                    (str_of(data, "run"), str_of(data, "name"), u64_of(data, "step"), f64_of(data, "value"))
                else {
                    return;
                };
                let point = MetricPoint { step, seq: record.seq, value };
                // Look up by &str first: the common case (a known series) allocates nothing.
                if !self.metrics.contains_key(run) {
                    self.metrics.insert(run.to_owned(), BTreeMap::new());
                }
                let Some(by_name) = self.metrics.get_mut(run) else { return };
                match by_name.get_mut(name) {
                    Some(series) => series.push(point),
                    None => {
                        by_name.insert(name.to_owned(), vec![point]);
                    }
                }
            }
            EventType::DispatchDecided => {
                if bool_of(data, "accepted") == Some(true)
                    && let Some(gpu) = str_of(data, "gpu").and_then(pci::canonical)
                    && let Some(run) = self.run_mut(data)
                {
                    run.gpus.insert(gpu);
                    if let Some(worker) = str_of(data, "worker") {
                        run.workers.insert(worker.to_owned());
                    }
                }
            }
            EventType::RunStarted => {
                let at = event_time_ns(record);
                let Some(run) = self.run_mut(data) else { return };
                run.started_ns = Some(run.started_ns.map_or(at, |s| s.min(at)));
                if let Some(gpu) = str_of(data, "gpu").and_then(pci::canonical) {
                    run.gpus.insert(gpu);
                    if let Some(worker) = str_of(data, "worker") {
                        run.workers.insert(worker.to_owned());
                    }
                }
            }
            EventType::RunFinished => {
                let at = event_time_ns(record);
                let Some(run) = self.run_mut(data) else { return };
                run.finished = true;
                run.finished_ns = Some(run.finished_ns.map_or(at, |f| f.max(at)));
                run.exit_code = i64_of(data, "exit_code");
                run.signal = i64_of(data, "signal");
            }
            EventType::RunQuiesced => {
                if let Some(run) = self.run_mut(data) {
                    run.quiesced = true;
                }
            }
            EventType::EvidenceCaptured => {
                let Some(run_id) = str_of(data, "run") else { return };
                if let Some(run) = self.run_mut(data) {
                    run.evidence += 1;
                }
                self.evidence.insert(
                    record.digest.to_hex(),
                    EvidenceFact {
                        run: run_id.to_owned(),
                        seq: record.seq,
                        producer: owned(producer_keyid(record)),
                        bundle_digest: owned(str_of(data, "bundle_digest")),
                        synced: None,
                    },
                );
            }
            EventType::EvidenceSynced => {
                // The first fact counts; the ledger records one per evidence.captured.
                if let Some(e) = str_of(data, "evidence").and_then(|d| self.evidence.get_mut(d))
                    && e.synced.is_none()
                {
                    e.synced = Some(record.seq);
                }
            }
            EventType::ControlEvidenceSync => {
                self.evidence_sync_required = bool_of(data, "required") == Some(true);
            }
            EventType::KernelLaunchCompleted | EventType::KernelLaunchFaulted => self.apply_launch(record),
            EventType::GpuXid => {
                let Some(gpu) = str_of(data, "pci").and_then(pci::canonical) else { return };
                let Some(code) = u64_of(data, "code").and_then(|c| u32::try_from(c).ok()) else { return };
                let class = classify(code, str_of(data, "severity").unwrap_or("unknown"));
                let host = owned(str_of(data, "host"));
                let fact = XidFact { host, seq: record.seq, time_ns: event_time_ns(record), code, class };
                self.xids.entry(gpu).or_default().push(fact);
                if let (Some(run), Some(launch)) = (str_of(data, "run"), u64_of(data, "launch")) {
                    let attached = self.launch_xids.entry(run.to_owned()).or_default();
                    if attached.len() < LAUNCH_XIDS_PER_RUN_MAX {
                        attached.push(LaunchXid { launch, seq: record.seq, code, class });
                    }
                }
            }
            EventType::ClaimAsserted => {
                let (Some(slug), Some(id)) = (str_of(data, "artifact"), str_of(data, "claim")) else {
                    return;
                };
                let check = data.get("check").and_then(Check::parse);
                // A restatement with the same check (to cite evidence, fix the wording) keeps
                // the registration of the check's first assertion: what was registered is the
                // check. A new check is registered anew.
                let earlier = self.claims.get(slug).and_then(|c| c.get(id));
                let preregistered = match earlier {
                    Some(e) if check.is_some() && e.check == check => e.preregistered,
                    _ => check.as_ref().is_some_and(|c| self.registered_before_data(c)),
                };
                let claim = Claim {
                    statement: str_of(data, "statement").unwrap_or_default().to_owned(),
                    location: owned(str_of(data, "location")),
                    check,
                    evidence: strs_of(data, "evidence").map(str::to_owned).collect(),
                    asserted_seq: record.seq,
                    withdrawn: None,
                    preregistered,
                };
                self.claims.entry(slug.to_owned()).or_default().insert(id.to_owned(), claim);
            }
            EventType::ClaimWithdrawn => {
                let (Some(slug), Some(id)) = (str_of(data, "artifact"), str_of(data, "claim")) else {
                    return;
                };
                if let Some(claim) = self.claims.get_mut(slug).and_then(|c| c.get_mut(id)) {
                    claim.withdrawn =
                        Some(Withdrawal { seq: record.seq, reason: owned(str_of(data, "reason")) });
                }
            }
            _ => {}
        }
    }

    /// Whether a check asserted now comes before the data it rests on: none of the runs it
    /// names has a `run.started` yet; for a kernel check (which names no run), no launch
    /// matching it has been recorded yet. Judged by ledger order (seq), not by producers'
    /// clocks, so an author cannot backdate a claim.
    pub fn registered_before_data(&self, check: &Check) -> bool {
        match check.named_runs() {
            Some(runs) => runs.iter().all(|r| self.runs.get(*r).is_none_or(|f| f.started_ns.is_none())),
            None => {
                let Check::Kernel { kernel, variant, backend } = check else { return false };
                self.matching_cells(kernel, variant.as_ref(), backend.as_deref()).next().is_none()
            }
        }
    }

    /// The launch cells a kernel check matches, with their backend: kernel equal, backend
    /// equal if given, variant keys equal if given; in (variant, backend) order.
    pub fn matching_cells<'a>(
        &'a self,
        kernel: &str,
        variant: Option<&'a Value>,
        backend: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a LaunchCell)> + 'a {
        let cells = self.kernels.get(kernel).into_iter().flat_map(|by_variant| by_variant.values());
        cells.flat_map(|by_backend| by_backend.iter()).filter_map(move |(b, cell)| {
            (backend.is_none_or(|want| want == b) && checks::variant_matches(variant, &cell.variant))
                .then_some((b.as_str(), cell))
        })
    }

    fn run_mut(&mut self, data: &Value) -> Option<&mut RunFacts> {
        let id = str_of(data, "run")?;
        if !self.runs.contains_key(id) {
            self.runs.insert(id.to_owned(), RunFacts::default());
        }
        self.runs.get_mut(id)
    }

    fn apply_launch(&mut self, record: &Record) {
        let data = &record.event.data;
        let (Some(run), Some(kernel), Some(variant), Some(backend)) =
            (str_of(data, "run"), str_of(data, "kernel"), data.get("variant"), str_of(data, "backend"))
        else {
            return;
        };
        let cell = self
            .kernels
            .entry(kernel.to_owned())
            .or_default()
            .entry(canonical_string(variant))
            .or_default()
            .entry(backend.to_owned())
            .or_insert_with(|| LaunchCell { variant: canonical(variant), ..LaunchCell::default() });
        if record.event_type() == Some(EventType::KernelLaunchFaulted) {
            cell.faulted += 1;
            if let Some(e) = str_of(data, "error") {
                cell.errors.insert(e.to_owned());
            }
        } else if bool_of(data, "passed") == Some(true) {
            cell.passed += 1;
        } else {
            cell.failed += 1;
        }
        if !cell.runs.contains(run) {
            cell.runs.insert(run.to_owned());
        }
    }

    pub fn run(&self, id: &str) -> Option<&RunFacts> {
        self.runs.get(id)
    }

    pub fn runs(&self) -> &BTreeMap<String, RunFacts> {
        &self.runs
    }

    /// The values of metric `name` of `run`, in seq order.
    pub fn series(&self, run: &str, name: &str) -> &[MetricPoint] {
        self.metrics.get(run).and_then(|m| m.get(name)).map_or(&[], Vec::as_slice)
    }

    /// The Xids attached to launches of campaign run `run`, in seq order.
    pub fn launch_xids(&self, run: &str) -> &[LaunchXid] {
        self.launch_xids.get(run).map_or(&[], Vec::as_slice)
    }

    /// Xids seen on a PCI id (either form) on any host, in seq order.
    pub fn xids_on(&self, gpu: &str) -> &[XidFact] {
        pci::canonical(gpu).and_then(|g| self.xids.get(&g)).map_or(&[], Vec::as_slice)
    }

    pub fn evidence(&self, digest: &str) -> Option<&EvidenceFact> {
        self.evidence.get(digest)
    }

    /// Whether the evidence gate is on: cited evidence must have its files in the evidence
    /// store (`control.evidence_sync`).
    pub fn evidence_sync_required(&self) -> bool {
        self.evidence_sync_required
    }

    /// Whether the evidence gate holds `digest` against its claim: off, or the cited
    /// `evidence.captured` has its `evidence.synced`. A digest that is no evidence of the log
    /// is another finding (`evidence_missing:<digest>`), so it is not this one's.
    pub fn evidence_unsynced(&self, digest: &str) -> bool {
        self.evidence_sync_required && self.evidence.get(digest).is_some_and(|e| e.synced.is_none())
    }

    /// The evidence digests the standing (not withdrawn) claims of `slug` cite that the
    /// evidence gate finds without their files stored, sorted, each once.
    pub fn unsynced_cited(&self, slug: &str) -> BTreeSet<&str> {
        let claims = self.claims.get(slug).into_iter().flat_map(|c| c.values());
        claims
            .filter(|c| c.withdrawn.is_none())
            .flat_map(|c| c.evidence.iter())
            .map(String::as_str)
            .filter(|d| self.evidence_unsynced(d))
            .collect()
    }

    /// artifact slug → claim id → claim (withdrawn ones included, marked).
    pub fn claims(&self) -> &BTreeMap<String, BTreeMap<String, Claim>> {
        &self.claims
    }

    /// Digest of the audit's inputs. Verdicts are a function of these and the key registry;
    /// see [`crate::Projections::digests`] for the digest of the verdicts themselves.
    pub fn digest(&self) -> Hash32 {
        crate::digest::state_digest(self)
    }
}

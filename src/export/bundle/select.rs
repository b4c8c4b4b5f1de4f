//! Which records an artifact's verdict rests on: [`Needs`] reads them off the state at the
//! checkpoint, [`select`] scans the log for them, and [`close_over_keys`] adds the key
//! events their signers depend on. Choosing is pure; only the scan reads.

use std::collections::{BTreeMap, BTreeSet};

use assay_events::EventType;
use assay_events::keys::VerifierKey;
use assay_events::record::Record;
use assay_projections::Projections;
use assay_projections::audit::{Check, ClaimVerdict, checks::variant_matches, xid_on_run_host};
use assay_projections::canon::canonical;
use assay_projections::pci;
use serde_json::Value;

use crate::export::source::{LedgerSource, parse, scan};
use crate::export::{ExportError, PAGE_RECORDS};
use crate::store::StoredRecord;

/// What the verdict of one artifact needs, from the state at the checkpoint.
#[derive(Default)]
pub(super) struct Needs {
    subject: String,
    runs: BTreeSet<String>,
    /// (run, metric) series aggregated by a check.
    series: BTreeSet<(String, String)>,
    /// (kernel, variant, backend) of kernel checks.
    kernels: Vec<(String, Option<Value>, Option<String>)>,
    /// Evidence digests cited by claims.
    cited: BTreeSet<String>,
    /// Per normalized PCI id: the windows of the runs on it, with the runs' workers (an
    /// Xid counts for a run on its own host, or on any host when it names none).
    windows: BTreeMap<String, Vec<(i64, i64, BTreeSet<String>)>>,
}

impl Needs {
    pub(super) fn of(p: &Projections, slug: &str, claims: &[ClaimVerdict]) -> Needs {
        let mut n = Needs { subject: format!("artifact/{slug}"), ..Needs::default() };
        for c in claims {
            n.runs.extend(c.runs.iter().cloned());
            n.cited.extend(c.evidence.iter().cloned());
            let check =
                p.audit.claims().get(slug).and_then(|m| m.get(&c.claim)).and_then(|c| c.check.as_ref());
            match check {
                Some(Check::Metric { run, metric, .. }) => {
                    n.series.insert((run.clone(), metric.clone()));
                }
                Some(Check::Compare { metric, run, baseline_run, .. }) => {
                    n.series.insert((run.clone(), metric.clone()));
                    n.series.insert((baseline_run.clone(), metric.clone()));
                }
                Some(Check::Kernel { kernel, variant, backend }) => {
                    n.kernels.push((kernel.clone(), variant.clone(), backend.clone()));
                }
                Some(
                    c @ (Check::Group { metric, .. }
                    | Check::CompareGroups { metric, .. }
                    | Check::Replicated { metric, .. }),
                ) => {
                    for run in c.named_runs().unwrap_or_default() {
                        n.series.insert((run.to_owned(), metric.clone()));
                    }
                }
                Some(Check::Completed { .. }) | None => {}
            }
        }
        for run in &n.runs {
            let Some(facts) = p.audit.run(run) else { continue };
            let Some(start) = facts.started_ns else { continue };
            let end = if facts.finished { facts.finished_ns.unwrap_or(i64::MAX) } else { i64::MAX };
            for gpu in &facts.gpus {
                n.windows.entry(gpu.clone()).or_default().push((start, end, facts.workers.clone()));
            }
        }
        n
    }

    /// Whether the stored record may be one the verdict rests on, or a key event: the cheap
    /// test on its columns that spares parsing the rest.
    fn may_want(&self, stored: &StoredRecord) -> bool {
        stored.seq == 0
            || stored.ty.starts_with("key.")
            || stored.subject.as_deref() == Some(self.subject.as_str())
            || matches!(
                stored.event_type(),
                Some(
                    EventType::RunStarted
                        | EventType::RunFinished
                        | EventType::RunQuiesced
                        | EventType::EvidenceCaptured
                        | EventType::EvidenceSynced
                        | EventType::ControlEvidenceSync
                        | EventType::DispatchDecided
                        | EventType::MetricRecorded
                        | EventType::KernelLaunchCompleted
                        | EventType::KernelLaunchFaulted
                        | EventType::GpuXid
                )
            )
    }

    /// Whether the verdict rests on `r` (key events are chosen afterwards).
    fn wants(&self, r: &Record) -> bool {
        let data = &r.event.data;
        let s = |k: &str| data.get(k).and_then(Value::as_str);
        let run_needed = || s("run").is_some_and(|run| self.runs.contains(run));
        match r.event_type() {
            Some(EventType::LedgerInitialized) => true,
            _ if r.event.subject.as_deref() == Some(self.subject.as_str()) => true,
            Some(EventType::RunStarted | EventType::RunFinished | EventType::RunQuiesced) => run_needed(),
            Some(EventType::EvidenceCaptured) => run_needed() || self.cited.contains(&r.digest.to_hex()),
            // The evidence gate: whether it is on, and which cited evidence has its files stored.
            Some(EventType::ControlEvidenceSync) => true,
            Some(EventType::EvidenceSynced) => s("evidence").is_some_and(|d| self.cited.contains(d)),
            Some(EventType::DispatchDecided) => {
                run_needed() && data.get("accepted").and_then(Value::as_bool) == Some(true)
            }
            Some(EventType::MetricRecorded) => match (s("run"), s("name")) {
                (Some(run), Some(name)) => self.series.contains(&(run.to_owned(), name.to_owned())),
                _ => false,
            },
            Some(EventType::KernelLaunchCompleted | EventType::KernelLaunchFaulted) => {
                let variant = data.get("variant").map(canonical).unwrap_or(Value::Null);
                self.kernels.iter().any(|(kernel, v, backend)| {
                    s("kernel") == Some(kernel.as_str())
                        && backend.as_deref().is_none_or(|b| s("backend") == Some(b))
                        && variant_matches(v.as_ref(), &variant)
                })
            }
            Some(EventType::GpuXid) => {
                let Some(gpu) = s("pci").and_then(pci::canonical) else { return false };
                let at = r.event.time_ns().unwrap_or(r.received_at_ns);
                let host = s("host");
                self.windows.get(&gpu).is_some_and(|w| {
                    w.iter().any(|(a, b, workers)| *a <= at && at <= *b && xid_on_run_host(host, workers))
                })
            }
            _ => false,
        }
    }
}

/// The records of `[0, size)` the verdict rests on, with the key events their signers depend
/// on, by seq.
pub(super) async fn select<S: LedgerSource>(
    src: &S,
    size: u64,
    needs: &Needs,
) -> Result<BTreeMap<u64, Record>, ExportError> {
    let mut selected: BTreeMap<u64, Record> = BTreeMap::new();
    let mut key_events = Vec::new();
    let mut pages = scan(src, 0, size, PAGE_RECORDS);
    while let Some(page) = pages.recv().await {
        for stored in page? {
            if !needs.may_want(&stored) {
                continue;
            }
            let r = parse(&stored)?;
            if r.event.ty.starts_with("key.") {
                key_events.push(r);
            } else if needs.wants(&r) {
                selected.insert(r.seq, r);
            }
        }
    }
    close_over_keys(&mut selected, key_events);
    Ok(selected)
}

/// The keyid of the signature by the record's source key.
fn signer(r: &Record) -> Option<&str> {
    r.source_signature().map(|s| s.keyid.as_str())
}

/// Adds the key events the selected records' signers depend on, closed over the admins that
/// signed those key events.
fn close_over_keys(selected: &mut BTreeMap<u64, Record>, key_events: Vec<Record>) {
    let mut needed: BTreeSet<String> = selected.values().filter_map(signer).map(str::to_owned).collect();
    let mut pending = key_events;
    // Each round takes at least one key event or ends: at most one round per key event.
    loop {
        let before = pending.len();
        let (take, rest): (Vec<Record>, Vec<Record>) = pending.into_iter().partition(|r| {
            r.event.data["vkey"]
                .as_str()
                .and_then(|t| VerifierKey::parse(t).ok())
                .is_some_and(|k| needed.contains(&k.keyid()))
        });
        for r in take {
            if let Some(k) = signer(&r) {
                needed.insert(k.to_owned());
            }
            selected.insert(r.seq, r);
        }
        pending = rest;
        if pending.len() == before {
            return;
        }
    }
}

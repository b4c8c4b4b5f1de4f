//! `assay export bundle --artifact SLUG --out FILE.intoto.jsonl`: an offline audit bundle.
//!
//! FILE holds one DSSE envelope per line: first every event the artifact's verdict rests on,
//! verbatim as the ledger rebuilds it from the record, in seq order; then one in-toto
//! statement per claim ([`CLAIM_PREDICATE`], subject = the artifact's content digest) with the
//! ledger's verdict on it; last a SLSA Verification Summary for the artifact's verdict whose
//! `inputAttestations` list the SHA-256 of every line before it. The statements are signed by
//! the ledger key. `FILE.proof` holds an inclusion proof of every event in the tree of the
//! checkpoint the verdict is taken at (`c2sp.org/tlog-proof@v1`, the leaf in `extra`).
//!
//! What the verdict rests on (the audit rules of `assay_projections::audit`): genesis; every
//! event of `artifact/<slug>` (submissions, decisions, supersessions, claims, withdrawals); for
//! each run a claim rests on, its `run.started`, `run.finished`, `run.quiesced`,
//! `evidence.captured` and accepted `dispatch.decided`, and the Xids on its GPUs inside its
//! window; the metric values a metric or compare check aggregates; every launch matching a
//! kernel check; the evidence each claim cites; and the key registrations and revocations of
//! every signer, closed over the admins that signed them. The builder replays the selection and
//! refuses to write a bundle whose events do not reproduce the verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assay_events::b64;
use assay_events::checkpoint::Checkpoint;
use assay_events::keys::{SignerKey, VerifierKey};
use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use assay_projections::Projections;
use assay_projections::audit::{Check, ClaimVerdict, checks::variant_matches, xid_on_run_host};
use assay_projections::canon::canonical;
use assay_projections::pci;
use serde_json::{Value, json};

use super::intoto::{
    AUDIT_POLICY, CLAIM_PREDICATE, ResourceDescriptor, Statement, VSA_PREDICATE, input_attestation, root_b64,
};
use super::source::{LedgerSource, parse, replay, scan};
use super::tlog_proof::TlogProof;
use super::{ExportError, PAGE_RECORDS};

#[derive(Debug, Clone)]
pub struct BundleSummary {
    pub path: PathBuf,
    pub proof_path: PathBuf,
    /// Event envelopes in the bundle.
    pub events: usize,
    /// Claim statements.
    pub claims: usize,
    /// The checkpoint size the verdict is taken at.
    pub size: u64,
    pub passes: bool,
}

/// The sidecar of `file`: `<file>.proof`.
pub fn proof_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".proof");
    PathBuf::from(s)
}

/// What the verdict of one artifact needs, from the state at the checkpoint.
#[derive(Default)]
struct Needs {
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
    fn of(p: &Projections, slug: &str, claims: &[&ClaimVerdict]) -> Needs {
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

/// The keyid of the signature by the record's source key.
fn signer(r: &Record) -> Option<&str> {
    r.source_signature().map(|s| s.keyid.as_str())
}

/// Adds the key events the selected records' signers depend on, closed over the admins that
/// signed those key events.
fn close_over_keys(selected: &mut BTreeMap<u64, Record>, key_events: Vec<Record>) {
    let mut needed: BTreeSet<String> = selected.values().filter_map(signer).map(str::to_owned).collect();
    let mut pending = key_events;
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

/// Builds the bundle of `slug` at the latest checkpoint, signing its statements with
/// `ledger_key` (which must be the key genesis names). `now` is `timeVerified` (RFC 3339).
pub async fn export_bundle<S: LedgerSource>(
    src: &S,
    slug: &str,
    ledger_key: &SignerKey,
    out: &Path,
    now: &str,
) -> Result<BundleSummary, ExportError> {
    export_bundle_with(src, slug, ledger_key, out, now, |_| None).await
}

/// [`export_bundle`], given a way to the projections folded from exactly the records
/// `[0, size)` of the checkpoint it builds at, when the caller keeps them (a server's live
/// state): `folded(size)` returns them, or `None` to have the log replayed. Either way the
/// events selected must reproduce the verdict on their own, or nothing is written.
pub async fn export_bundle_with<S: LedgerSource>(
    src: &S,
    slug: &str,
    ledger_key: &SignerKey,
    out: &Path,
    now: &str,
    folded: impl FnOnce(u64) -> Option<Projections>,
) -> Result<BundleSummary, ExportError> {
    let cp_row = src.latest_checkpoint().await?;
    let size = cp_row.size;
    let checkpoint = Checkpoint::open(&cp_row.note, &ledger_key.verifier()).map_err(|e| {
        ExportError::Invalid(format!(
            "the latest checkpoint does not verify under the ledger key {} ({e}); pass this ledger's signing key",
            ledger_key.keyid()
        ))
    })?;
    let state = match folded(size) {
        Some(state) => {
            assert_eq!(
                state.seq().map(|s| s + 1),
                Some(size),
                "the caller's projections are at the checkpoint"
            );
            state
        }
        None => replay(src, size).await?,
    };
    if state.keys.ledger_keyid() != Some(ledger_key.keyid().as_str()) {
        return Err(ExportError::Invalid(format!("{} is not this ledger's key", ledger_key.keyid())));
    }
    let report = state.audit_report();
    let artifact = report.artifact(slug).ok_or_else(|| {
        ExportError::Invalid(format!(
            "no artifact {slug:?} with a canonical version or claims at checkpoint size {size}"
        ))
    })?;
    let claims: Vec<&ClaimVerdict> = report.claims_of(slug).collect();
    let needs = Needs::of(&state, slug, &claims);

    // Second pass: the records the verdict rests on, and every key event.
    let mut selected: BTreeMap<u64, Record> = BTreeMap::new();
    let mut key_events = Vec::new();
    let mut pages = scan(src, 0, size, PAGE_RECORDS);
    while let Some(page) = pages.recv().await {
        for stored in page? {
            let interesting = stored.seq == 0
                || stored.ty.starts_with("key.")
                || stored.subject.as_deref() == Some(needs.subject.as_str())
                || matches!(
                    stored.event_type(),
                    Some(
                        EventType::RunStarted
                            | EventType::RunFinished
                            | EventType::RunQuiesced
                            | EventType::EvidenceCaptured
                            | EventType::DispatchDecided
                            | EventType::MetricRecorded
                            | EventType::KernelLaunchCompleted
                            | EventType::KernelLaunchFaulted
                            | EventType::GpuXid
                    )
                );
            if !interesting {
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

    // The selection alone must reproduce the verdict.
    let again = Projections::replay(selected.values()).audit_report();
    let same = again.artifact(slug) == Some(artifact) && again.claims_of(slug).collect::<Vec<_>>() == claims;
    if !same {
        return Err(ExportError::Invalid(format!(
            "the events selected for {slug:?} do not reproduce its verdict; refusing to write a misleading bundle"
        )));
    }

    let subject = artifact_subject(&state, slug)?;
    let mut lines: Vec<(String, Vec<u8>)> = Vec::new();
    for r in selected.values() {
        lines.push((format!("seq/{} {}", r.seq, r.event.ty), r.envelope().to_json()));
    }
    for c in &claims {
        let statement = claim_statement(&selected, slug, c, &subject, size);
        lines.push((format!("claim/{}", c.claim), statement.sign(ledger_key).to_json()));
    }
    let inputs: Vec<ResourceDescriptor> =
        lines.iter().map(|(name, line)| input_attestation(name.clone(), line)).collect();
    let vsa = Statement::new(
        vec![subject.clone()],
        VSA_PREDICATE,
        json!({
            "verifier": {"id": format!("https://assay.dev/ledger/{}", ledger_key.keyid()), "version": {"assay": env!("CARGO_PKG_VERSION")}},
            "timeVerified": now,
            "resourceUri": format!("assay:{}/artifact/{slug}", checkpoint.origin),
            "policy": {"uri": AUDIT_POLICY},
            "inputAttestations": inputs,
            "verificationResult": if artifact.passes { super::bundle_check::PASSED } else { super::bundle_check::FAILED },
            "verifiedLevels": if artifact.passes { vec!["ASSAY_CLAIMS_SUPPORTED"] } else { Vec::new() },
            "slsaVersion": "1.0",
            "assay": {
                "checkpoint": {"origin": checkpoint.origin, "size": size, "root": root_b64(&checkpoint.root)},
                "artifact": artifact,
            },
        }),
    );
    lines.push(("summary".to_owned(), vsa.sign(ledger_key).to_json()));

    let mut text = Vec::new();
    for (_, line) in &lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    let mut proofs = String::new();
    for r in selected.values() {
        let p = src.inclusion(r.seq, size).await?;
        let hashes = p
            .proof
            .iter()
            .map(|h| b64::decode_any(h).ok().and_then(|b| Hash32::from_slice(&b).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ExportError::Ledger(format!("a malformed inclusion proof for seq {}", r.seq)))?;
        proofs.push_str(
            &TlogProof { extra: Some(r.leaf().to_vec()), index: r.seq, hashes, checkpoint: p.checkpoint }
                .to_text(),
        );
    }
    let proof_file = proof_path(out);
    std::fs::write(out, &text).map_err(|e| ExportError::io(out, e))?;
    std::fs::write(&proof_file, proofs).map_err(|e| ExportError::io(&proof_file, e))?;
    Ok(BundleSummary {
        path: out.to_owned(),
        proof_path: proof_file,
        events: selected.len(),
        claims: claims.len(),
        size,
        passes: artifact.passes,
    })
}

/// The artifact as an in-toto subject: its canonical version (else its latest) and that
/// version's content digest (blake3).
pub fn artifact_subject(state: &Projections, slug: &str) -> Result<ResourceDescriptor, ExportError> {
    let a = state
        .corpus
        .artifact(slug)
        .ok_or_else(|| ExportError::Invalid(format!("artifact {slug:?} was never submitted")))?;
    let (version, v) = a
        .canonical
        .and_then(|c| a.versions.get_key_value(&c))
        .or_else(|| a.versions.iter().next_back())
        .ok_or_else(|| ExportError::Invalid(format!("artifact {slug:?} has no version")))?;
    let digest = v
        .content_digest
        .clone()
        .ok_or_else(|| ExportError::Invalid(format!("{slug}@{version} has no content digest")))?;
    Ok(ResourceDescriptor {
        name: Some(format!("{slug}@{version}")),
        uri: None,
        digest: BTreeMap::from([("blake3".to_owned(), digest)]),
        annotations: None,
    })
}

/// The claim with its verdict, as an in-toto statement about the artifact.
fn claim_statement(
    selected: &BTreeMap<u64, Record>,
    slug: &str,
    c: &ClaimVerdict,
    subject: &ResourceDescriptor,
    size: u64,
) -> Statement {
    let asserted = selected.get(&c.asserted_seq);
    let data = asserted.map(|r| &r.event.data);
    let field = |k: &str| data.and_then(|d| d.get(k)).cloned().unwrap_or(Value::Null);
    Statement::new(
        vec![subject.clone()],
        CLAIM_PREDICATE,
        claim_predicate(
            slug,
            c,
            field("statement"),
            field("location"),
            field("check"),
            asserted.map(|r| r.digest.to_hex()),
            size,
        ),
    )
}

/// The predicate of a claim statement; `verify-bundle` rebuilds it from the recomputed verdict
/// and compares.
pub fn claim_predicate(
    slug: &str,
    c: &ClaimVerdict,
    statement: Value,
    location: Value,
    check: Value,
    asserted_digest: Option<String>,
    size: u64,
) -> Value {
    json!({
        "artifact": slug,
        "claim": c.claim,
        "statement": statement,
        "location": location,
        "check": check,
        "evidence": c.evidence,
        "asserted": {"seq": c.asserted_seq, "digest": asserted_digest},
        "checkpointSize": size,
        "kind": c.kind,
        "verdict": c.verdict.as_str(),
        "reasons": c.reasons,
        "context": c.context,
        "runs": c.runs,
    })
}

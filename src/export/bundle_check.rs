//! `assay verify-bundle FILE --ledger-key LEDGER.vkey`: checks an audit bundle offline.
//!
//! 1. Every proof in `FILE.proof`: its checkpoint signed by the ledger key (one checkpoint for
//!    all), its leaf (`extra`) at its index, its inclusion in the checkpoint's tree.
//! 2. Every event envelope: a proof whose leaf commits to its payload and signatures (and every
//!    proof used by exactly one envelope); its schema and subject; in seq order, its signature
//!    by a key that held a role allowed to emit its type, keys and roles replayed from the
//!    bundle's own key events, genesis bound to the ledger key.
//! 3. Every statement signed by the ledger key; exactly one verification summary, whose
//!    `inputAttestations` are exactly the SHA-256 digests of the other lines.
//! 4. The verdict recomputed from the bundle's events alone with the audit rules, equal to the
//!    summary's and to every claim statement's (and every claim judged has its statement).

use std::collections::BTreeMap;
use std::path::Path;

use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use assay_events::dsse::{
    DecodedEnvelope, PAYLOAD_TYPE, VERIFY_BATCH_MAX, signatures_canonical_json, verify_many,
};
use assay_events::keys::VerifierKey;
use assay_events::merkle::{leaf_hash, verify_inclusion};
use assay_events::record::{LeafFields, Record};
use assay_projections::Projections;
use assay_projections::authorize::RecordAuthorizer;
use serde::Serialize;
use serde_json::Value;

use super::bundle::{artifact_subject, claim_predicate, subject_matches};
use super::evidence_check::{EvidenceReport, check_evidence_tar};
use super::evidence_tar::{EvidenceFile, files_of};
use super::intoto::{
    CLAIM_PREDICATE, STATEMENT_TYPE, Statement, VSA_PREDICATE, parse_envelope, root_b64, sha256_hex,
};
use super::tlog_proof::parse_many;
use crate::verify::check_content;

pub use super::bundle::{FAILED, PASSED};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BundleReport {
    pub ok: bool,
    pub artifact: Option<String>,
    /// `PASSED` or `FAILED`, once recomputed.
    pub verdict: Option<String>,
    pub events: u64,
    pub statements: u64,
    pub checkpoint_size: Option<u64>,
    /// 1-based line of FILE the failure is about (None: the proof file, or the bundle as a whole).
    pub first_bad_line: Option<u64>,
    pub first_bad_seq: Option<u64>,
    pub reason: Option<String>,
    /// The evidence tar checked against the bundle's `evidence.captured` events, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceReport>,
}

#[derive(Debug, Default)]
struct Bad {
    line: Option<u64>,
    seq: Option<u64>,
    reason: String,
}

fn bad(reason: impl Into<String>) -> Bad {
    Bad { reason: reason.into(), ..Bad::default() }
}

fn bad_line(line: usize, reason: impl Into<String>) -> Bad {
    Bad { line: Some(line as u64 + 1), reason: reason.into(), ..Bad::default() }
}

#[derive(Default)]
struct Outcome {
    artifact: Option<String>,
    verdict: Option<String>,
    events: u64,
    statements: u64,
    size: Option<u64>,
    /// The files the bundle's `evidence.captured` events record.
    evidence: Vec<EvidenceFile>,
}

pub fn verify_bundle(file: &Path, proof: &Path, key: &VerifierKey) -> BundleReport {
    verify_bundle_with_evidence(file, proof, key, None)
}

/// [`verify_bundle`], and then, when the bundle is authentic and `evidence` names a tar, that
/// tar checked against the files the bundle's signed `evidence.captured` events record; a
/// problem there makes the report not ok.
pub fn verify_bundle_with_evidence(
    file: &Path,
    proof: &Path,
    key: &VerifierKey,
    evidence: Option<&Path>,
) -> BundleReport {
    let (mut report, expected) = verify_bundle_only(file, proof, key);
    if let (true, Some(tar)) = (report.ok, evidence) {
        let checked = check_evidence_tar(tar, &expected);
        if !checked.ok {
            report.ok = false;
            report.reason = Some(format!(
                "{}: {} evidence problem(s), the first: {}",
                tar.display(),
                checked.problem_count,
                checked.problems.first().map(String::as_str).unwrap_or("-")
            ));
        }
        report.evidence = Some(checked);
    }
    report
}

/// The report, and the files the bundle's `evidence.captured` events record.
fn verify_bundle_only(file: &Path, proof: &Path, key: &VerifierKey) -> (BundleReport, Vec<EvidenceFile>) {
    let mut o = Outcome::default();
    let result = run(file, proof, key, &mut o);
    let (ok, line, seq, reason) = match result {
        Ok(()) => (true, None, None, None),
        Err(b) => (false, b.line, b.seq, Some(b.reason)),
    };
    let report = BundleReport {
        ok,
        artifact: o.artifact,
        verdict: if ok { o.verdict } else { None },
        events: o.events,
        statements: o.statements,
        checkpoint_size: o.size,
        first_bad_line: line,
        first_bad_seq: seq,
        reason,
        evidence: None,
    };
    (report, o.evidence)
}

/// A proof checked against the checkpoint.
struct Proven {
    leaf: LeafFields,
    used: bool,
}

fn run(file: &Path, proof_file: &Path, key: &VerifierKey, o: &mut Outcome) -> Result<(), Bad> {
    let text = std::fs::read(file).map_err(|e| bad(format!("{}: {e}", file.display())))?;
    let proof_text =
        std::fs::read_to_string(proof_file).map_err(|e| bad(format!("{}: {e}", proof_file.display())))?;

    // 1. Proofs.
    let proofs = parse_many(&proof_text).map_err(|e| bad(format!("{}: {e}", proof_file.display())))?;
    let mut checkpoint: Option<(String, Checkpoint)> = None;
    let mut proven: BTreeMap<Hash32, Proven> = BTreeMap::new();
    for (i, p) in proofs.iter().enumerate() {
        let at = |m: String| Bad { seq: Some(p.index), ..bad(format!("proof {i} (index {}): {m}", p.index)) };
        let cp = match &checkpoint {
            Some((note, cp)) if *note == p.checkpoint => cp.clone(),
            Some(_) => return Err(at("a different checkpoint from the first proof's".into())),
            None => {
                let cp = Checkpoint::open(&p.checkpoint, key)
                    .map_err(|e| at(format!("the checkpoint does not verify under the ledger key: {e}")))?;
                checkpoint = Some((p.checkpoint.clone(), cp.clone()));
                o.size = Some(cp.size);
                cp
            }
        };
        let leaf_bytes = p.extra.as_deref().ok_or_else(|| at("no leaf (extra)".into()))?;
        let leaf = LeafFields::from_bytes(leaf_bytes).map_err(|e| at(e.to_string()))?;
        if leaf.seq != p.index {
            return Err(at(format!("the leaf is for seq {}", leaf.seq)));
        }
        verify_inclusion(p.index, cp.size, &leaf_hash(leaf_bytes), &p.hashes, &cp.root)
            .map_err(|e| at(format!("not included in the checkpoint's tree: {e}")))?;
        if proven.insert(leaf.digest, Proven { leaf, used: false }).is_some() {
            return Err(at("a second proof of the same event".into()));
        }
    }
    let (_, cp) = checkpoint.ok_or_else(|| bad(format!("{}: no proofs", proof_file.display())))?;

    // 2. Envelopes.
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut records: Vec<(usize, Record)> = Vec::new();
    let mut statements: Vec<(usize, DecodedEnvelope, Statement)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let env = parse_envelope(line).map_err(|e| bad_line(i, e.to_string()))?;
        if env.payload_type == PAYLOAD_TYPE {
            let digest = Hash32::blake3(&env.payload);
            let p =
                proven.get_mut(&digest).ok_or_else(|| bad_line(i, "no inclusion proof for this event"))?;
            let seq = p.leaf.seq;
            let at = |m: String| Bad { seq: Some(seq), ..bad_line(i, m) };
            if std::mem::replace(&mut p.used, true) {
                return Err(at("the same event twice".into()));
            }
            if Hash32::blake3(&signatures_canonical_json(&env.signatures)) != p.leaf.signatures_digest {
                return Err(at("the signatures differ from the logged record's".into()));
            }
            let record =
                Record::new(seq, p.leaf.received_at_ns, env.payload, env.signatures, p.leaf.prev_hash)
                    .map_err(|e| at(e.to_string()))?;
            check_content(&record).map_err(|e| at(e.to_string()))?;
            records.push((i, record));
        } else {
            let s: Statement = serde_json::from_slice(&env.payload)
                .map_err(|e| bad_line(i, format!("not an in-toto statement: {e}")))?;
            if s.ty != STATEMENT_TYPE {
                return Err(bad_line(i, format!("_type {:?}, expected {STATEMENT_TYPE}", s.ty)));
            }
            statements.push((i, env, s));
        }
    }
    if let Some((_, p)) = proven.iter().find(|(_, p)| !p.used) {
        return Err(Bad {
            seq: Some(p.leaf.seq),
            ..bad(format!("the proof of seq {} has no envelope in the bundle", p.leaf.seq))
        });
    }
    o.events = records.len() as u64;
    o.statements = statements.len() as u64;
    records.sort_by_key(|(_, r)| r.seq);
    o.evidence = files_of(records.iter().map(|(_, r)| r)).map_err(|e| bad(e.to_string()))?;

    // Keys, roles and signatures, in seq order.
    let mut auth = RecordAuthorizer::new(Some(key.clone()));
    let mut keys = Vec::with_capacity(records.len());
    for (i, r) in &records {
        keys.push(auth.authorize(r).map_err(|e| Bad { seq: Some(r.seq), ..bad_line(*i, e.to_string()) })?);
    }
    let origin = auth.keys().origin();
    if origin != Some(cp.origin.as_str()) {
        return Err(bad(format!("genesis names origin {origin:?}, the checkpoint {:?}", cp.origin)));
    }
    let envelopes: Vec<DecodedEnvelope> = records.iter().map(|(_, r)| r.envelope()).collect();
    let pairs: Vec<(&DecodedEnvelope, &VerifierKey)> = envelopes.iter().zip(&keys).collect();
    let ok: Vec<bool> = pairs.chunks(VERIFY_BATCH_MAX).flat_map(verify_many).collect();
    if let Some(k) = ok.iter().position(|ok| !ok) {
        let (i, r) = &records[k];
        return Err(Bad { seq: Some(r.seq), ..bad_line(*i, "signature does not verify") });
    }

    // 3. Statements.
    for (i, env, _) in &statements {
        if !env.verify_with(key) {
            return Err(bad_line(*i, "the statement is not signed by the ledger key"));
        }
    }
    let mut summaries = statements.iter().filter(|(_, _, s)| s.predicate_type == VSA_PREDICATE);
    let (vsa_line, _, vsa) = summaries.next().ok_or_else(|| bad("no verification summary"))?;
    if let Some((i, _, _)) = summaries.next() {
        return Err(bad_line(*i, "a second verification summary"));
    }
    let mut listed: Vec<String> = vsa.predicate["inputAttestations"]
        .as_array()
        .ok_or_else(|| bad_line(*vsa_line, "no inputAttestations"))?
        .iter()
        .map(|a| a["digest"]["sha256"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut present: Vec<(String, usize)> =
        lines.iter().enumerate().filter(|(i, _)| i != vsa_line).map(|(i, l)| (sha256_hex(l), i)).collect();
    listed.sort();
    present.sort();
    for (digest, i) in &present {
        if listed.binary_search(digest).is_err() {
            return Err(bad_line(*i, "an envelope the summary's inputAttestations do not list"));
        }
    }
    if listed.len() != present.len() {
        return Err(bad_line(
            *vsa_line,
            format!(
                "inputAttestations list {} envelopes, the bundle holds {}: an envelope is missing",
                listed.len(),
                present.len()
            ),
        ));
    }
    {
        let mut p: Vec<&String> = present.iter().map(|(d, _)| d).collect();
        p.dedup();
        let mut l = listed.clone();
        l.dedup();
        if p.len() != present.len() || l.len() != listed.len() {
            return Err(bad_line(*vsa_line, "inputAttestations or envelopes repeat"));
        }
    }
    let summary = &vsa.predicate["assay"];
    let want_cp = serde_json::json!({"origin": cp.origin, "size": cp.size, "root": root_b64(&cp.root)});
    if summary["checkpoint"] != want_cp {
        return Err(bad_line(*vsa_line, "the summary is about another checkpoint than the proofs'"));
    }
    let slug = summary["artifact"]["slug"]
        .as_str()
        .ok_or_else(|| bad_line(*vsa_line, "no artifact in the summary"))?;
    o.artifact = Some(slug.to_owned());

    // 4. The verdict, recomputed.
    let state = Projections::replay(records.iter().map(|(_, r)| r));
    let report = state.audit_report();
    let artifact = report
        .artifact(slug)
        .ok_or_else(|| bad(format!("the bundle's events judge no artifact {slug:?}")))?;
    let recomputed = serde_json::to_value(artifact).unwrap_or(Value::Null);
    if summary["artifact"] != recomputed {
        return Err(bad_line(
            *vsa_line,
            format!(
                "the summary's verdict differs from the one recomputed from the bundle's events: {recomputed}"
            ),
        ));
    }
    let result = if artifact.passes { PASSED } else { FAILED };
    if vsa.predicate["verificationResult"] != result {
        return Err(bad_line(*vsa_line, format!("verificationResult is not {result}")));
    }
    let bundled = records.iter().map(|(_, r)| r);
    let subject = artifact_subject(&state, slug, bundled).map_err(|e| bad(e.to_string()))?;
    if !subject_matches(&vsa.subject, &subject) {
        return Err(bad_line(*vsa_line, "the summary's subject is not the artifact's content digest"));
    }
    let mut claim_statements: BTreeMap<String, (usize, &Statement)> = BTreeMap::new();
    for (i, _, s) in statements.iter().filter(|(_, _, s)| s.predicate_type == CLAIM_PREDICATE) {
        let id = s.predicate["claim"].as_str().unwrap_or_default().to_owned();
        if claim_statements.insert(id, (*i, s)).is_some() {
            return Err(bad_line(*i, "a second statement of the same claim"));
        }
    }
    if let Some((i, _, s)) = statements
        .iter()
        .find(|(_, _, s)| s.predicate_type != CLAIM_PREDICATE && s.predicate_type != VSA_PREDICATE)
    {
        return Err(bad_line(*i, format!("unexpected predicateType {:?}", s.predicate_type)));
    }
    let by_seq: BTreeMap<u64, &Record> = records.iter().map(|(_, r)| (r.seq, r)).collect();
    for c in report.claims_of(slug) {
        let (i, s) = claim_statements
            .remove(&c.claim)
            .ok_or_else(|| bad(format!("claim {} is judged but has no statement", c.claim)))?;
        let asserted = by_seq.get(&c.asserted_seq);
        let field = |k: &str| asserted.and_then(|r| r.event.data.get(k)).cloned().unwrap_or(Value::Null);
        let mut want = claim_predicate(
            slug,
            c,
            field("statement"),
            field("location"),
            field("check"),
            asserted.map(|r| r.digest.to_hex()),
            cp.size,
        );
        // Bundles written before claims said their registration verify as they were.
        if s.predicate.get("registration").is_none()
            && let Some(o) = want.as_object_mut()
        {
            o.remove("registration");
        }
        if s.predicate != want {
            return Err(bad_line(
                i,
                format!(
                    "claim {}: the statement differs from the verdict recomputed from the bundle's events",
                    c.claim
                ),
            ));
        }
        if !subject_matches(&s.subject, &subject) {
            return Err(bad_line(i, "the claim's subject is not the artifact's content digest"));
        }
    }
    if let Some((claim, (i, _))) = claim_statements.into_iter().next() {
        return Err(bad_line(
            i,
            format!("a statement of claim {claim}, which the bundle's events do not judge"),
        ));
    }
    o.verdict = Some(result.to_owned());
    Ok(())
}

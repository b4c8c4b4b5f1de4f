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
//!
//! Building is three steps: [`plan`] reads what the bundle holds (the checkpoint, the state
//! there, the records chosen by [`select`] and their inclusion proofs), [`BundlePlan::sign`]
//! signs the statements, and [`Bundle`] gives the bytes of the file and its sidecar as readers,
//! so a caller writes them to files ([`export_bundle`]) or streams them (the HTTP download)
//! without holding them whole.

mod select;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay_events::Hash32;
use assay_events::b64;
use assay_events::checkpoint::Checkpoint;
use assay_events::keys::{SignerKey, VerifierKey};
use assay_events::record::Record;
use assay_projections::Projections;
use assay_projections::audit::{ArtifactVerdict, ClaimVerdict};
use serde_json::{Value, json};

use super::ExportError;
use super::intoto::{
    AUDIT_POLICY, CLAIM_PREDICATE, ResourceDescriptor, Statement, VSA_PREDICATE, input_attestation, root_b64,
    sha256_hex,
};
use super::source::{LedgerSource, replay};
use super::tlog_proof::TlogProof;
use select::{Needs, select};

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

/// The verification summary's `verificationResult` of an artifact that passes its audit.
pub const PASSED: &str = "PASSED";
/// … and of one that does not.
pub const FAILED: &str = "FAILED";

/// The sidecar of `file`: `<file>.proof`.
pub fn proof_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".proof");
    PathBuf::from(s)
}

/// What the bundle of one artifact holds, read at the latest checkpoint: the verdict, the
/// events it rests on and their inclusion proofs. Nothing in it is signed yet.
#[derive(Debug)]
pub struct BundlePlan {
    slug: String,
    checkpoint: Checkpoint,
    /// The checkpoint's signed note, verbatim.
    note: String,
    /// The checkpoint's size as stored (the verdict is taken at it).
    size: u64,
    artifact: ArtifactVerdict,
    claims: Vec<ClaimVerdict>,
    subject: ResourceDescriptor,
    /// In seq order.
    events: Vec<Record>,
    /// The sidecar: one `c2sp.org/tlog-proof@v1` proof per event, in the same order.
    proofs: Arc<[u8]>,
    /// Where each event's proof ends in `proofs`.
    proof_ends: Vec<usize>,
}

/// Reads what the bundle of `slug` at the latest checkpoint holds. `ledger_key` must be the
/// key genesis names. `folded(size)` returns the projections folded from exactly the records
/// `[0, size)` of that checkpoint when the caller keeps them (a server's live state), or
/// `None` to have the log replayed. Either way the events selected must reproduce the verdict
/// on their own, or there is no plan.
pub async fn plan<S: LedgerSource>(
    src: &S,
    slug: &str,
    ledger_key: &VerifierKey,
    folded: impl FnOnce(u64) -> Option<Projections>,
) -> Result<BundlePlan, ExportError> {
    Ok(plan_with_state(src, slug, ledger_key, folded).await?.0)
}

/// [`plan`], and the projections at the checkpoint it was read at (what a report shows beside
/// the events the verdict rests on).
pub async fn plan_with_state<S: LedgerSource>(
    src: &S,
    slug: &str,
    ledger_key: &VerifierKey,
    folded: impl FnOnce(u64) -> Option<Projections>,
) -> Result<(BundlePlan, Projections), ExportError> {
    let cp_row = src.latest_checkpoint().await?;
    let size = cp_row.size;
    let checkpoint = Checkpoint::open(&cp_row.note, ledger_key).map_err(|e| {
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
    let artifact = report.artifact(slug).cloned().ok_or_else(|| {
        ExportError::Invalid(format!(
            "no artifact {slug:?} with a canonical version or claims at checkpoint size {size}"
        ))
    })?;
    let claims: Vec<ClaimVerdict> = report.claims_of(slug).cloned().collect();
    let needs = Needs::of(&state, slug, &claims);
    let selected = select(src, size, &needs).await?;
    if !reproduces(&selected, slug, &artifact, &claims) {
        return Err(ExportError::Invalid(format!(
            "the events selected for {slug:?} do not reproduce its verdict; refusing to write a misleading bundle"
        )));
    }
    let events: Vec<Record> = selected.into_values().collect();
    let subject = artifact_subject(&state, slug, &events)?;
    let (proofs, proof_ends) = prove(src, &events, size, &cp_row.note).await?;
    let plan = BundlePlan {
        slug: slug.to_owned(),
        checkpoint,
        note: cp_row.note,
        size,
        artifact,
        claims,
        subject,
        events,
        proofs,
        proof_ends,
    };
    Ok((plan, state))
}

/// Whether the selected records alone give the artifact the same verdict.
fn reproduces(
    selected: &BTreeMap<u64, Record>,
    slug: &str,
    artifact: &ArtifactVerdict,
    claims: &[ClaimVerdict],
) -> bool {
    let again = Projections::replay(selected.values()).audit_report();
    again.artifact(slug) == Some(artifact) && again.claims_of(slug).eq(claims.iter())
}

/// The sidecar's text: an inclusion proof of every event in the tree of size `size`, each with
/// `note` (the checkpoint at `size` with the witnesses' cosignatures the source has); and where
/// each event's proof ends in it.
async fn prove<S: LedgerSource>(
    src: &S,
    events: &[Record],
    size: u64,
    note: &str,
) -> Result<(Arc<[u8]>, Vec<usize>), ExportError> {
    let mut proofs = String::new();
    let mut ends = Vec::with_capacity(events.len());
    for r in events {
        let p = src.inclusion(r.seq, size).await?;
        if p.tree_size != size {
            return Err(ExportError::Ledger(format!(
                "the inclusion proof of seq {} is in the tree of size {}, not {size}",
                r.seq, p.tree_size
            )));
        }
        let hashes = p
            .proof
            .iter()
            .map(|h| b64::decode_any(h).ok().and_then(|b| Hash32::from_slice(&b).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ExportError::Ledger(format!("a malformed inclusion proof for seq {}", r.seq)))?;
        proofs.push_str(
            &TlogProof { extra: Some(r.leaf().to_vec()), index: r.seq, hashes, checkpoint: note.to_owned() }
                .to_text(),
        );
        ends.push(proofs.len());
    }
    Ok((Arc::from(proofs.into_bytes()), ends))
}

impl BundlePlan {
    /// The artifact's slug.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// The checkpoint the verdict is taken at, and its signed note verbatim.
    pub fn checkpoint(&self) -> (&Checkpoint, &str) {
        (&self.checkpoint, &self.note)
    }

    /// The artifact's verdict and its claims' (by claim id).
    pub fn verdicts(&self) -> (&ArtifactVerdict, &[ClaimVerdict]) {
        (&self.artifact, &self.claims)
    }

    /// The events the verdict rests on, in seq order, each with its inclusion proof
    /// (`c2sp.org/tlog-proof@v1` text, as in the sidecar).
    pub fn cited(&self) -> impl Iterator<Item = (&Record, &str)> {
        let text = std::str::from_utf8(&self.proofs).unwrap_or_default();
        let starts = std::iter::once(0).chain(self.proof_ends.iter().copied());
        self.events.iter().zip(starts.zip(&self.proof_ends)).map(move |(r, (a, b))| (r, &text[a..*b]))
    }

    /// The signed bundle: one statement per claim and the verification summary, signed with
    /// `ledger_key` (the key the plan was read with); `now` is `timeVerified` (RFC 3339).
    pub fn sign(self, ledger_key: &SignerKey, now: &str) -> Bundle {
        let size = self.size;
        let mut inputs: Vec<ResourceDescriptor> = Vec::with_capacity(self.events.len() + self.claims.len());
        let mut file_bytes: u64 = 0;
        for r in &self.events {
            let line = event_line(r);
            file_bytes += line.len() as u64 + 1;
            inputs.push(input_attestation(format!("seq/{} {}", r.seq, r.event.ty), &line));
        }
        let mut statements: Vec<Vec<u8>> = Vec::with_capacity(self.claims.len() + 1);
        for c in &self.claims {
            let statement = claim_statement(&self.events, &self.slug, c, &self.subject, size);
            let line = statement.sign(ledger_key).to_json();
            inputs.push(input_attestation(format!("claim/{}", c.claim), &line));
            statements.push(line);
        }
        let (slug, checkpoint, artifact) = (&self.slug, &self.checkpoint, &self.artifact);
        let vsa = Statement::new(
            vec![self.subject.clone()],
            VSA_PREDICATE,
            json!({
                "verifier": {"id": format!("https://assay.dev/ledger/{}", ledger_key.keyid()), "version": {"assay": env!("CARGO_PKG_VERSION")}},
                "timeVerified": now,
                "resourceUri": format!("assay:{}/artifact/{slug}", checkpoint.origin),
                "policy": {"uri": AUDIT_POLICY},
                "inputAttestations": inputs,
                "verificationResult": if artifact.passes { PASSED } else { FAILED },
                "verifiedLevels": if artifact.passes { vec!["ASSAY_CLAIMS_SUPPORTED"] } else { Vec::new() },
                "slsaVersion": "1.0",
                "assay": {
                    "checkpoint": {"origin": checkpoint.origin, "size": size, "root": root_b64(&checkpoint.root)},
                    "artifact": artifact,
                },
            }),
        );
        statements.push(vsa.sign(ledger_key).to_json());
        file_bytes += statements.iter().map(|l| l.len() as u64 + 1).sum::<u64>();
        Bundle { plan: self, statements, file_bytes }
    }
}

/// An event's line: its envelope as the ledger rebuilds it from the record.
fn event_line(r: &Record) -> Vec<u8> {
    r.envelope().to_json()
}

/// A signed bundle, ready to be written: the file is produced line by line as it is read.
#[derive(Debug)]
pub struct Bundle {
    plan: BundlePlan,
    /// The claim statements, then the verification summary, each without its newline.
    statements: Vec<Vec<u8>>,
    /// Bytes of the file.
    file_bytes: u64,
}

impl Bundle {
    /// Bytes of the bundle file (`<name>.intoto.jsonl`).
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Bytes of the sidecar (`<name>.intoto.jsonl.proof`).
    pub fn proof_bytes(&self) -> u64 {
        self.plan.proofs.len() as u64
    }

    /// The sidecar's bytes.
    pub fn proofs(&self) -> Arc<[u8]> {
        Arc::clone(&self.plan.proofs)
    }

    /// The bundle file, read line by line from `bundle` (a `&Bundle`, an `Arc<Bundle>`).
    pub fn file<B: Deref<Target = Bundle>>(bundle: B) -> FileReader<B> {
        FileReader { bundle, next: 0, current: Vec::new(), at: 0 }
    }

    /// Line `i` of the file, without its newline: the events, the claims, the summary.
    fn line(&self, i: usize) -> Option<Cow<'_, [u8]>> {
        match self.plan.events.get(i) {
            Some(r) => Some(Cow::Owned(event_line(r))),
            None => self.statements.get(i - self.plan.events.len()).map(|l| Cow::Borrowed(l.as_slice())),
        }
    }

    /// What `assay export bundle` reports, the file written at `path`.
    fn summary(&self, path: PathBuf) -> BundleSummary {
        BundleSummary {
            proof_path: proof_path(&path),
            path,
            events: self.plan.events.len(),
            claims: self.plan.claims.len(),
            size: self.plan.size,
            passes: self.plan.artifact.passes,
        }
    }
}

/// The bundle file as a reader: one line in memory at a time.
pub struct FileReader<B> {
    bundle: B,
    /// The next line to read.
    next: usize,
    /// The line being read, with its newline, and how much of it was read.
    current: Vec<u8>,
    at: usize,
}

impl<B: Deref<Target = Bundle>> Read for FileReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.at == self.current.len() {
                let Some(line) = self.bundle.line(self.next) else { break };
                self.next += 1;
                self.current = line.into_owned();
                self.current.push(b'\n');
                self.at = 0;
            }
            let k = (self.current.len() - self.at).min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&self.current[self.at..self.at + k]);
            self.at += k;
            n += k;
        }
        Ok(n)
    }
}

/// Builds the bundle of `slug` at the latest checkpoint, signing its statements with
/// `ledger_key` (which must be the key genesis names), and writes it to `out` and its
/// sidecar. `now` is `timeVerified` (RFC 3339).
pub async fn export_bundle<S: LedgerSource>(
    src: &S,
    slug: &str,
    ledger_key: &SignerKey,
    out: &Path,
    now: &str,
) -> Result<BundleSummary, ExportError> {
    export_bundle_with(src, slug, ledger_key, out, now, |_| None).await
}

/// [`export_bundle`], given the caller's projections at the checkpoint (see [`plan`]'s
/// `folded`). Either way the events selected must reproduce the verdict on their own, or
/// nothing is written.
pub async fn export_bundle_with<S: LedgerSource>(
    src: &S,
    slug: &str,
    ledger_key: &SignerKey,
    out: &Path,
    now: &str,
    folded: impl FnOnce(u64) -> Option<Projections>,
) -> Result<BundleSummary, ExportError> {
    let bundle = plan(src, slug, &ledger_key.verifier(), folded).await?.sign(ledger_key, now);
    let out = out.to_owned();
    let written = tokio::task::spawn_blocking(move || write_files(&bundle, out)).await;
    match written {
        Ok(summary) => summary,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ExportError::Invalid(format!("writing the bundle was cancelled: {e}"))),
    }
}

/// Writes the bundle to `out` and its sidecar beside it.
pub(super) fn write_files(bundle: &Bundle, out: PathBuf) -> Result<BundleSummary, ExportError> {
    let create = |path: &Path| std::fs::File::create(path).map(BufWriter::new);
    let mut file = create(&out).map_err(|e| ExportError::io(&out, e))?;
    io::copy(&mut Bundle::file(bundle), &mut file)
        .and_then(|_| file.into_inner().map_err(io::IntoInnerError::into_error))
        .map_err(|e| ExportError::io(&out, e))?;
    let proof_file = proof_path(&out);
    std::fs::write(&proof_file, &*bundle.proofs()).map_err(|e| ExportError::io(&proof_file, e))?;
    Ok(bundle.summary(out))
}

/// The artifact as an in-toto subject: its canonical version (else its latest) and that
/// version's content digest (`blake3`), with `sha256` beside it (policy engines match sha256):
/// the SHA-256 of the same bytes, the b3sum manifest (`<blake3>  <path>\n` per file, in the
/// submission's order), rebuilt from the submission's `files` among `events`. Only when the
/// rebuilt manifest hashes to the content digest is `sha256` stated: a submission whose digest
/// was computed some other way keeps blake3 alone.
pub fn artifact_subject<'a>(
    state: &Projections,
    slug: &str,
    events: impl IntoIterator<Item = &'a Record>,
) -> Result<ResourceDescriptor, ExportError> {
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
    let submission = events.into_iter().find(|r| r.digest.to_hex() == v.submission);
    let manifest = submission.and_then(|r| b3sum_manifest(&r.event.data["files"]));
    let mut digests = BTreeMap::new();
    if let Some(m) = manifest.filter(|m| blake3::hash(m.as_bytes()).to_hex().as_str() == digest) {
        digests.insert("sha256".to_owned(), sha256_hex(m.as_bytes()));
    }
    digests.insert("blake3".to_owned(), digest);
    Ok(ResourceDescriptor {
        name: Some(format!("{slug}@{version}")),
        uri: None,
        digest: digests,
        annotations: None,
    })
}

/// Whether a statement's subjects are `want`, or `want` as bundles wrote it before subjects
/// carried `sha256` (blake3 alone).
pub fn subject_matches(found: &[ResourceDescriptor], want: &ResourceDescriptor) -> bool {
    let mut older = want.clone();
    older.digest.remove("sha256");
    found == [want.clone()] || found == [older]
}

/// The b3sum manifest of a `files` list (`[{path, blake3, …}]`); `None` when it is not one.
fn b3sum_manifest(files: &Value) -> Option<String> {
    let mut manifest = String::new();
    for f in files.as_array()? {
        manifest.push_str(&format!("{}  {}\n", f["blake3"].as_str()?, f["path"].as_str()?));
    }
    Some(manifest)
}

/// The claim with its verdict, as an in-toto statement about the artifact.
fn claim_statement(
    events: &[Record],
    slug: &str,
    c: &ClaimVerdict,
    subject: &ResourceDescriptor,
    size: u64,
) -> Statement {
    let asserted = events.binary_search_by_key(&c.asserted_seq, |r| r.seq).ok().map(|i| &events[i]);
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
        "registration": c.registration.as_str(),
        "reasons": c.reasons,
        "context": c.context,
        "runs": c.runs,
    })
}

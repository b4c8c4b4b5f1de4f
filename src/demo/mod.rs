//! The demonstration lab: a fresh ledger filled with weeks of a research lab's history,
//! generated deterministically from a seed.
//!
//! - [`lab`]: workers, GPUs, projects, people and their keys; sizes.
//! - [`runs`]: experiments and what becomes of each run; [`sim`]: the dispatcher, the gate
//!   model and the runs' lifecycles; [`metrics`]: the curves runs log.
//! - [`kernels`]: the shipped kernel campaigns, run through the kernel runner on the CPU;
//!   [`gpus`]: telemetry, preflights and Xids from kernel-log lines; [`evidence`]: the files
//!   behind every digest.
//! - [`corpus`]: artifacts and their admission; [`claims`]: claims and expected verdicts.
//!
//! Everything goes through [`Ledger::append`]. The demo then replays the ledger, checks that
//! every gate decision and claim verdict is what the scenario meant (each for a reason the
//! data holds), has the auditor attest the audit, and verifies the whole ledger.

mod claims;
mod corpus;
mod corpus_groups;
mod evidence;
mod gpus;
mod groups;
mod kernels;
mod lab;
mod metrics;
mod runs;
mod sim;
mod timeline;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assay_events::dsse::DecodedEnvelope;
use assay_projections::Projections;
use assay_projections::audit::{AuditReport, VerdictCounts};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use assay::clock::now_ns;
use assay::keyfile;
use assay::ledger::{AppendError, Incoming, Ledger, LedgerOptions, OpenError, build_envelope};
use assay::store::{Durability, Store, StoreError};
use assay::verify::{VerifyError, VerifyReport, verify};

pub use lab::Scale;

/// The origin of every demo ledger.
pub const ORIGIN: &str = "demo.assay.dev/lab";

/// Preset sizes of the generated history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DemoSize {
    /// 24 runs, ~40 artifact submissions, 8 days: seconds, even in a debug build.
    Small,
    /// 240 runs, ~400 artifact submissions, 6 weeks.
    #[default]
    Default,
    /// 1000 runs, ~1600 artifact submissions, 4 months.
    Large,
}

impl DemoSize {
    pub fn scale(self) -> Scale {
        match self {
            DemoSize::Small => Scale::small(),
            DemoSize::Default => Scale::default_size(),
            DemoSize::Large => Scale::large(),
        }
    }
}

/// Size and seed of the generated history.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub size: DemoSize,
    /// Overrides the size's number of runs.
    pub runs: Option<u32>,
    /// Overrides the size's number of artifact submissions.
    pub artifacts: Option<u32>,
    pub durability: Durability,
    /// Producer time of the first day of history (Unix ns); default: the history ends at
    /// the start of today (UTC).
    pub start_ns: Option<i64>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 7,
            size: DemoSize::Default,
            runs: None,
            artifacts: None,
            durability: Durability::Relaxed,
            start_ns: None,
        }
    }
}

impl DemoOptions {
    pub fn scale(&self) -> Scale {
        let mut s = self.size.scale();
        if let Some(r) = self.runs {
            s.runs = r;
        }
        if let Some(a) = self.artifacts {
            s.artifacts = a;
        }
        s
    }
}

/// What the lab's history came to, read back from the ledger.
#[derive(Debug, Clone)]
pub struct DemoStats {
    /// Runs by state (queue projection).
    pub runs: BTreeMap<&'static str, u64>,
    pub dispatch_accepted: u64,
    pub dispatch_refused: u64,
    /// Refusals by reason code.
    pub refusals: BTreeMap<String, u64>,
    pub artifacts_submitted: u64,
    pub artifacts_admitted: u64,
    pub artifacts_rejected: u64,
    pub artifacts_superseded: u64,
    pub claims_withdrawn: u64,
    pub launches_passed: u64,
    pub launches_failed: u64,
    pub launches_faulted: u64,
    /// Xids: hardware-class inside a run's window, hardware-class outside, others.
    pub xids_hardware_in_window: u64,
    pub xids_hardware_outside: u64,
    pub xids_other: u64,
    /// GPUs flagged as needing a reset at the end.
    pub gpus_needing_reset: u64,
}

#[derive(Debug)]
pub struct DemoSummary {
    pub db: PathBuf,
    pub keys: PathBuf,
    /// Evidence and artifact files.
    pub files: PathBuf,
    pub records: u64,
    pub checkpoint: String,
    pub verify: VerifyReport,
    /// The audit of the finished history.
    pub audit: AuditReport,
    pub stats: DemoStats,
    /// Producer-time span of the history.
    pub history_start_ns: i64,
    pub history_end_ns: i64,
    pub elapsed: Duration,
}

impl DemoSummary {
    /// `N of M canonical artifacts pass the claim/evidence audit`.
    pub fn headline(&self) -> &str {
        &self.audit.headline
    }

    pub fn verdicts(&self) -> VerdictCounts {
        self.audit.verdicts
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("demo generator: {0}")]
    Generate(String),
    /// The ledger decided something other than the scenario meant: a defect of the demo.
    #[error("the ledger disagrees with the demo scenario:\n  {}", .0.join("\n  "))]
    Inconsistent(Vec<String>),
}

/// Envelopes per append request (the ledger's bound is 1000).
const CHUNK_EVENTS: usize = 1000;

/// The generated history, ready to append.
struct History {
    main: Vec<DecodedEnvelope>,
    /// The final request, appended once the ledger measures preflight age strictly.
    last: Vec<DecodedEnvelope>,
    expected: sim::Expected,
    corpus: corpus::CorpusOutcome,
    xids: Vec<(u32, bool, bool)>,
    start_ns: i64,
    end_ns: i64,
}

fn generate(
    keys: &lab::Keys,
    options: &DemoOptions,
    dir: &Path,
    start_ns: i64,
) -> Result<History, DemoError> {
    let scale = options.scale();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let end_ns = start_ns + scale.span_ns();
    let workers = lab::workers(&mut rng, start_ns);
    let plan = runs::plan(&scale, &mut rng, start_ns);
    let tl = timeline::Timeline::new(options.seed, end_ns);
    let final_tl = timeline::Timeline::new(options.seed ^ 0xf1a1, i64::MAX);
    let sim_rng = StdRng::seed_from_u64(options.seed.wrapping_add(1));
    let mut sim =
        sim::Sim::new(keys, workers, plan.runs, tl, final_tl, sim_rng, scale, dir.join("evidence"), start_ns);
    sim.run();
    if !sim.problems.is_empty() {
        return Err(DemoError::Generate(sim.problems.join("; ")));
    }
    let corpus = corpus::Corpus {
        runs: &sim.runs,
        experiments: &plan.experiments,
        keys,
        rng: StdRng::seed_from_u64(options.seed.wrapping_add(2)),
        dir: dir.join("artifacts"),
        start: start_ns,
        end: end_ns,
        scale,
    };
    let mut tl = std::mem::replace(&mut sim.tl, timeline::Timeline::new(0, 0));
    let outcome = corpus.build(&mut tl).map_err(DemoError::Generate)?;
    let final_tl = std::mem::replace(&mut sim.final_tl, timeline::Timeline::new(0, 0));
    Ok(History {
        main: tl.into_sorted(),
        last: final_tl.into_sorted(),
        expected: sim.expected,
        corpus: outcome,
        xids: sim.xids,
        start_ns,
        end_ns,
    })
}

/// The first day of history when none is given: the history ends at 00:00 UTC today.
fn default_start(scale: &Scale) -> i64 {
    let today = now_ns().div_euclid(lab::DAY) * lab::DAY;
    today - scale.span_ns()
}

fn new_keys(keys_dir: &Path) -> Result<(assay_events::keys::SignerKey, lab::Keys), DemoError> {
    let key = |stem: &str, name: &str| -> Result<assay_events::keys::SignerKey, DemoError> {
        let k = keyfile::generate(name).map_err(|e| DemoError::Keys(e.to_string()))?;
        keyfile::write_pair_as(keys_dir, stem, &k).map_err(|e| DemoError::Keys(e.to_string()))?;
        Ok(k)
    };
    // Named after the origin (C2SP tlog-checkpoint), kept in ledger.key.
    let ledger = key("ledger", ORIGIN)?;
    let names = lab::key_names();
    let mut made = Vec::with_capacity(names.len());
    for n in &names {
        made.push(key(n, n)?);
    }
    let mut it = made.into_iter();
    let mut next = || it.next().ok_or_else(|| DemoError::Keys("missing key".into()));
    let admin = next()?;
    let dispatcher = next()?;
    let auditor = next()?;
    let runners = (0..4).map(|_| next()).collect::<Result<Vec<_>, _>>()?;
    let authors = (0..lab::AUTHORS.len()).map(|_| next()).collect::<Result<Vec<_>, _>>()?;
    Ok((ledger, lab::Keys { admin, dispatcher, auditor, runners, authors }))
}

/// Appends `events` through [`Ledger::append`], in requests of at most [`CHUNK_EVENTS`].
/// Appends `events` in chunks; `done` counts the events appended so far (of `total`).
async fn append_all(
    ledger: &Ledger,
    events: Vec<DecodedEnvelope>,
    done: &mut u64,
    total: u64,
    progress: &DemoProgress<'_>,
) -> Result<(), DemoError> {
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<Incoming> = events.by_ref().take(CHUNK_EVENTS).map(Incoming::Decoded).collect();
        let n = chunk.len() as u64;
        ledger.append(chunk).await?;
        *done += n;
        progress(DemoStage::Appending, *done, total);
    }
    Ok(())
}

/// What [`build`] is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoStage {
    /// Simulating the lab's history (no count).
    Generating,
    /// Appending its events: (appended, of all).
    Appending,
    /// Replaying the log to check it against the scenario: (records, of all).
    Checking,
    /// Verifying the ledger: (records, of all).
    Verifying,
}

/// A progress callback: the stage, done, total.
pub type DemoProgress<'a> = dyn Fn(DemoStage, u64, u64) + Sync + 'a;

/// Builds the demo ledger in `dir` (which must not hold one yet), checks it against the
/// scenario, and verifies it, telling `progress` how far it is.
pub async fn build(
    dir: &Path,
    options: &DemoOptions,
    progress: &DemoProgress<'_>,
) -> Result<DemoSummary, DemoError> {
    let began = Instant::now();
    let scale = options.scale();
    let start_ns = options.start_ns.unwrap_or_else(|| default_start(&scale));
    let keys_dir = dir.join("keys");
    let db = dir.join("assay.db");
    let (ledger_key, keys) = new_keys(&keys_dir)?;

    let store = Store::open(&db.to_string_lossy(), options.durability, true).await?;
    let ledger_key_path = keys_dir.join("ledger.key");
    store
        .set_setting(
            "ledger_key_path",
            &std::fs::canonicalize(&ledger_key_path).unwrap_or(ledger_key_path).to_string_lossy(),
        )
        .await?;
    let ledger = Ledger::init(
        store.clone(),
        ORIGIN,
        ledger_key.clone(),
        &[keys.admin.verifier()],
        LedgerOptions::default(),
    )
    .await?;
    let registered_at = start_ns - 2 * lab::DAY;
    let registrations = keys
        .registrations()
        .into_iter()
        .enumerate()
        .map(|(n, (k, role))| {
            let data = json!({"vkey": k.verifier().to_text(), "roles": [role]});
            Incoming::Decoded(build_envelope(
                &keys.admin,
                "key.registered",
                Some(&format!("key/{}", k.name())),
                data,
                None,
                registered_at + n as i64 * lab::MIN,
            ))
        })
        .collect();
    ledger.append(registrations).await?;

    progress(DemoStage::Generating, 0, 0);
    let history = {
        let dir = dir.to_path_buf();
        let options = options.clone();
        let keys_for_gen = clone_keys(&keys);
        tokio::task::spawn_blocking(move || generate(&keys_for_gen, &options, &dir, start_ns))
            .await
            .map_err(|e| DemoError::Generate(format!("generator task failed: {e}")))??
    };
    let total = (history.main.len() + history.last.len()) as u64;
    let mut done = 0;
    append_all(&ledger, history.main, &mut done, total, progress).await?;
    ledger.shutdown().await;

    // The ledger measures a preflight's age on its own clock; this history was written in
    // seconds. For the last request (a node whose preflight agent stopped days earlier, by
    // producer time) the ledger is reopened with no tolerance, as real time would have it.
    let strict = LedgerOptions { preflight_max_age_ms: 0, ..LedgerOptions::default() };
    let ledger = Ledger::open(store.clone(), ledger_key.clone(), strict).await?;
    append_all(&ledger, history.last, &mut done, total, progress).await?;

    let state = assay::replay::replay(&store, None, |n, of| progress(DemoStage::Checking, n, of)).await?;
    let report = state.audit_report();
    let problems = check(&state, &report, &history.expected, &history.corpus);
    if !problems.is_empty() {
        ledger.shutdown().await;
        store.close().await;
        return Err(DemoError::Inconsistent(problems));
    }

    // The auditor attests the audit at the current checkpoint.
    let head = ledger.head().borrow().clone();
    let v = report.verdicts;
    let data = json!({
        "checkpoint": head.checkpoint.to_string(),
        "projection_digest": state.digest(assay_projections::ProjectionName::Audit).to_hex(),
        "verdicts": {"supported": v.supported, "contradicted": v.contradicted, "unsupported": v.unsupported, "tainted": v.tainted},
        "artifacts_passing": report.artifacts_passing,
        "artifacts_canonical": report.artifacts_canonical,
    });
    let attest = build_envelope(
        &keys.auditor,
        "audit.attested",
        Some("ledger"),
        data,
        None,
        history.end_ns + 2 * lab::MIN,
    );
    ledger.append(vec![Incoming::Decoded(attest)]).await?;
    let head = ledger.head().borrow().clone();
    ledger.shutdown().await;

    let verify = verify(&store, None, |n, of| progress(DemoStage::Verifying, n, of)).await?;
    store.close().await;
    let stats = stats(&state, &history.corpus, &history.xids);
    Ok(DemoSummary {
        db,
        keys: keys_dir,
        files: dir.to_path_buf(),
        records: head.size,
        checkpoint: head.checkpoint.to_string(),
        verify,
        audit: report,
        stats,
        history_start_ns: history.start_ns,
        history_end_ns: history.end_ns,
        elapsed: began.elapsed(),
    })
}

fn clone_keys(k: &lab::Keys) -> lab::Keys {
    lab::Keys {
        admin: k.admin.clone(),
        dispatcher: k.dispatcher.clone(),
        auditor: k.auditor.clone(),
        runners: k.runners.clone(),
        authors: k.authors.clone(),
    }
}

/// Differences between what the scenario meant and what the ledger recorded.
fn check(
    state: &Projections,
    report: &AuditReport,
    expected: &sim::Expected,
    corpus: &corpus::CorpusOutcome,
) -> Vec<String> {
    let mut out = Vec::new();
    let d = state.queue.decisions();
    if d.accepted != expected.accepted || d.refused != expected.refused {
        out.push(format!(
            "dispatch: ledger accepted {} and refused {}, scenario expected {} and {}",
            d.accepted, d.refused, expected.accepted, expected.refused
        ));
    }
    if d.refusals_by_reason != expected.refusals {
        out.push(format!("refusals: ledger {:?}, scenario {:?}", d.refusals_by_reason, expected.refusals));
    }
    let c = state.corpus.counts();
    if (c.submitted, c.admitted, c.rejected, c.superseded)
        != (corpus.submitted, corpus.admitted, corpus.rejected, corpus.superseded)
    {
        out.push(format!(
            "corpus: ledger {}/{}/{}/{} submitted/admitted/rejected/superseded, scenario {}/{}/{}/{}",
            c.submitted,
            c.admitted,
            c.rejected,
            c.superseded,
            corpus.submitted,
            corpus.admitted,
            corpus.rejected,
            corpus.superseded
        ));
    }
    let canonical: BTreeMap<String, u64> =
        state.corpus.canonical_set().map(|(s, v)| (s.to_owned(), v)).collect();
    if canonical != corpus.canonical {
        out.push("the canonical set differs from the scenario's".into());
    }
    let mut mismatched = 0;
    for claim in &report.claims {
        let key = (claim.artifact.clone(), claim.claim.clone());
        let Some((verdict, reasons)) = corpus.expectations.claims.get(&key) else {
            out.push(format!("claim {}#{} was not planned", claim.artifact, claim.claim));
            continue;
        };
        let codes: Vec<&str> = claim.reasons.iter().map(|r| assay_projections::reason_code(r)).collect();
        let missing: Vec<&String> = reasons.iter().filter(|r| !codes.contains(&r.as_str())).collect();
        let preregistered = corpus.expectations.preregistered.contains(&key);
        let registered = claim.registration == assay_projections::audit::Registration::Preregistered;
        if claim.verdict != *verdict || !missing.is_empty() || registered != preregistered {
            mismatched += 1;
            if mismatched <= 10 {
                out.push(format!(
                    "claim {}#{}: ledger {} {} {:?}, scenario {} {} {:?}",
                    claim.artifact,
                    claim.claim,
                    claim.verdict.as_str(),
                    claim.registration.as_str(),
                    claim.reasons,
                    verdict.as_str(),
                    if preregistered { "preregistered" } else { "post_hoc" },
                    reasons
                ));
            }
        }
    }
    if report.claims.len() != corpus.expectations.claims.len() {
        out.push(format!(
            "{} claims audited, {} planned",
            report.claims.len(),
            corpus.expectations.claims.len()
        ));
    }
    out
}

fn stats(state: &Projections, corpus: &corpus::CorpusOutcome, xids: &[(u32, bool, bool)]) -> DemoStats {
    let d = state.queue.decisions();
    let c = state.corpus.counts();
    let k = state.kernels.totals();
    DemoStats {
        runs: state.queue.counts(),
        dispatch_accepted: d.accepted,
        dispatch_refused: d.refused,
        refusals: d.refusals_by_reason.clone(),
        artifacts_submitted: c.submitted,
        artifacts_admitted: c.admitted,
        artifacts_rejected: c.rejected,
        artifacts_superseded: c.superseded,
        claims_withdrawn: corpus.withdrawn,
        launches_passed: k.passed,
        launches_failed: k.failed,
        launches_faulted: k.faulted,
        xids_hardware_in_window: xids.iter().filter(|x| x.1 && x.2).count() as u64,
        xids_hardware_outside: xids.iter().filter(|x| x.1 && !x.2).count() as u64,
        xids_other: xids.iter().filter(|x| !x.1).count() as u64,
        gpus_needing_reset: state.gpus.needing_reset().count() as u64,
    }
}

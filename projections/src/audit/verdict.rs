//! Verdicts: how a claim is judged from the audit's inputs.
//!
//! Every finding is a machine-readable reason, `code` or `code:detail`; the verdict is the
//! strongest class among them (tainted > unsupported > contradicted > supported):
//!
//! | class | codes |
//! |---|---|
//! | tainted | `xid_hardware_in_window:<code>`, `xid_nvlink_in_window:<code>` (a hardware-class Xid on the run's GPU between its `run.started` and `run.finished`, or after the start of a run not yet finished; "the run's GPU" is its PCI id on its worker: an Xid whose `host` is another worker does not count, one without a `host` counts on every host), `xid_hardware_in_launch:<code>`, `xid_nvlink_in_launch:<code>` (a hardware-class Xid the runner attached to a launch of the run: on the launch's GPU inside its window), `producer_lacks_role:<keyid>` (a cited evidence bundle was signed by a key that did not hold `worker` or `runner` when it was appended) |
//! | unsupported | `evidence_missing` (no evidence cited), `evidence_missing:<digest>` (a cited digest is not an `evidence.captured` event of the log, yet), `evidence_not_synced:<digest>` (the evidence gate is on, `control.evidence_sync`, and the cited `evidence.captured` has no `evidence.synced`: its files are not all in the evidence store), `run_without_evidence:<run>`, `run_not_finished:<run>`, `run_not_started:<run>` (finished but never started: no window to check), `run_not_quiesced:<run>`, `metric_missing:<run>`, `kernel_missing`, `check_invalid`, `inconclusive` (a group check's observed interval straddles a bound of the claimed one), `interval_undefined` (a group check's interval is not finite: a ratio over a zero baseline, or sums that overflow) |
//! | contradicted | `value_mismatch` (for a group check: the observed interval lies wholly outside the claimed one), `kernel_failed`, `kernel_faulted`, `run_failed:<run>` (a `completed` check on a run that exited nonzero or by a signal) |
//!
//! Context (never changes the verdict): `observed:<value>` (`<sum>/<n>` for a mean, exact),
//! `observed_delta:<a> - <b>`, `xid_application_in_window:<code>` and likewise for the
//! `driver`, `informational` and `unknown` classes (and `xid_<class>_in_launch:<code>` for
//! those attached to a launch), `run_failed:<run>` for metric and
//! compare checks (their data stands even if the process then failed),
//! `launches:passed=<n>,failed=<n>,faulted=<n>`, `kernel_error:<error>`; for group checks
//! `observed_interval:<lo>..<hi>` (the bootstrap interval, [`super::bootstrap`]),
//! `estimate:<value>` (the statistic over the runs themselves), `n:<n>` (`<n>/<n baseline>` for
//! a comparison), each followed by ` (pair <i>)` for the pairs of a `replicated` check.
//!
//! Group checks (`group`, `compare_groups`, `replicated`): each run's `agg(metric)` is taken
//! exactly, rounded to binary64 once, and the statistic's interval is bootstrapped. The
//! observed interval `[a, b]` against the claimed `[lo, hi]` (compared exactly as decimals; a
//! side left out is unbounded): supported iff `lo ≤ a` and `b ≤ hi` (touching a bound is
//! inside); contradicted iff `b < lo` or `a > hi`; otherwise `inconclusive`. A `replicated`
//! check is contradicted if any pair is, else inconclusive if any pair is, else supported.
//!
//! Registration: a claim is `preregistered` when its check was first asserted before any data
//! it rests on existed (no `run.started` of a run it names; for a kernel check, no matching
//! launch), otherwise `post_hoc` (see [`super::Audit::registered_before_data`]). An artifact
//! whose canonical version was submitted with `require_preregistration` does not pass while
//! any of its claims is `post_hoc` (`claim_post_hoc:<claim>`).
//!
//! A GPU is (host, PCI id): nodes of one model share PCI bus ids. An Xid with no `host`
//! (written before producers recorded it) is matched to that PCI id on every host, so old
//! ledgers keep their verdicts and never lose a taint ([`super::xid_on_run_host`]).
//!
//! Rules by check kind: a metric or compare check rests on its run(s), which must have
//! finished, quiesced, and captured evidence; a completed check rests on its run likewise
//! and is contradicted by a nonzero exit; a kernel check rests on the runs of the matching
//! launches (taint applies to them). Every claim must cite at least one `evidence.captured`
//! event by digest.
//!
//! Claims are per slug (`claim.asserted` has no version); an artifact's verdict is about its
//! canonical version. An artifact passes iff it has a canonical version, at least one claim
//! that is not withdrawn, and every such claim is supported. Withdrawn claims do not count.

use std::collections::{BTreeMap, BTreeSet};

use assay_events::roles::Role;
use serde::Serialize;

use super::checks::{Check, aggregate};
use super::{Audit, Claim, XidFact, xid_on_run_host};
use crate::corpus::Corpus;
use crate::data::reason_code;
use crate::decimal::Decimal;
use crate::keys::KeyRegistry;

mod groups;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Supported,
    Contradicted,
    Unsupported,
    Tainted,
}

/// Whether a claim was stated before the data it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    Preregistered,
    PostHoc,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Preregistered => "preregistered",
            Registration::PostHoc => "post_hoc",
        }
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::Unsupported => "unsupported",
            Verdict::Tainted => "tainted",
        }
    }
}

/// The class a reason puts a claim in. Unknown codes count as unsupported.
pub fn reason_class(reason: &str) -> Verdict {
    match reason_code(reason) {
        "xid_hardware_in_window"
        | "xid_nvlink_in_window"
        | "xid_hardware_in_launch"
        | "xid_nvlink_in_launch"
        | "producer_lacks_role" => Verdict::Tainted,
        "value_mismatch" | "kernel_failed" | "kernel_faulted" | "run_failed" => Verdict::Contradicted,
        _ => Verdict::Unsupported,
    }
}

/// The verdict on one claim that is not withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimVerdict {
    pub artifact: String,
    pub claim: String,
    /// `metric`, `compare`, `kernel`, `completed`, `group`, `compare_groups`, `replicated`,
    /// or `invalid`.
    pub kind: &'static str,
    pub verdict: Verdict,
    pub registration: Registration,
    /// Sorted, deduplicated; empty iff supported.
    pub reasons: Vec<String>,
    /// Sorted, deduplicated.
    pub context: Vec<String>,
    /// The runs the check rests on, sorted.
    pub runs: Vec<String>,
    /// The cited event digests.
    pub evidence: Vec<String>,
    pub asserted_seq: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    pub supported: u64,
    pub contradicted: u64,
    pub unsupported: u64,
    pub tainted: u64,
}

impl VerdictCounts {
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Supported => self.supported += 1,
            Verdict::Contradicted => self.contradicted += 1,
            Verdict::Unsupported => self.unsupported += 1,
            Verdict::Tainted => self.tainted += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.supported + self.contradicted + self.unsupported + self.tainted
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactVerdict {
    pub slug: String,
    pub canonical_version: Option<u64>,
    pub passes: bool,
    /// Verdicts of its claims that are not withdrawn.
    pub claims: VerdictCounts,
    /// Why it does not pass: `not_canonical`, `no_claims`, `claim_<verdict>:<claim>`,
    /// `claim_post_hoc:<claim>` (its canonical version requires preregistration).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WithdrawnClaim {
    pub artifact: String,
    pub claim: String,
    pub seq: u64,
    pub reason: Option<String>,
}

/// The audit at one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// `N of M canonical artifacts pass the claim/evidence audit`.
    pub headline: String,
    pub artifacts_canonical: u64,
    pub artifacts_passing: u64,
    /// Verdicts of the claims of canonical artifacts (the `audit.attested` `verdicts`).
    pub verdicts: VerdictCounts,
    /// Every canonical artifact and every slug with claims that are not withdrawn, by slug.
    pub artifacts: Vec<ArtifactVerdict>,
    /// Every claim that is not withdrawn, by (artifact, claim).
    pub claims: Vec<ClaimVerdict>,
    pub withdrawn: Vec<WithdrawnClaim>,
}

impl AuditReport {
    pub fn artifact(&self, slug: &str) -> Option<&ArtifactVerdict> {
        self.artifacts.iter().find(|a| a.slug == slug)
    }

    pub fn claims_of<'a>(&'a self, slug: &'a str) -> impl Iterator<Item = &'a ClaimVerdict> + 'a {
        self.claims.iter().filter(move |c| c.artifact == slug)
    }
}

/// The headline line.
pub fn headline(passing: u64, canonical: u64) -> String {
    format!("{passing} of {canonical} canonical artifacts pass the claim/evidence audit")
}

#[derive(Default)]
struct Findings {
    reasons: BTreeSet<String>,
    context: BTreeSet<String>,
}

impl Findings {
    fn reason(&mut self, r: impl Into<String>) {
        self.reasons.insert(r.into());
    }
    fn context(&mut self, c: impl Into<String>) {
        self.context.insert(c.into());
    }
    fn verdict(&self) -> Verdict {
        self.reasons.iter().map(|r| reason_class(r)).max().unwrap_or(Verdict::Supported)
    }
}

impl Audit {
    /// Verdicts of every claim that is not withdrawn, by (artifact, claim). `keys` is the
    /// registry of the same state (it says which roles evidence producers held).
    pub fn verdicts(&self, keys: &KeyRegistry) -> Vec<ClaimVerdict> {
        self.claims
            .iter()
            .flat_map(|(slug, claims)| claims.iter().map(move |(id, c)| (slug, id, c)))
            .filter(|(_, _, c)| c.withdrawn.is_none())
            .map(|(slug, id, c)| self.evaluate(slug, id, c, keys))
            .collect()
    }

    /// The verdict on one claim; `None` if unknown or withdrawn.
    pub fn verdict(&self, artifact: &str, claim: &str, keys: &KeyRegistry) -> Option<ClaimVerdict> {
        let c = self.claims.get(artifact)?.get(claim)?;
        (c.withdrawn.is_none()).then(|| self.evaluate(artifact, claim, c, keys))
    }

    /// Claims, artifacts and the headline, with the corpus of the same state.
    pub fn report(&self, keys: &KeyRegistry, corpus: &Corpus) -> AuditReport {
        let claims = self.verdicts(keys);
        let mut by_slug: BTreeMap<&str, Vec<&ClaimVerdict>> =
            corpus.canonical_set().map(|(slug, _)| (slug, Vec::new())).collect();
        for c in &claims {
            by_slug.entry(c.artifact.as_str()).or_default().push(c);
        }
        let mut verdicts = VerdictCounts::default();
        let mut artifacts = Vec::with_capacity(by_slug.len());
        for (slug, of_slug) in by_slug {
            let canonical_version = corpus.canonical(slug);
            let require_preregistration = canonical_version
                .and_then(|v| corpus.artifact(slug)?.versions.get(&v))
                .is_some_and(|v| v.require_preregistration);
            let mut counts = VerdictCounts::default();
            let mut reasons = Vec::new();
            if canonical_version.is_none() {
                reasons.push("not_canonical".to_owned());
            }
            for c in of_slug {
                counts.add(c.verdict);
                if canonical_version.is_some() {
                    verdicts.add(c.verdict);
                }
                if c.verdict != Verdict::Supported {
                    reasons.push(format!("claim_{}:{}", c.verdict.as_str(), c.claim));
                }
                if require_preregistration && c.registration == Registration::PostHoc {
                    reasons.push(format!("claim_post_hoc:{}", c.claim));
                }
            }
            if counts.total() == 0 {
                reasons.push("no_claims".to_owned());
            }
            artifacts.push(ArtifactVerdict {
                slug: slug.to_owned(),
                canonical_version,
                passes: reasons.is_empty(),
                claims: counts,
                reasons,
            });
        }
        let artifacts_canonical = artifacts.iter().filter(|a| a.canonical_version.is_some()).count() as u64;
        let artifacts_passing = artifacts.iter().filter(|a| a.passes).count() as u64;
        let withdrawn = self
            .claims
            .iter()
            .flat_map(|(slug, claims)| claims.iter().map(move |(id, c)| (slug, id, c)))
            .filter_map(|(slug, id, c)| {
                c.withdrawn.as_ref().map(|w| WithdrawnClaim {
                    artifact: slug.clone(),
                    claim: id.clone(),
                    seq: w.seq,
                    reason: w.reason.clone(),
                })
            })
            .collect();
        AuditReport {
            headline: headline(artifacts_passing, artifacts_canonical),
            artifacts_canonical,
            artifacts_passing,
            verdicts,
            artifacts,
            claims,
            withdrawn,
        }
    }

    fn evaluate(&self, slug: &str, id: &str, claim: &Claim, keys: &KeyRegistry) -> ClaimVerdict {
        let mut f = Findings::default();
        self.check_evidence(claim, keys, &mut f);
        let runs: BTreeSet<String> = match &claim.check {
            None => {
                f.reason("check_invalid");
                BTreeSet::new()
            }
            Some(Check::Metric { run, metric, agg, op, value }) => {
                self.require_run(run, false, &mut f);
                match (aggregate(self.series(run, metric), *agg), Decimal::parse(value)) {
                    (None, _) => f.reason(format!("metric_missing:{run}")),
                    (_, None) => f.reason("check_invalid"),
                    (Some(observed), Some(threshold)) => {
                        f.context(format!("observed:{}", observed.display()));
                        if !op.holds(observed.cmp_to(&threshold)) {
                            f.reason("value_mismatch");
                        }
                    }
                }
                BTreeSet::from([run.clone()])
            }
            Some(Check::Compare { metric, run, baseline_run, agg, op, margin }) => {
                self.require_run(run, false, &mut f);
                self.require_run(baseline_run, false, &mut f);
                let a = aggregate(self.series(run, metric), *agg);
                let b = aggregate(self.series(baseline_run, metric), *agg);
                if a.is_none() {
                    f.reason(format!("metric_missing:{run}"));
                }
                if b.is_none() {
                    f.reason(format!("metric_missing:{baseline_run}"));
                }
                match (a, b, Decimal::parse(margin)) {
                    (Some(_), Some(_), None) => f.reason("check_invalid"),
                    (Some(a), Some(b), Some(margin)) => {
                        f.context(format!("observed_delta:{} - {}", a.display(), b.display()));
                        if !op.holds(a.delta_cmp_to(&b, &margin)) {
                            f.reason("value_mismatch");
                        }
                    }
                    _ => {}
                }
                BTreeSet::from([run.clone(), baseline_run.clone()])
            }
            Some(Check::Kernel { kernel, variant, backend }) => {
                self.check_kernel(kernel, variant.as_ref(), backend.as_deref(), &mut f)
            }
            Some(Check::Completed { run }) => {
                self.require_run(run, true, &mut f);
                BTreeSet::from([run.clone()])
            }
            Some(group @ (Check::Group { .. } | Check::CompareGroups { .. } | Check::Replicated { .. })) => {
                self.check_groups(group, &mut f)
            }
        };
        for run in &runs {
            self.check_taint(run, &mut f);
        }
        ClaimVerdict {
            artifact: slug.to_owned(),
            claim: id.to_owned(),
            kind: claim.check.as_ref().map_or("invalid", Check::kind),
            verdict: f.verdict(),
            registration: if claim.preregistered {
                Registration::Preregistered
            } else {
                Registration::PostHoc
            },
            reasons: f.reasons.into_iter().collect(),
            context: f.context.into_iter().collect(),
            runs: runs.into_iter().collect(),
            evidence: claim.evidence.clone(),
            asserted_seq: claim.asserted_seq,
        }
    }

    /// Cited digests must be `evidence.captured` events signed by a worker or runner key and,
    /// while the evidence gate is on, with their files in the evidence store.
    fn check_evidence(&self, claim: &Claim, keys: &KeyRegistry, f: &mut Findings) {
        if claim.evidence.is_empty() {
            f.reason("evidence_missing");
        }
        for digest in &claim.evidence {
            let Some(e) = self.evidence.get(digest) else {
                f.reason(format!("evidence_missing:{digest}"));
                continue;
            };
            let held = e
                .producer
                .as_deref()
                .is_some_and(|k| keys.held_role_at(k, &[Role::Worker, Role::Runner], e.seq));
            if !held {
                f.reason(format!("producer_lacks_role:{}", e.producer.as_deref().unwrap_or("unsigned")));
            }
            if self.evidence_unsynced(digest) {
                f.reason(format!("evidence_not_synced:{digest}"));
            }
        }
    }

    /// A run a check rests on must have finished, quiesced and captured evidence. For a
    /// `completed` check (`completion`) a failed exit contradicts; otherwise it is context.
    fn require_run(&self, run: &str, completion: bool, f: &mut Findings) {
        let Some(facts) = self.runs.get(run) else {
            f.reason(format!("run_not_finished:{run}"));
            f.reason(format!("run_without_evidence:{run}"));
            return;
        };
        if !facts.finished {
            f.reason(format!("run_not_finished:{run}"));
        } else {
            if facts.started_ns.is_none() {
                f.reason(format!("run_not_started:{run}"));
            }
            if !facts.quiesced {
                f.reason(format!("run_not_quiesced:{run}"));
            }
            if !facts.succeeded() {
                let failed = format!("run_failed:{run}");
                if completion { f.reason(failed) } else { f.context(failed) }
            }
        }
        if facts.evidence == 0 {
            f.reason(format!("run_without_evidence:{run}"));
        }
    }

    /// Hardware-class Xids on the run's GPUs (its PCI ids on its worker, or host-less)
    /// inside its window taint; others are context.
    fn check_taint(&self, run: &str, f: &mut Findings) {
        // An Xid the runner attached to one of the run's launches: the campaign's own record
        // that the GPU faulted while that launch ran.
        for x in self.launch_xids(run) {
            let finding = format!("xid_{}_in_launch:{}", x.class.as_str(), x.code);
            if x.class.taints() { f.reason(finding) } else { f.context(finding) }
        }
        for (_, x) in self.xids_in_window(run) {
            let finding = format!("xid_{}_in_window:{}", x.class.as_str(), x.code);
            if x.class.taints() { f.reason(finding) } else { f.context(finding) }
        }
    }

    /// The Xids on the run's GPUs (its PCI ids on its worker, or host-less) inside its window,
    /// from its `run.started` to its `run.finished` (on, while it has not finished), each with
    /// its GPU; none for a run that never started.
    pub fn xids_in_window<'a>(&'a self, run: &str) -> impl Iterator<Item = (&'a str, &'a XidFact)> + 'a {
        let facts = self.runs.get(run).filter(|f| f.started_ns.is_some());
        facts.into_iter().flat_map(move |facts| {
            let start = facts.started_ns.unwrap_or(i64::MIN);
            let end = if facts.finished { facts.finished_ns.unwrap_or(i64::MAX) } else { i64::MAX };
            facts.gpus.iter().flat_map(move |gpu| {
                self.xids.get(gpu).into_iter().flatten().filter_map(move |x| {
                    (x.time_ns >= start
                        && x.time_ns <= end
                        && xid_on_run_host(x.host.as_deref(), &facts.workers))
                    .then_some((gpu.as_str(), x))
                })
            })
        })
    }

    /// Matching launches: kernel equal, backend equal if given, variant keys equal if given.
    fn check_kernel(
        &self,
        kernel: &str,
        variant: Option<&serde_json::Value>,
        backend: Option<&str>,
        f: &mut Findings,
    ) -> BTreeSet<String> {
        let (mut passed, mut failed, mut faulted) = (0u64, 0u64, 0u64);
        let mut runs = BTreeSet::new();
        for (_, cell) in self.matching_cells(kernel, variant, backend) {
            passed += cell.passed;
            failed += cell.failed;
            faulted += cell.faulted;
            runs.extend(cell.runs.iter().cloned());
            for e in &cell.errors {
                f.context(format!("kernel_error:{e}"));
            }
        }
        if passed + failed + faulted == 0 {
            f.reason("kernel_missing");
            return runs;
        }
        f.context(format!("launches:passed={passed},failed={failed},faulted={faulted}"));
        if failed > 0 {
            f.reason("kernel_failed");
        }
        if faulted > 0 {
            f.reason("kernel_faulted");
        }
        runs
    }
}

//! The corpus: artifacts written about experiments, submitted (and resubmitted) to the
//! ledger's provenance gate, superseded by the admin, and the claims they make.
//!
//! Most artifacts are admitted on first submission. Some are not, each for a reason the
//! data holds: a version resubmitted while the slug is canonical (a duplicate; the admin
//! then supersedes the old version and the new one is admitted), the same files under a
//! second slug, a run that has not finished yet (resubmitted once it has), a run whose
//! evidence never reached the ledger, or a stale tool resubmitting an old version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::json;

use super::claims::{self, Check, ClaimPlan, Expectations, Facts, Verdict};
use super::evidence::FileSet;
use super::lab::{AUTHORS, GENERATOR, HOUR, Keys, MIN, Project, Scale};
use super::metrics;
use super::runs::{Experiment, Outcome, Run};
use super::timeline::Timeline;
use assay_projections::audit::{Agg, Op};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Admitted on first submission.
    Normal,
    /// v2 submitted while v1 is canonical (rejected), v1 superseded, v2 resubmitted
    /// (admitted); with `stale_v1`, a stale tool resubmits v1 afterwards (rejected).
    Superseded { stale_v1: bool },
    /// v2 submitted while v1 is canonical (rejected); nobody supersedes v1.
    SlugDuplicate,
    /// The same files submitted again under a second slug (rejected).
    ContentDuplicate,
    /// Submitted while run `.0` is still running (rejected); resubmitted once it has
    /// captured evidence, if it does before the history ends.
    Early(usize),
    /// Cites run `.0`, which finished without evidence (rejected); resubmitted without it.
    NoEvidence(usize),
}

#[derive(Debug, Clone)]
pub(super) struct SlugPlan {
    pub(super) slug: String,
    pub(super) title: String,
    pub(super) project: Project,
    pub(super) author: usize,
    pub(super) runs: Vec<usize>,
    pub(super) time: i64,
    pub(super) flow: Flow,
}

/// One corpus event to emit, in time order.
#[derive(Debug, Clone)]
enum Action {
    Submit { slug: usize, version: u64, runs: Vec<usize>, content: Content },
    Supersede { slug: usize, version: u64, by: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// The slug's own files of this version.
    Own,
    /// The files of another slug's version 1.
    CopyOf(usize),
}

/// What the corpus came to, by the provenance gate's rules.
#[derive(Debug, Clone, Default)]
pub struct CorpusOutcome {
    pub submitted: u64,
    pub admitted: u64,
    pub rejected: u64,
    pub superseded: u64,
    /// slug → canonical version.
    pub canonical: BTreeMap<String, u64>,
    pub expectations: Expectations,
    pub withdrawn: u64,
}

pub struct Corpus<'a, 'k> {
    pub runs: &'a [Run],
    pub experiments: &'a [Experiment],
    pub keys: &'k Keys,
    pub rng: StdRng,
    pub dir: PathBuf,
    pub start: i64,
    pub end: i64,
    pub scale: Scale,
}

pub(super) fn author_of(project: Project) -> usize {
    match project {
        Project::Pretrain | Project::Tokenizer => 0,
        Project::FlashAttn | Project::Kernels => 1,
        Project::Moe | Project::Vit => 2,
    }
}

fn title(project: Project, config: &str, suffix: &str, seeds: usize) -> String {
    let what = match project {
        Project::Pretrain => format!("1B-parameter LM pretraining with {config}"),
        Project::FlashAttn => format!("FlashAttention-2 throughput, {config}"),
        Project::Moe => format!("MoE router ablation: {config}"),
        Project::Vit => format!("ViT-B/16 fine-tuning on ImageNet-1k: {config}"),
        Project::Tokenizer => format!("Tokenizer scaling: {config}"),
        Project::Kernels => format!("FP4 GEMM kernel campaign: {config}"),
    };
    let kind = match suffix {
        "" => "results",
        "-report" => "report",
        "-seed-study" => "seed study",
        "-ablation" => "ablation notes",
        "-repro" => "reproduction",
        "-notes" => "lab notes",
        _ => "summary",
    };
    format!("{what} ({kind}, {seeds} run{})", if seeds == 1 { "" } else { "s" })
}

/// Why v2 of an artifact replaces v1.
fn v2_reason(project: Project) -> &'static str {
    match project {
        Project::Pretrain | Project::Moe | Project::Tokenizer => {
            "v2 re-runs the evaluation with the fixed tokenizer; v1 reported val/loss on the wrong split"
        }
        Project::FlashAttn => "v2 fixes the FLOP count for causal masking; v1 overstated TFLOP/s",
        Project::Vit => "v2 evaluates on the full 50k validation images; v1 used a 10k subset",
        Project::Kernels => "v2 adds the second campaign's seeds and the tolerance table",
    }
}

const SUFFIXES: [&str; 8] =
    ["", "-report", "-seed-study", "-ablation", "-repro", "-notes", "-summary", "-appendix"];

impl<'a, 'k> Corpus<'a, 'k> {
    /// Plans, emits and checks the corpus; returns what the audit should conclude.
    pub fn build(mut self, tl: &mut Timeline) -> Result<CorpusOutcome, String> {
        let facts = Facts::new(self.runs);
        let plans = self.plan_slugs();
        let mut claims = Vec::new();
        for p in &plans {
            claims.extend(self.claims_for(&facts, p));
        }
        let actions = self.actions(&plans);
        let mut outcome = self.emit_corpus(tl, &plans, &actions, &claims)?;
        // Claims every history should have, whatever the dice said, on canonical artifacts.
        claims.extend(self.coverage(&facts, &plans, &claims, &outcome));
        // Claims over groups of runs, and a preregistered study (after every draw above, so
        // the rest of the history is what it was without them).
        claims.extend(self.group_claims(tl, &facts, &plans, &claims, &mut outcome)?);
        self.emit_claims(tl, &facts, &plans, &claims, &mut outcome);
        Ok(outcome)
    }

    fn time_text(t: i64) -> String {
        DateTime::<Utc>::from_timestamp_nanos(t).format("%Y-%m-%d").to_string()
    }

    /// When a slug about `runs` can be submitted: after their evidence, before the end.
    fn ready_at(&mut self, runs: &[usize], not_before: i64) -> Option<i64> {
        let last = runs.iter().filter_map(|&r| self.runs[r].evidence.as_ref().map(|e| e.0)).max()?;
        let from = last.max(not_before) + 20 * MIN;
        let latest = self.end - 2 * HOUR;
        if from >= latest {
            return None;
        }
        let spread = (latest - from).min(2 * 24 * HOUR);
        Some(from + self.rng.gen_range(0..spread.max(1)))
    }

    fn plan_slugs(&mut self) -> Vec<SlugPlan> {
        let mut plans: Vec<SlugPlan> = Vec::new();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut submissions = 0u64;
        let target = u64::from(self.scale.artifacts);
        // Flows every history shows at least once, given to the first slugs that fit.
        let mut forced: Vec<Flow> = vec![
            Flow::Superseded { stale_v1: true },
            Flow::ContentDuplicate,
            Flow::SlugDuplicate,
            Flow::Superseded { stale_v1: false },
        ];
        let mut last_time: BTreeMap<usize, i64> = BTreeMap::new();
        // Experiments that tried the same configuration again are told apart by ordinal.
        let mut seen: BTreeMap<(Project, &str), usize> = BTreeMap::new();
        let ordinal: Vec<usize> = self
            .experiments
            .iter()
            .map(|e| {
                let n = seen.entry((e.project, e.config)).or_default();
                *n += 1;
                *n
            })
            .collect();
        let mut early_done = false;
        let mut no_evidence_done = false;
        'rounds: for suffix in SUFFIXES {
            let mut order: Vec<usize> = (0..self.experiments.len()).collect();
            order.shuffle(&mut self.rng);
            for e in order {
                if submissions >= target {
                    break 'rounds;
                }
                let exp = &self.experiments[e];
                if exp
                    .runs
                    .iter()
                    .all(|&r| matches!(self.runs[r].outcome, Outcome::Stale | Outcome::CancelQueued))
                {
                    continue;
                }
                let with_evidence: Vec<usize> =
                    exp.runs.iter().copied().filter(|&r| self.runs[r].evidence.is_some()).collect();
                let project = exp.project;
                let base = match ordinal[e] {
                    1 => exp.config.to_owned(),
                    n => format!("{}-sweep{n}", exp.config),
                };
                let slug = format!("{}/{base}{}", project.name(), suffix);
                if used.contains(&slug) {
                    continue;
                }
                let after = last_time.get(&e).copied().unwrap_or(self.start);
                // An early submission: a run of this experiment still running.
                let running = exp.runs.iter().copied().find(|&r| {
                    let run = &self.runs[r];
                    run.started.is_some_and(|s| s > after)
                        && run.finished.is_none_or(|f| f - run.started.unwrap_or(f) > 3 * HOUR)
                        && run.cancelled.is_none()
                });
                let no_evidence = exp.runs.iter().copied().find(|&r| {
                    self.runs[r].outcome == Outcome::NoEvidence && self.runs[r].finished.is_some()
                });
                let mut flow;
                let mut was_forced = false;
                if let Some(r) = no_evidence
                    && (!no_evidence_done || self.rng.gen_bool(0.2))
                {
                    flow = Flow::NoEvidence(r);
                    no_evidence_done = true;
                } else if let Some(r) = running
                    && (!early_done || self.rng.gen_bool(0.04))
                {
                    flow = Flow::Early(r);
                    early_done = true;
                } else if with_evidence.is_empty() {
                    continue;
                } else if let Some(f) = forced.pop() {
                    flow = f;
                    was_forced = true;
                } else {
                    let x: f64 = self.rng.gen_range(0.0..1.0);
                    flow = match x {
                        x if x < 0.06 => Flow::Superseded { stale_v1: self.rng.gen_bool(0.3) },
                        x if x < 0.10 => Flow::SlugDuplicate,
                        x if x < 0.14 => Flow::ContentDuplicate,
                        _ => Flow::Normal,
                    };
                }
                let (runs, time) = match flow {
                    Flow::Early(r) => {
                        let run = &self.runs[r];
                        let s = run.started.unwrap_or(self.end);
                        let f = run.finished.unwrap_or(self.end);
                        let time = s + (f.min(self.end) - s) / 3;
                        let mut runs: Vec<usize> = with_evidence
                            .iter()
                            .copied()
                            .filter(|&o| {
                                self.runs[o].evidence.as_ref().is_some_and(|e| e.0 < time - 20 * MIN)
                            })
                            .collect();
                        runs.push(r);
                        (runs, time)
                    }
                    Flow::NoEvidence(r) => {
                        let mut runs = with_evidence.clone();
                        let finished = self.runs[r].finished.unwrap_or(self.end);
                        let time = match self.ready_at(&runs, after.max(finished)) {
                            Some(t) => t,
                            None if runs.is_empty() => {
                                finished.max(after) + self.rng.gen_range(HOUR..20 * HOUR)
                            }
                            None => continue,
                        };
                        runs.push(r);
                        (runs, time)
                    }
                    _ => {
                        let Some(time) = self.ready_at(&with_evidence, after) else {
                            if was_forced {
                                forced.push(flow);
                            }
                            continue;
                        };
                        (with_evidence.clone(), time)
                    }
                };
                if time >= self.end - 2 * HOUR || time <= self.start {
                    if was_forced {
                        forced.push(flow);
                    }
                    continue;
                }
                if let Flow::Superseded { .. } | Flow::SlugDuplicate | Flow::ContentDuplicate = flow
                    && time > self.end - 30 * HOUR
                {
                    // Not enough history left for the follow-ups: another slug gets this flow.
                    if was_forced {
                        forced.push(flow);
                    }
                    flow = Flow::Normal;
                }
                submissions += match flow {
                    Flow::Normal => 1,
                    Flow::Superseded { stale_v1 } => 3 + u64::from(stale_v1),
                    Flow::SlugDuplicate | Flow::ContentDuplicate | Flow::Early(_) | Flow::NoEvidence(_) => 2,
                };
                last_time.insert(e, time);
                used.insert(slug.clone());
                let seeds = runs.len();
                plans.push(SlugPlan {
                    title: title(project, exp.config, suffix, seeds),
                    slug,
                    project,
                    author: author_of(project),
                    runs,
                    time,
                    flow,
                });
            }
        }
        plans
    }

    /// The corpus events of every slug, in time order.
    fn actions(&mut self, plans: &[SlugPlan]) -> Vec<(i64, Action)> {
        let mut out = Vec::new();
        let limit = self.end - 20 * MIN;
        for (k, p) in plans.iter().enumerate() {
            let t = p.time;
            let submit =
                |version, runs: Vec<usize>, content| Action::Submit { slug: k, version, runs, content };
            match p.flow {
                Flow::Normal => out.push((t, submit(1, p.runs.clone(), Content::Own))),
                Flow::Superseded { stale_v1 } => {
                    out.push((t, submit(1, p.runs.clone(), Content::Own)));
                    let t2 = t + self.rng.gen_range(4 * HOUR..20 * HOUR);
                    out.push((t2, submit(2, p.runs.clone(), Content::Own)));
                    out.push((t2 + HOUR, Action::Supersede { slug: k, version: 1, by: 2 }));
                    out.push((t2 + 2 * HOUR, submit(2, p.runs.clone(), Content::Own)));
                    if stale_v1 {
                        out.push((t2 + 5 * HOUR, submit(1, p.runs.clone(), Content::Own)));
                    }
                }
                Flow::SlugDuplicate => {
                    out.push((t, submit(1, p.runs.clone(), Content::Own)));
                    out.push((
                        t + self.rng.gen_range(2 * HOUR..20 * HOUR),
                        submit(2, p.runs.clone(), Content::Own),
                    ));
                }
                Flow::ContentDuplicate => {
                    out.push((t, submit(1, p.runs.clone(), Content::Own)));
                    // The copy is a slug of its own, planned right after this one (see below).
                }
                Flow::Early(r) => {
                    out.push((t, submit(1, p.runs.clone(), Content::Own)));
                    if let Some((e, _)) = &self.runs[r].evidence {
                        let again = e + self.rng.gen_range(HOUR..6 * HOUR);
                        if again < limit {
                            out.push((again, submit(1, p.runs.clone(), Content::Own)));
                        }
                    }
                }
                Flow::NoEvidence(r) => {
                    out.push((t, submit(1, p.runs.clone(), Content::Own)));
                    let without: Vec<usize> = p.runs.iter().copied().filter(|&x| x != r).collect();
                    if !without.is_empty() {
                        out.push((t + 3 * HOUR, submit(1, without, Content::Own)));
                    }
                }
            }
        }
        // Copies under a second slug: appended as extra plans' actions by index.
        let copies: Vec<(usize, i64)> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| p.flow == Flow::ContentDuplicate)
            .map(|(k, p)| (k, p.time + self.rng.gen_range(2 * HOUR..20 * HOUR)))
            .collect();
        for (k, t) in copies {
            out.push((
                t,
                Action::Submit {
                    slug: plans.len() + k,
                    version: 1,
                    runs: plans[k].runs.clone(),
                    content: Content::CopyOf(k),
                },
            ));
        }
        out.retain(|(t, _)| *t < limit);
        out.sort_by_key(|(t, _)| *t);
        out
    }

    /// The slug of a copy (`plans.len() + k` stands for the copy of plan `k`).
    fn slug_name(plans: &[SlugPlan], index: usize) -> String {
        if index < plans.len() {
            plans[index].slug.clone()
        } else {
            let p = &plans[index - plans.len()];
            let who = AUTHORS[(p.author + 1) % AUTHORS.len()];
            format!("{}-{who}-draft", p.slug)
        }
    }

    fn files(
        &self,
        plans: &[SlugPlan],
        slug: usize,
        version: u64,
        runs: &[usize],
        claims: &[ClaimPlan],
    ) -> FileSet {
        let p = &plans[slug];
        let mut readme = format!(
            "# {}\n\nversion {version}, {}\n\nRuns: {}\n\n## Claims\n\n",
            p.title,
            Self::time_text(p.time),
            runs.iter().map(|&r| self.runs[r].id.as_str()).collect::<Vec<_>>().join(", ")
        );
        for c in claims.iter().filter(|c| c.slug == p.slug) {
            readme.push_str(&format!("- **{}**: {}\n", c.id, c.statement));
        }
        if version > 1 {
            readme.push_str(&format!("\n## Changes\n\n{}.\n", v2_reason(p.project)));
        }
        let mut summary = serde_json::Map::new();
        for &r in runs {
            let run = &self.runs[r];
            let last: serde_json::Map<String, serde_json::Value> = run
                .series
                .iter()
                .filter_map(|s| {
                    Some((s.def.name.to_owned(), json!(metrics::aggregate(Agg::Last, &s.points)?)))
                })
                .collect();
            summary.insert(
                run.id.clone(),
                json!({"config": run.config, "seed": run.seed, "exit_code": run.exit_code, "last": last}),
            );
        }
        let mut set = FileSet::new();
        set.add("README.md", readme);
        set.add(
            "results.json",
            format!("{:#}\n", json!({"slug": p.slug, "version": version, "runs": summary})),
        );
        if p.project != Project::Kernels {
            let metric = metrics::headline(p.project);
            let mut csv = format!("run,step,{metric}\n");
            for &r in runs {
                if let Some(s) = self.runs[r].series(metric) {
                    for pt in &s.points {
                        csv.push_str(&format!("{},{},{}\n", self.runs[r].id, pt.step, pt.value));
                    }
                }
            }
            set.add("figures/curves.csv", csv);
        }
        set
    }

    fn emit_corpus(
        &mut self,
        tl: &mut Timeline,
        plans: &[SlugPlan],
        actions: &[(i64, Action)],
        claims: &[ClaimPlan],
    ) -> Result<CorpusOutcome, String> {
        let mut out = CorpusOutcome::default();
        // The gate's inputs: canonical version and highest admitted version per slug, and
        // admitted content digests.
        let mut canonical: BTreeMap<String, u64> = BTreeMap::new();
        let mut max_admitted: BTreeMap<String, u64> = BTreeMap::new();
        let mut admitted_content: BTreeMap<String, String> = BTreeMap::new();
        // Written content of (plan, version) for copies and resubmissions.
        let mut written: BTreeMap<(usize, u64), super::evidence::Written> = BTreeMap::new();
        for (t, action) in actions {
            match action {
                Action::Submit { slug, version, runs, content } => {
                    let name = Self::slug_name(plans, *slug);
                    let owner = if *slug < plans.len() { *slug } else { *slug - plans.len() };
                    let source = match content {
                        Content::Own => (owner, *version),
                        Content::CopyOf(k) => (*k, 1),
                    };
                    let w = match written.get(&source) {
                        Some(w) if *content != Content::Own => {
                            // The copy's folder holds the same bytes as the original's.
                            let folder = self.dir.join(&name).join(format!("v{version}"));
                            let (k, v) = source;
                            self.files(plans, k, v, &plans[k].runs, claims)
                                .write(&folder)
                                .map_err(|e| format!("writing {}: {e}", folder.display()))?;
                            w.clone()
                        }
                        Some(w) if runs == &plans[owner].runs => w.clone(),
                        _ => {
                            let folder = self.dir.join(&name).join(format!("v{version}"));
                            let w = self
                                .files(plans, owner, *version, runs, claims)
                                .write(&folder)
                                .map_err(|e| format!("writing {}: {e}", folder.display()))?;
                            written.insert(source, w.clone());
                            w
                        }
                    };
                    let mut reasons = Vec::new();
                    for &r in runs {
                        let run = &self.runs[r];
                        if run.finished.is_none_or(|f| f >= *t) {
                            reasons.push(format!("run_not_finished:{}", run.id));
                        }
                        if run.evidence.as_ref().is_none_or(|e| e.0 >= *t) {
                            reasons.push(format!("run_without_evidence:{}", run.id));
                        }
                    }
                    if let Some(first) = admitted_content.get(&w.digest) {
                        reasons.push(format!("content_duplicate_of:{first}"));
                    }
                    if let Some(c) = canonical.get(&name) {
                        reasons.push(format!("slug_canonical:{name}@{c}"));
                    }
                    if max_admitted.get(&name).is_some_and(|m| version <= m) {
                        reasons.push("version_not_newer".into());
                    }
                    let data = json!({
                        "slug": name,
                        "version": version,
                        "title": plans[owner].title,
                        "content_digest": w.digest,
                        "runs": runs.iter().map(|&r| self.runs[r].id.clone()).collect::<Vec<_>>(),
                        "files": w.files,
                        "generator": GENERATOR,
                    });
                    let author = if *slug < plans.len() {
                        plans[owner].author
                    } else {
                        (plans[owner].author + 1) % AUTHORS.len()
                    };
                    tl.emit(
                        &self.keys.authors[author],
                        "artifact.submitted",
                        &format!("artifact/{name}"),
                        data,
                        *t,
                    );
                    out.submitted += 1;
                    if reasons.is_empty() {
                        out.admitted += 1;
                        canonical.insert(name.clone(), *version);
                        let m = max_admitted.entry(name.clone()).or_insert(*version);
                        *m = (*m).max(*version);
                        admitted_content.entry(w.digest.clone()).or_insert(name);
                    } else {
                        out.rejected += 1;
                    }
                }
                Action::Supersede { slug, version, by } => {
                    let name = Self::slug_name(plans, *slug);
                    let data = json!({
                        "slug": name, "version": version, "by": by,
                        "reason": v2_reason(plans[*slug].project),
                    });
                    tl.emit(&self.keys.admin, "artifact.superseded", &format!("artifact/{name}"), data, *t);
                    out.superseded += 1;
                    if canonical.get(&name) == Some(version) {
                        canonical.remove(&name);
                    }
                }
            }
        }
        out.canonical = canonical;
        Ok(out)
    }

    /// The evidence bundles a claim about `runs` cites: theirs, else the slug's.
    /// Only bundles captured before `time`: a claim cites what exists when it is made.
    fn evidence_for(&self, runs: &[usize], slug_runs: &[usize], time: i64) -> Vec<String> {
        let before = |rs: &[usize]| -> Vec<String> {
            rs.iter()
                .filter_map(|&r| self.runs[r].evidence.as_ref().filter(|e| e.0 < time).map(|e| e.1.clone()))
                .collect()
        };
        let mut ev = before(runs);
        if ev.is_empty() {
            ev = before(slug_runs);
        }
        ev.sort();
        ev.dedup();
        ev
    }

    pub(super) fn claim(
        &mut self,
        facts: &Facts,
        p: &SlugPlan,
        n: usize,
        check: Check,
        time: i64,
    ) -> ClaimPlan {
        let evidence = self.evidence_for(&check.runs(facts), &p.runs, time);
        let statement = check.statement(self.runs);
        ClaimPlan {
            slug: p.slug.clone(),
            id: format!("c{n}"),
            check,
            statement,
            location: format!("README.md#claims, item {n}"),
            evidence,
            time,
            registered_at: None,
            author: p.author,
            withdraw: None,
        }
    }

    fn claims_for(&mut self, facts: &Facts, p: &SlugPlan) -> Vec<ClaimPlan> {
        let mut out = Vec::new();
        let t = p.time + self.rng.gen_range(5 * MIN..40 * MIN);
        if p.project == Project::Kernels {
            return self.kernel_claims(facts, p, t);
        }
        let runs: Vec<usize> = p
            .runs
            .iter()
            .copied()
            .filter(|&r| self.runs[r].evidence.as_ref().is_some_and(|e| e.0 < t))
            .collect();
        let Some(&main) = runs.choose(&mut self.rng) else { return out };
        let headline = metrics::headline(p.project);
        let agg = *metrics::AGGS.choose(&mut self.rng).unwrap_or(&Agg::Last);
        // In superseded artifacts, v1's headline claim is the one v2 corrects.
        let wrong = matches!(p.flow, Flow::Superseded { .. }) || self.rng.gen_bool(0.08);
        if let Some(c) = claims::metric_claim(facts, main, headline, agg, wrong) {
            out.push(self.claim(facts, p, 1, c, t));
        }
        if self.rng.gen_bool(0.5)
            && let Some(&r) = runs.choose(&mut self.rng)
        {
            let n = out.len() + 1;
            out.push(self.claim(facts, p, n, Check::Completed { run: r }, t));
        }
        if self.rng.gen_bool(0.4) {
            // Against the project's baseline configuration, finished before this artifact.
            let baselines: Vec<usize> = self
                .runs
                .iter()
                .enumerate()
                .filter(|(i, r)| {
                    r.project == p.project
                        && r.config == p.project.configs()[0].0
                        && !runs.contains(i)
                        && r.evidence.as_ref().is_some_and(|e| e.0 < p.time)
                        && r.series(headline).is_some()
                })
                .map(|(i, _)| i)
                .collect();
            if let Some(&b) = baselines.choose(&mut self.rng) {
                let agg = if self.rng.gen_bool(0.5) { Agg::Mean } else { Agg::Last };
                let wrong = self.rng.gen_bool(0.15);
                if let Some(c) = claims::compare_claim(facts, main, b, headline, agg, wrong) {
                    let n = out.len() + 1;
                    out.push(self.claim(facts, p, n, c, t));
                }
            }
        }
        if self.rng.gen_bool(0.3) {
            let defs = metrics::defs(p.project);
            let def = defs[self.rng.gen_range(0..defs.len())];
            let agg = *metrics::AGGS.choose(&mut self.rng).unwrap_or(&Agg::Min);
            if def.name != "lr"
                && let Some(c) = claims::metric_claim(facts, main, def.name, agg, self.rng.gen_bool(0.06))
            {
                let n = out.len() + 1;
                out.push(self.claim(facts, p, n, c, t));
            }
        }
        if self.rng.gen_bool(0.04) {
            let metric = metrics::never_logged(p.project).to_owned();
            let c = Check::Metric { run: main, metric, agg: Agg::Max, op: Op::Gt, value: "0.5".into() };
            let n = out.len() + 1;
            out.push(self.claim(facts, p, n, c, t));
        }
        out
    }

    fn kernel_claims(&mut self, facts: &Facts, p: &SlugPlan, t: i64) -> Vec<ClaimPlan> {
        let blackwell = self
            .runs
            .get(p.runs.first().copied().unwrap_or(0))
            .is_some_and(|r| r.outcome == Outcome::Campaign { blackwell: true });
        let checks: Vec<Check> = if blackwell {
            vec![
                Check::Kernel {
                    kernel: "fp4_dequant_matmul",
                    variant: Some(json!({"format": "nvfp4"})),
                    backend: Some("cpu"),
                },
                Check::Kernel {
                    kernel: "fp4_dequant_matmul",
                    variant: Some(json!({"format": "mxfp4"})),
                    backend: None,
                },
                Check::Kernel {
                    kernel: "fp4_dequant_matmul",
                    variant: Some(json!({"format": "nvfp4"})),
                    backend: None,
                },
            ]
        } else {
            let mut v = vec![
                Check::Kernel { kernel: "saxpy", variant: None, backend: Some("cpu") },
                Check::Kernel {
                    kernel: "matmul_tiled",
                    variant: Some(json!({"tile": 16})),
                    backend: Some("cpu"),
                },
                Check::Kernel { kernel: "reduce_sum", variant: None, backend: None },
                Check::Kernel { kernel: "softmax_rows", variant: None, backend: Some("cpu") },
            ];
            v.shuffle(&mut self.rng);
            v.truncate(self.rng.gen_range(1..=3));
            if self.rng.gen_bool(0.5) {
                v.push(Check::Kernel { kernel: "matmul_tiled_broken", variant: None, backend: None });
            }
            v
        };
        checks.into_iter().enumerate().map(|(n, c)| self.claim(facts, p, n + 1, c, t)).collect()
    }

    /// Claims the scenario must show (every check kind and agg, every verdict and the main
    /// reasons), added to canonical artifacts when the dice did not produce them.
    fn coverage(
        &mut self,
        facts: &Facts,
        plans: &[SlugPlan],
        claims: &[ClaimPlan],
        outcome: &CorpusOutcome,
    ) -> Vec<ClaimPlan> {
        let canonical: Vec<&SlugPlan> = plans
            .iter()
            .filter(|p| outcome.canonical.contains_key(&p.slug) && p.project != Project::Kernels)
            .collect();
        let Some(host) = canonical.iter().max_by_key(|p| p.time).copied() else { return Vec::new() };
        let kernel_host = plans
            .iter()
            .filter(|p| outcome.canonical.contains_key(&p.slug) && p.project == Project::Kernels)
            .max_by_key(|p| p.time)
            .unwrap_or(host);
        let counted: Vec<&ClaimPlan> =
            claims.iter().filter(|c| outcome.canonical.contains_key(&c.slug)).collect();
        let has = |pred: &dyn Fn(&ClaimPlan, Verdict, &[String]) -> bool| {
            counted.iter().any(|c| {
                let (v, r) = facts.expect(&c.check, &c.evidence);
                pred(c, v, &r)
            })
        };
        let mut wanted: Vec<Check> = Vec::new();
        let find = |pred: &dyn Fn(&Run) -> bool| self.runs.iter().position(pred);
        let clean =
            find(&|r: &Run| r.clean() && r.succeeded() && r.project == host.project && !r.series.is_empty())
                .or_else(|| find(&|r: &Run| r.clean() && r.succeeded() && !r.series.is_empty()));
        let headline_of = |r: usize| metrics::headline(self.runs[r].project);
        for agg in metrics::AGGS {
            if !has(&|c, v, _| {
                v == Verdict::Supported && matches!(&c.check, Check::Metric { agg: a, .. } if *a == agg)
            }) && let Some(r) = clean
                && let Some(c) = claims::metric_claim(facts, r, headline_of(r), agg, false)
            {
                wanted.push(c);
            }
        }
        if !has(&|_, _, r| r.iter().any(|x| x == "value_mismatch"))
            && let Some(r) = clean
            && let Some(c) = claims::metric_claim(facts, r, headline_of(r), Agg::Last, true)
        {
            wanted.push(c);
        }
        for wrong in [false, true] {
            if !has(&|c, v, _| {
                matches!(c.check, Check::Compare { .. })
                    && (v == Verdict::Supported) != wrong
                    && (v == Verdict::Contradicted) == wrong
            }) && let Some(r) = clean
            {
                let project = self.runs[r].project;
                let baseline = self.runs.iter().position(|b| {
                    b.project == project
                        && b.clean()
                        && b.id != self.runs[r].id
                        && b.series(headline_of(r)).is_some()
                });
                if let Some(b) = baseline
                    && let Some(c) = claims::compare_claim(facts, r, b, headline_of(r), Agg::Mean, wrong)
                {
                    wanted.push(c);
                }
            }
        }
        if !has(&|c, v, _| matches!(c.check, Check::Completed { .. }) && v == Verdict::Supported)
            && let Some(r) = clean
        {
            wanted.push(Check::Completed { run: r });
        }
        let failed = find(&|r: &Run| {
            r.finished.is_some()
                && !r.succeeded()
                && r.quiesced.is_some()
                && r.evidence.is_some()
                && !r.tainted()
        });
        if !has(&|_, v, r| v == Verdict::Contradicted && r.iter().any(|x| x == "run_failed"))
            && let Some(r) = failed
        {
            wanted.push(Check::Completed { run: r });
        }
        if !has(&|_, _, r| r.iter().any(|x| x == "metric_missing"))
            && let Some(r) = clean
        {
            let metric = metrics::never_logged(self.runs[r].project).to_owned();
            wanted.push(Check::Metric { run: r, metric, agg: Agg::Max, op: Op::Gt, value: "0.5".into() });
        }
        // A claim on a run still going: made once the run has logged for a while.
        let long = find(&|r: &Run| r.outcome == Outcome::Long && r.started.is_some() && !r.series.is_empty());
        if !has(&|_, _, r| r.iter().any(|x| x == "run_not_finished"))
            && let Some(r) = long
            && let Some(c) = claims::metric_claim(facts, r, "train/loss", Agg::Min, false)
        {
            wanted.push(c);
        }
        let unquiet = find(&|r: &Run| {
            r.finished.is_some()
                && r.quiesced.is_none()
                && r.evidence.is_some()
                && !r.tainted()
                && !r.series.is_empty()
        });
        if !has(&|_, _, r| r.iter().any(|x| x == "run_not_quiesced"))
            && let Some(r) = unquiet
            && let Some(c) = claims::metric_claim(facts, r, headline_of(r), Agg::Last, false)
        {
            wanted.push(c);
        }
        let no_evidence =
            find(&|r: &Run| r.outcome == Outcome::NoEvidence && r.finished.is_some() && !r.series.is_empty());
        if !has(&|_, _, r| r.iter().any(|x| x == "run_without_evidence"))
            && let Some(r) = no_evidence
            && let Some(c) = claims::metric_claim(facts, r, headline_of(r), Agg::Mean, false)
        {
            wanted.push(c);
        }
        let tainted = find(&|r: &Run| {
            r.tainted() && r.finished.is_some() && r.evidence.is_some() && !r.series.is_empty()
        });
        if !has(&|_, v, _| v == Verdict::Tainted)
            && let Some(r) = tainted
            && let Some(c) = claims::metric_claim(facts, r, headline_of(r), Agg::Last, false)
        {
            wanted.push(c);
        }
        let mut kernel_wanted = Vec::new();
        for (kernel, variant, backend, want) in [
            ("saxpy", None, Some("cpu"), "supported"),
            ("matmul_tiled_broken", None, None, "kernel_failed"),
            ("fp4_dequant_matmul", Some(json!({"format": "nvfp4"})), None, "kernel_faulted"),
            ("softmax_rows", None, Some("cuda"), "kernel_missing"),
        ] {
            let present = has(&|c, v, r| {
                matches!(c.check, Check::Kernel { .. })
                    && if want == "supported" { v == Verdict::Supported } else { r.iter().any(|x| x == want) }
            });
            if !present {
                kernel_wanted.push(Check::Kernel { kernel, variant, backend });
            }
        }
        // Two claims that their author withdraws: one the data contradicts, one it supports.
        let mut withdrawals = Vec::new();
        if let Some(r) = clean {
            let metric = headline_of(r);
            if let Some(c) = claims::metric_claim(facts, r, metric, Agg::Max, true) {
                withdrawals.push((c, "threshold copied from the best seed; the claim is about a single run"));
            }
            if let Some(c) = claims::metric_claim(facts, r, metric, Agg::Mean, false) {
                withdrawals.push((c, "replaced by a claim on the full evaluation suite"));
            }
        }
        let mut out = Vec::new();
        let mut add = |corpus: &mut Self, p: &SlugPlan, check: Check, withdraw: Option<&'static str>| {
            let n = claims.iter().filter(|c| c.slug == p.slug).count()
                + out.iter().filter(|c: &&ClaimPlan| c.slug == p.slug).count()
                + 1;
            // After everything it rests on has been logged, before the history ends.
            let latest = check
                .runs(facts)
                .iter()
                .filter_map(|&r| {
                    let run = &corpus.runs[r];
                    run.evidence.as_ref().map(|e| e.0).or(run.finished).or(run.started.map(|s| s + 6 * HOUR))
                })
                .max()
                .unwrap_or(p.time);
            let time = (latest.max(p.time) + 30 * MIN).min(corpus.end - 10 * MIN);
            let c = corpus.claim(facts, p, n, check, time);
            out.push(ClaimPlan { location: "README.md#addendum".into(), withdraw, ..c });
        };
        for check in wanted {
            add(self, host, check, None);
        }
        for check in kernel_wanted {
            add(self, kernel_host, check, None);
        }
        for (check, reason) in withdrawals {
            add(self, host, check, Some(reason));
        }
        out
    }

    fn emit_claims(
        &mut self,
        tl: &mut Timeline,
        facts: &Facts,
        plans: &[SlugPlan],
        claims: &[ClaimPlan],
        outcome: &mut CorpusOutcome,
    ) {
        let mut expectations = Expectations::default();
        for c in claims {
            if let Some(at) = c.registered_at {
                // The check as registered before its runs: nothing to cite yet.
                let data = json!({
                    "artifact": c.slug, "claim": c.id, "statement": c.statement,
                    "location": "PREREGISTRATION.md", "check": c.check.json(self.runs), "evidence": [],
                });
                tl.emit(
                    &self.keys.authors[c.author],
                    "claim.asserted",
                    &format!("artifact/{}", c.slug),
                    data,
                    at,
                );
            }
            if facts.preregistered(&c.check, c.registered_at.unwrap_or(c.time)) {
                expectations.preregistered.insert((c.slug.clone(), c.id.clone()));
            }
            let data = json!({
                "artifact": c.slug, "claim": c.id, "statement": c.statement, "location": c.location,
                "check": c.check.json(self.runs), "evidence": c.evidence,
            });
            tl.emit(
                &self.keys.authors[c.author],
                "claim.asserted",
                &format!("artifact/{}", c.slug),
                data,
                c.time,
            );
            expectations.claims.insert((c.slug.clone(), c.id.clone()), facts.expect(&c.check, &c.evidence));
        }
        // v2 of a superseded artifact corrects v1's headline claim.
        for p in plans.iter().filter(|p| matches!(p.flow, Flow::Superseded { .. })) {
            let Some(c1) = claims.iter().find(|c| c.slug == p.slug && c.id == "c1") else { continue };
            let Check::Metric { run, metric, agg, .. } = &c1.check else { continue };
            let Some(fixed) = claims::metric_claim(facts, *run, metric, *agg, false) else { continue };
            let time = (c1.time + 26 * HOUR).min(self.end - 5 * MIN);
            let statement = format!("{} (corrected in v2)", fixed.statement(self.runs));
            let data = json!({
                "artifact": p.slug, "claim": "c1", "statement": statement, "location": "README.md#claims, item 1",
                "check": fixed.json(self.runs), "evidence": c1.evidence,
            });
            tl.emit(
                &self.keys.authors[p.author],
                "claim.asserted",
                &format!("artifact/{}", p.slug),
                data,
                time,
            );
            expectations.claims.insert((p.slug.clone(), "c1".into()), facts.expect(&fixed, &c1.evidence));
            // A new check is registered anew, when it is asserted.
            let key = (p.slug.clone(), "c1".to_owned());
            if facts.preregistered(&fixed, time) {
                expectations.preregistered.insert(key);
            } else {
                expectations.preregistered.remove(&key);
            }
        }
        let mut withdrawn = 0;
        for c in claims {
            if let Some(reason) = c.withdraw {
                let data = json!({"artifact": c.slug, "claim": c.id, "reason": reason});
                let time = (c.time + 3 * HOUR).min(self.end - MIN);
                tl.emit(
                    &self.keys.authors[c.author],
                    "claim.withdrawn",
                    &format!("artifact/{}", c.slug),
                    data,
                    time,
                );
                expectations.claims.remove(&(c.slug.clone(), c.id.clone()));
                expectations.preregistered.remove(&(c.slug.clone(), c.id.clone()));
                withdrawn += 1;
            }
        }
        outcome.withdrawn = withdrawn;
        outcome.expectations = expectations;
    }
}

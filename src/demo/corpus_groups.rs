//! Claims over groups of runs in the corpus: for each kind (`group`, `compare_groups`,
//! `replicated`) one claim the data supports, one it contradicts and one it leaves
//! inconclusive; some preregistered (first asserted before their runs started, restated with
//! evidence once it exists); and a preregistered study, an artifact submitted with
//! `require_preregistration` whose second claim was made after the runs (post hoc), so it does
//! not pass.

use std::collections::BTreeMap;

use serde_json::json;

use super::claims::{Check, ClaimPlan, Facts};
use super::corpus::{Corpus, CorpusOutcome, Flow, SlugPlan, author_of};
use super::evidence::FileSet;
use super::groups::{Fit, GroupCheck};
use super::lab::{GENERATOR, HOUR, MIN, Project};
use super::metrics::{self, Better};
use super::timeline::Timeline;
use assay_projections::audit::Agg;

/// A seed group (runs of one configuration) and the baseline group it is compared with.
struct Comparison {
    runs: Vec<usize>,
    baseline: Vec<usize>,
}

impl Corpus<'_, '_> {
    /// Runs fit for group claims, by (project, configuration), in id order: clean, exit 0,
    /// with the project's headline metric.
    fn seed_groups(&self) -> BTreeMap<(&'static str, &'static str), Vec<usize>> {
        let mut groups: BTreeMap<(&'static str, &'static str), Vec<usize>> = BTreeMap::new();
        for (i, r) in self.runs.iter().enumerate() {
            if r.project != Project::Kernels
                && r.clean()
                && r.succeeded()
                && r.series(metrics::headline(r.project)).is_some()
            {
                groups.entry((r.project.name(), r.config)).or_default().push(i);
            }
        }
        for runs in groups.values_mut() {
            runs.sort_by(|a, b| self.runs[*a].id.cmp(&self.runs[*b].id));
        }
        groups
    }

    /// Configurations against their project's baseline (or, without one, its largest other
    /// group), largest first.
    fn comparisons(&self, groups: &BTreeMap<(&'static str, &'static str), Vec<usize>>) -> Vec<Comparison> {
        let mut out = Vec::new();
        for project in Project::TRAINING {
            let of: Vec<(&str, &Vec<usize>)> =
                groups.iter().filter(|((p, _), _)| *p == project.name()).map(|((_, c), r)| (*c, r)).collect();
            let baseline = of
                .iter()
                .find(|(c, _)| *c == project.configs()[0].0)
                .or_else(|| of.iter().max_by_key(|(c, r)| (r.len(), *c)))
                .copied();
            let Some((base_config, base)) = baseline else { continue };
            for (config, runs) in &of {
                if *config != base_config && runs.len() + base.len() >= 3 {
                    out.push(Comparison { runs: (*runs).clone(), baseline: base.clone() });
                }
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.runs.len() + c.baseline.len()));
        out
    }

    /// The group claims and the preregistered study; emits the study's submission.
    pub(super) fn group_claims(
        &mut self,
        tl: &mut Timeline,
        facts: &Facts,
        plans: &[SlugPlan],
        claims: &[ClaimPlan],
        outcome: &mut CorpusOutcome,
    ) -> Result<Vec<ClaimPlan>, String> {
        let groups = self.seed_groups();
        let seeds: Vec<&Vec<usize>> = {
            let mut s: Vec<&Vec<usize>> = groups.values().filter(|r| r.len() >= 2).collect();
            s.sort_by_key(|r| std::cmp::Reverse(r.len()));
            s
        };
        let comparisons = self.comparisons(&groups);
        let better = |r: usize| {
            let metric = metrics::headline(self.runs[r].project);
            self.runs[r].series(metric).map_or(Better::Lower, |s| s.def.better)
        };
        let metric = |r: usize| metrics::headline(self.runs[r].project).to_owned();
        let agg = Agg::Last;
        let mut checks: Vec<(GroupCheck, bool)> = Vec::new();
        for (k, want) in [Fit::Inside, Fit::Outside, Fit::Straddles].into_iter().enumerate() {
            // Each verdict from another group where there are several.
            let group = (0..seeds.len()).map(|i| seeds[(i + k) % seeds.len()]).find_map(|runs| {
                let probe =
                    GroupCheck::Group { metric: metric(runs[0]), agg, runs: runs.clone(), claimed: none() };
                probe.fitted(self.runs, want, better(runs[0]))
            });
            let ratio =
                (0..comparisons.len()).map(|i| &comparisons[(i + k) % comparisons.len()]).find_map(|c| {
                    let probe = GroupCheck::Ratio {
                        metric: metric(c.runs[0]),
                        agg,
                        runs: c.runs.clone(),
                        baseline: c.baseline.clone(),
                        claimed: none(),
                    };
                    probe.fitted(self.runs, want, better(c.runs[0]))
                });
            // Screening and confirmation: the configuration's earlier and later seeds, each
            // against the same baseline seeds.
            let replicable: Vec<&Comparison> = comparisons
                .iter()
                .filter(|c| c.runs.len() >= 2 && (c.baseline.len() >= 2 || c.runs.len() >= 3))
                .collect();
            let replicated =
                (0..replicable.len()).map(|i| replicable[(i + k) % replicable.len()]).find_map(|c| {
                    let half = c.runs.len().div_ceil(2);
                    let pairs = vec![
                        (c.runs[..half].to_vec(), c.baseline.clone()),
                        (c.runs[half..].to_vec(), c.baseline.clone()),
                    ];
                    let probe =
                        GroupCheck::Replicated { metric: metric(c.runs[0]), agg, pairs, claimed: none() };
                    probe.fitted(self.runs, want, better(c.runs[0]))
                });
            for check in [group, ratio, replicated].into_iter().flatten() {
                // The supported group and comparison claims were registered before their runs.
                let prereg = want == Fit::Inside && !matches!(check, GroupCheck::Replicated { .. });
                checks.push((check, prereg));
            }
        }
        let mut out: Vec<ClaimPlan> = Vec::new();
        for (check, prereg) in checks {
            let runs = check.runs();
            let host = self.host_for(plans, outcome, &runs);
            let Some(host) = host else { continue };
            let n = claims.iter().chain(&out).filter(|c| c.slug == host.slug).count() + 1;
            let time = self.after_evidence(&runs, host.time);
            let mut c = self.claim(facts, host, n, Check::Groups(check), time);
            c.location = "README.md#addendum".into();
            if prereg {
                c.registered_at = self.before_start(&runs);
            }
            out.push(c);
        }
        out.extend(self.preregistered_study(tl, facts, &seeds, outcome)?);
        Ok(out)
    }

    /// The canonical (non-kernel) artifact citing most of `runs`, the latest on ties.
    fn host_for<'p>(
        &self,
        plans: &'p [SlugPlan],
        outcome: &CorpusOutcome,
        runs: &[usize],
    ) -> Option<&'p SlugPlan> {
        plans
            .iter()
            .filter(|p| outcome.canonical.contains_key(&p.slug) && p.project != Project::Kernels)
            .max_by_key(|p| (p.runs.iter().filter(|r| runs.contains(r)).count(), p.time))
    }

    /// Half an hour after the last of the runs' evidence (and `not_before`), before the end.
    fn after_evidence(&self, runs: &[usize], not_before: i64) -> i64 {
        let last = runs.iter().filter_map(|&r| self.runs[r].evidence.as_ref().map(|e| e.0)).max();
        (last.unwrap_or(not_before).max(not_before) + 30 * MIN).min(self.end - 10 * MIN)
    }

    /// Two hours before the first of the runs started, if that is inside the history.
    fn before_start(&self, runs: &[usize]) -> Option<i64> {
        let first = runs.iter().filter_map(|&r| self.runs[r].started).min()?;
        let at = first - 2 * HOUR;
        (at > self.start + HOUR).then_some(at)
    }

    /// An artifact requiring preregistration: its c1 (a seed group's final metric) was
    /// registered before the seeds ran; its c2 (their best value) was added afterwards.
    fn preregistered_study(
        &mut self,
        tl: &mut Timeline,
        facts: &Facts,
        seeds: &[&Vec<usize>],
        outcome: &mut CorpusOutcome,
    ) -> Result<Vec<ClaimPlan>, String> {
        // The seed group that started latest (the most room before it to register).
        let Some(runs) = seeds
            .iter()
            .filter(|r| self.before_start(r).is_some())
            .max_by_key(|r| r.iter().filter_map(|&i| self.runs[i].started).min())
            .map(|r| (*r).clone())
        else {
            return Ok(Vec::new());
        };
        let first = &self.runs[runs[0]];
        let (project, config) = (first.project, first.config);
        let metric = metrics::headline(project).to_owned();
        let better = first.series(&metric).map_or(Better::Lower, |s| s.def.better);
        let make = |agg: Agg| {
            let probe =
                GroupCheck::Group { metric: metric.clone(), agg, runs: runs.clone(), claimed: none() };
            probe.fitted(self.runs, Fit::Inside, better)
        };
        let best = if better == Better::Lower { Agg::Min } else { Agg::Max };
        let (Some(c1), Some(c2)) = (make(Agg::Last), make(best)) else { return Ok(Vec::new()) };
        let submitted = self.after_evidence(&runs, self.start) + 10 * MIN;
        if submitted >= self.end - 2 * HOUR {
            return Ok(Vec::new());
        }
        let slug = format!("{}/{config}-preregistered", project.name());
        let plan = SlugPlan {
            title: format!("{config}: preregistered seed study ({} runs)", runs.len()),
            slug: slug.clone(),
            project,
            author: author_of(project),
            runs: runs.clone(),
            time: submitted,
            flow: Flow::Normal,
        };
        let mut c1 = self.claim(facts, &plan, 1, Check::Groups(c1), submitted + 20 * MIN);
        c1.registered_at = self.before_start(&runs);
        let c2 = self.claim(facts, &plan, 2, Check::Groups(c2), submitted + 20 * MIN);
        let mut files = FileSet::new();
        let ids: Vec<String> = runs.iter().map(|&r| self.runs[r].id.clone()).collect();
        files.add(
            "README.md",
            format!(
                "# {}\n\nEvery claim of this study is preregistered (PREREGISTRATION.md).\n\nRuns: {}\n\n## Claims\n\n- **c1**: {}\n- **c2**: {}\n",
                plan.title,
                ids.join(", "),
                c1.statement,
                c2.statement
            ),
        );
        files.add("PREREGISTRATION.md", format!("# Preregistration\n\n- **c1**: {}\n", c1.statement));
        let folder = self.dir.join(&slug).join("v1");
        let written = files.write(&folder).map_err(|e| format!("writing {}: {e}", folder.display()))?;
        let data = json!({
            "slug": slug, "version": 1, "title": plan.title, "content_digest": written.digest,
            "runs": ids, "files": written.files, "generator": GENERATOR, "require_preregistration": true,
        });
        tl.emit(
            &self.keys.authors[plan.author],
            "artifact.submitted",
            &format!("artifact/{slug}"),
            data,
            submitted,
        );
        outcome.submitted += 1;
        outcome.admitted += 1;
        outcome.canonical.insert(slug, 1);
        Ok(vec![c1, c2])
    }
}

fn none() -> super::groups::Claimed {
    super::groups::Claimed { lo: None, hi: None }
}

//! Claims over groups of runs in the demo: the recount's rules for them (each run's aggregate
//! from the log; the interval from the audit's bootstrap, which the projections suite checks
//! against a reference; where it lies against the claimed bounds judged here), and a demo
//! ledger in which every group kind is supported, contradicted and inconclusive, with
//! preregistered claims and a post-hoc one on an artifact that requires preregistration.

use std::collections::BTreeMap;

use assay_projections::audit::bootstrap::{Level, Relation, Stat, compare_interval, group_interval};
use serde_json::Value;

use super::demo::assay;

/// Where the observed intervals of a group check lie against its claimed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Inside,
    Outside,
    Straddles,
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|r| r.as_str()).map(str::to_owned).collect()
}

/// The (runs, baseline runs) groups of a group check; no baseline for `group`.
fn groups(check: &Value) -> Vec<(Vec<String>, Option<Vec<String>>)> {
    match check["kind"].as_str() {
        Some("group") => vec![(ids(&check["runs"]), None)],
        Some("compare_groups") => vec![(ids(&check["runs"]), Some(ids(&check["baseline_runs"])))],
        Some("replicated") => check["pairs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (ids(&p["runs"]), Some(ids(&p["baseline_runs"]))))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether `check` is over groups of runs.
pub fn is_group(check: &Value) -> bool {
    !groups(check).is_empty()
}

/// Every run a group check names.
pub fn named_runs(check: &Value) -> Vec<String> {
    groups(check).into_iter().flat_map(|(a, b)| a.into_iter().chain(b.unwrap_or_default())).collect()
}

/// The fit of a group check, given each run's aggregate of the claimed metric; `None` when a
/// run lacks it or the interval is undefined.
pub fn fit(check: &Value, value: impl Fn(&str) -> Option<f64>) -> Option<Fit> {
    let stat = Stat::parse(check["stat"].as_str()?)?;
    let level = Level::parse(check["level"].as_str().unwrap_or("0.95"))?;
    let bound = |k: &str| check["claimed"][k].as_str().map(|t| t.parse::<f64>().expect("decimal bound"));
    let (lo, hi) = (bound("lo"), bound("hi"));
    let values = |runs: &[String]| runs.iter().map(|r| value(r)).collect::<Option<Vec<f64>>>();
    let mut fits = Vec::new();
    for (runs, baseline) in groups(check) {
        let interval = match baseline {
            None => group_interval(&values(&runs)?, stat, level).ok()?,
            Some(b) => {
                let relation = Relation::parse(check["as"].as_str()?)?;
                compare_interval(&values(&runs)?, &values(&b)?, stat, relation, level).ok()?
            }
        };
        fits.push(if lo.is_some_and(|lo| interval.hi < lo) || hi.is_some_and(|hi| interval.lo > hi) {
            Fit::Outside
        } else if lo.is_none_or(|lo| interval.lo >= lo) && hi.is_none_or(|hi| interval.hi <= hi) {
            Fit::Inside
        } else {
            Fit::Straddles
        });
    }
    Some(if fits.contains(&Fit::Outside) {
        Fit::Outside
    } else if fits.contains(&Fit::Straddles) {
        Fit::Straddles
    } else {
        Fit::Inside
    })
}

#[test]
fn the_demo_shows_every_group_kind_supported_contradicted_and_inconclusive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lab = dir.path().join("lab");
    let lab = lab.to_str().expect("UTF-8 temp path");
    // 40 runs: enough seeds of one configuration for screening and confirmation groups.
    let summary = assay(&["demo", "--size", "small", "--runs", "40", "--dir", lab]);
    let db = format!("{lab}/assay.db");
    let audit: Value = serde_json::from_str(&assay(&["audit", "--db", &db, "--json"])).expect("audit --json");
    let claims = audit["claims"].as_array().expect("claims");
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in claims {
        let kind = c["kind"].as_str().unwrap_or_default();
        if !matches!(kind, "group" | "compare_groups" | "replicated") {
            continue;
        }
        let reasons: Vec<&str> =
            c["reasons"].as_array().expect("reasons").iter().filter_map(|r| r.as_str()).collect();
        let outcome = match c["verdict"].as_str().unwrap_or_default() {
            "unsupported" if reasons == ["inconclusive"] => "inconclusive",
            v => v,
        };
        *seen.entry((kind.to_owned(), outcome.to_owned())).or_default() += 1;
        // Every group verdict shows its interval and n.
        let context: Vec<&str> =
            c["context"].as_array().expect("context").iter().filter_map(|r| r.as_str()).collect();
        assert!(context.iter().any(|x| x.starts_with("observed_interval:")), "{c}");
        assert!(context.iter().any(|x| x.starts_with("n:")), "{c}");
    }
    for kind in ["group", "compare_groups", "replicated"] {
        for outcome in ["supported", "contradicted", "inconclusive"] {
            assert!(seen.contains_key(&(kind.into(), outcome.into())), "no {outcome} {kind} claim: {seen:?}");
        }
    }
    let registration = |r: &str| claims.iter().filter(|c| c["registration"] == r).count();
    assert!(registration("preregistered") >= 2, "preregistered claims");
    // The summary counts those of canonical artifacts, as its verdict counts do.
    let canonical: Vec<&str> = audit["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|a| !a["canonical_version"].is_null())
        .filter_map(|a| a["slug"].as_str())
        .collect();
    let counted = claims
        .iter()
        .filter(|c| c["registration"] == "preregistered" && canonical.iter().any(|s| c["artifact"] == *s))
        .count();
    assert!(summary.contains(&format!("tainted; {counted} preregistered\n")), "{summary}");
    // The study that requires preregistration fails on its post-hoc claim, and only on it.
    let study = audit["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["slug"].as_str().is_some_and(|s| s.ends_with("-preregistered")))
        .expect("the preregistered study");
    assert_eq!(study["passes"], false);
    let reasons: Vec<&str> =
        study["reasons"].as_array().expect("reasons").iter().filter_map(|r| r.as_str()).collect();
    assert!(!reasons.is_empty() && reasons.iter().all(|r| r.starts_with("claim_post_hoc:")), "{reasons:?}");
    let slug = study["slug"].as_str().expect("slug");
    let of_study: Vec<&Value> = claims.iter().filter(|c| c["artifact"] == slug).collect();
    assert!(of_study.iter().any(|c| c["registration"] == "preregistered" && c["verdict"] == "supported"));
    assert!(of_study.iter().any(|c| c["registration"] == "post_hoc"));
}

//! Claims over groups of runs (`group`, `compare_groups`, `replicated`): the bootstrap
//! against a reference written here, the verdict rules and their boundaries, and
//! pre-registration.

use assay_projections::Projections;
use assay_projections::audit::bootstrap::{
    Interval, Level, RESAMPLES, Relation, SEED, Stat, compare_interval, group_interval,
};
use assay_projections::audit::{ClaimVerdict, Registration, Verdict};
use assay_projections::testkit::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The reference: the percentile bootstrap written out plainly, sharing no code.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
}

fn ref_stat(values: &[f64], median: bool) -> f64 {
    let mut v = values.to_vec();
    if median {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
    } else {
        // Shifted by the first value (exact for equal values).
        let c = v[0];
        let mut sum = 0.0;
        for x in &v {
            sum += x - c;
        }
        c + sum / v.len() as f64
    }
}

fn ref_draw(rng: &mut Rng, values: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..values.len() {
        out.push(values[rng.below(values.len())]);
    }
    out
}

/// `k` for a level given in millionths.
fn ref_k(level_ppm: u64) -> usize {
    ((1_000_000 - level_ppm) * 2000 / 2_000_000) as usize
}

fn ref_interval(mut stats: Vec<f64>, level_ppm: u64) -> (f64, f64) {
    stats.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let k = ref_k(level_ppm);
    (stats[k], stats[1999 - k])
}

fn ref_group(values: &[f64], median: bool, level_ppm: u64) -> (f64, f64) {
    if values.len() == 1 {
        return (values[0], values[0]);
    }
    let mut rng = Rng(SEED);
    let stats = (0..2000).map(|_| ref_stat(&ref_draw(&mut rng, values), median)).collect();
    ref_interval(stats, level_ppm)
}

fn ref_compare(a: &[f64], b: &[f64], median: bool, ratio: bool, level_ppm: u64) -> (f64, f64) {
    let rel = |x: f64, y: f64| if ratio { x / y } else { x - y };
    if a.len() == 1 && b.len() == 1 {
        let p = rel(a[0], b[0]);
        return (p, p);
    }
    let mut rng = Rng(SEED);
    let mut stats = Vec::new();
    for _ in 0..2000 {
        let ra = ref_draw(&mut rng, a);
        let rb = ref_draw(&mut rng, b);
        stats.push(rel(ref_stat(&ra, median), ref_stat(&rb, median)));
    }
    ref_interval(stats, level_ppm)
}

fn bits(i: Interval) -> (u64, u64) {
    (i.lo.to_bits(), i.hi.to_bits())
}

fn ref_bits((lo, hi): (f64, f64)) -> (u64, u64) {
    (lo.to_bits(), hi.to_bits())
}

/// Data with spread: `n` values from a seeded stream (not the bootstrap's).
fn spread(n: usize, seed: u64, center: f64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n).map(|_| center + (rng.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5).collect()
}

#[test]
fn the_bootstrap_equals_the_reference_bit_for_bit() {
    assert_eq!(RESAMPLES, 2000);
    let groups = [spread(2, 1, 3.0), spread(5, 2, 3.1), spread(8, 3, 10.0), spread(101, 4, -2.0)];
    for (level_text, ppm) in [("0.95", 950_000), ("0.9", 900_000), ("0.99", 990_000), ("0.5", 500_000)] {
        let level = Level::parse(level_text).unwrap();
        for g in &groups {
            for (stat, median) in [(Stat::Mean, false), (Stat::Median, true)] {
                let got = group_interval(g, stat, level).unwrap();
                assert_eq!(
                    bits(got),
                    ref_bits(ref_group(g, median, ppm)),
                    "{level_text} {stat:?} n={}",
                    g.len()
                );
                assert!(got.lo <= got.hi);
            }
        }
        for (a, b) in [(&groups[1], &groups[2]), (&groups[0], &groups[3]), (&groups[2], &groups[1])] {
            for (stat, median) in [(Stat::Mean, false), (Stat::Median, true)] {
                for (rel, ratio) in [(Relation::Difference, false), (Relation::Ratio, true)] {
                    let got = compare_interval(a, b, stat, rel, level).unwrap();
                    assert_eq!(bits(got), ref_bits(ref_compare(a, b, median, ratio, ppm)), "{rel:?}");
                }
            }
        }
    }
}

#[test]
fn the_bootstrap_is_deterministic() {
    let g = spread(37, 9, 1.0);
    let h = spread(23, 10, 2.0);
    let level = Level::DEFAULT;
    let first = (
        bits(group_interval(&g, Stat::Mean, level).unwrap()),
        bits(compare_interval(&g, &h, Stat::Median, Relation::Ratio, level).unwrap()),
    );
    for _ in 0..3 {
        let again = (
            bits(group_interval(&g, Stat::Mean, level).unwrap()),
            bits(compare_interval(&g, &h, Stat::Median, Relation::Ratio, level).unwrap()),
        );
        assert_eq!(again, first);
    }
}

#[test]
fn known_intervals() {
    let level = Level::DEFAULT;
    // All equal: every resample is the same, the interval is the point.
    let same = group_interval(&[3.1; 7], Stat::Mean, level).unwrap();
    assert_eq!((same.lo, same.hi), (3.1, 3.1));
    // One run: the point, without resampling.
    let one = group_interval(&[2.5], Stat::Median, level).unwrap();
    assert_eq!((one.lo, one.hi), (2.5, 2.5));
    let ratio = compare_interval(&[3.0], &[4.0], Stat::Mean, Relation::Ratio, level).unwrap();
    assert_eq!((ratio.lo, ratio.hi), (0.75, 0.75));
    // The interval of a mean lies within the data's range and around it.
    let g = [1.0, 2.0, 3.0, 4.0, 5.0];
    let i = group_interval(&g, Stat::Mean, level).unwrap();
    assert!(1.0 <= i.lo && i.lo < 3.0 && 3.0 < i.hi && i.hi <= 5.0, "{i:?}");
    // A ratio over a zero baseline has no finite interval.
    assert!(compare_interval(&[1.0, 2.0], &[0.0, 0.0], Stat::Mean, Relation::Ratio, level).is_err());
    assert!(group_interval(&[], Stat::Mean, level).is_err());
}

// ---------------------------------------------------------------------------------------
// Verdicts.

fn verdict(s: &Projections, slug: &str, claim: &str) -> ClaimVerdict {
    s.audit.verdict(slug, claim, &s.keys).unwrap_or_else(|| panic!("no verdict for {slug}/{claim}"))
}

#[track_caller]
fn assert_verdict(s: &Projections, claim: &str, expected: Verdict, reasons: &[&str]) {
    let v = verdict(s, "a", claim);
    assert_eq!(
        (v.verdict, v.reasons.iter().map(String::as_str).collect::<Vec<_>>()),
        (expected, reasons.to_vec()),
        "{v:#?}"
    );
}

/// Clean runs `<prefix>1..` each recording `metric` = one value.
fn runs(prefix: &str, metric: &str, values: &[f64]) -> (Vec<Ev>, Vec<String>) {
    let mut events = Vec::new();
    let mut ids = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let id = format!("{prefix}{}", i + 1);
        events.extend(clean_run(&id, "w1", GPU0, &[(metric, 0, *v)]));
        ids.push(id);
    }
    (events, ids)
}

fn group_check(ids: &[String], claimed: Value) -> Value {
    json!({"kind": "group", "metric": "loss", "runs": ids, "agg": "last", "stat": "mean", "claimed": claimed})
}

fn compare_groups_check(a: &[String], b: &[String], relation: &str, claimed: Value) -> Value {
    json!({"kind": "compare_groups", "metric": "time", "runs": a, "baseline_runs": b, "agg": "last",
           "stat": "mean", "as": relation, "claimed": claimed})
}

/// The claim citing the evidence of each run.
fn group_claim(id: &str, check: Value, ids: &[String]) -> Ev {
    let evidence: Vec<String> = ids.iter().map(|r| format!("@evidence:{r}")).collect();
    let refs: Vec<&str> = evidence.iter().map(String::as_str).collect();
    claim("a", id, check, &refs)
}

const SEEDS: [f64; 5] = [3.08, 3.10, 3.12, 3.09, 3.11];

#[test]
fn group_supported_contradicted_and_inconclusive() {
    let (mut h, ids) = runs("s", "loss", &SEEDS);
    let observed = group_interval(&SEEDS, Stat::Mean, Level::DEFAULT).unwrap();
    h.push(group_claim("inside", group_check(&ids, json!({"lo": "3.05", "hi": "3.15"})), &ids));
    h.push(group_claim("outside", group_check(&ids, json!({"lo": "2.0", "hi": "2.5"})), &ids));
    h.push(group_claim("above", group_check(&ids, json!({"hi": "3"})), &ids));
    h.push(group_claim("across", group_check(&ids, json!({"lo": "3.1", "hi": "3.2"})), &ids));
    given(h).then(|s| {
        assert_verdict(s, "inside", Verdict::Supported, &[]);
        assert_verdict(s, "outside", Verdict::Contradicted, &["value_mismatch"]);
        assert_verdict(s, "above", Verdict::Contradicted, &["value_mismatch"]);
        assert_verdict(s, "across", Verdict::Unsupported, &["inconclusive"]);
        let v = verdict(s, "a", "inside");
        assert_eq!(v.kind, "group");
        assert_eq!(v.runs, ["s1", "s2", "s3", "s4", "s5"]);
        let want_interval = format!("observed_interval:{}..{}", observed.lo, observed.hi);
        assert!(v.context.contains(&want_interval), "{:?}", v.context);
        assert!(v.context.contains(&"n:5".to_owned()), "{:?}", v.context);
        assert!(v.context.iter().any(|c| c.starts_with("estimate:3.1")), "{:?}", v.context);
        for c in &v.context {
            assert!(assay_projections::reasons::explain(c).is_some(), "{c} has no sentence");
        }
        assert!(assay_projections::reasons::explain("inconclusive").is_some());
    });
}

#[test]
fn touching_a_claimed_bound_is_inside_from_within_and_not_outside_from_without() {
    let (mut h, ids) = runs("s", "loss", &SEEDS);
    let i = group_interval(&SEEDS, Stat::Mean, Level::DEFAULT).unwrap();
    assert!(i.lo < i.hi);
    let (lo, hi) = (i.lo.to_string(), i.hi.to_string());
    // Exactly the observed interval: inside.
    h.push(group_claim("exact", group_check(&ids, json!({"lo": lo, "hi": hi})), &ids));
    // The observed interval ends exactly where the claim begins: across, not outside.
    h.push(group_claim("from-below", group_check(&ids, json!({"lo": hi})), &ids));
    h.push(group_claim("from-above", group_check(&ids, json!({"hi": lo})), &ids));
    // One digit past the end: outside.
    h.push(group_claim("past", group_check(&ids, json!({"lo": format!("{hi}1")})), &ids));
    // A degenerate interval on a bound: inside.
    let (mut same, same_ids) = runs("e", "loss", &[3.1, 3.1, 3.1]);
    h.append(&mut same);
    h.push(group_claim("point-hi", group_check(&same_ids, json!({"hi": "3.1"})), &same_ids));
    h.push(group_claim("point-lo", group_check(&same_ids, json!({"lo": "3.10", "hi": "3.10"})), &same_ids));
    h.push(group_claim("point-below", group_check(&same_ids, json!({"hi": "3.0999"})), &same_ids));
    given(h).then(|s| {
        assert_verdict(s, "exact", Verdict::Supported, &[]);
        assert_verdict(s, "from-below", Verdict::Unsupported, &["inconclusive"]);
        assert_verdict(s, "from-above", Verdict::Unsupported, &["inconclusive"]);
        assert_verdict(s, "past", Verdict::Contradicted, &["value_mismatch"]);
        assert_verdict(s, "point-hi", Verdict::Supported, &[]);
        assert_verdict(s, "point-lo", Verdict::Supported, &[]);
        assert_verdict(s, "point-below", Verdict::Contradicted, &["value_mismatch"]);
        assert!(verdict(s, "a", "point-hi").context.contains(&"observed_interval:3.1..3.1".to_owned()));
    });
}

#[test]
fn compare_groups_as_a_ratio_and_a_difference() {
    // "27–34% faster": the new step time over the baseline's in [0.66, 0.73].
    let (mut h, new) = runs("n", "time", &[0.70, 0.69, 0.71, 0.70]);
    let (base_events, base) = runs("b", "time", &[1.0, 1.01, 0.99, 1.0]);
    h.extend(base_events);
    let all: Vec<String> = new.iter().chain(&base).cloned().collect();
    h.push(group_claim(
        "faster",
        compare_groups_check(&new, &base, "ratio", json!({"lo": "0.66", "hi": "0.73"})),
        &all,
    ));
    h.push(group_claim("slower", compare_groups_check(&new, &base, "ratio", json!({"lo": "1"})), &all));
    h.push(group_claim("diff", compare_groups_check(&new, &base, "difference", json!({"hi": "0"})), &all));
    h.push(group_claim(
        "edge",
        compare_groups_check(&new, &base, "ratio", json!({"lo": "0.70", "hi": "0.8"})),
        &all,
    ));
    given(h).then(|s| {
        assert_verdict(s, "faster", Verdict::Supported, &[]);
        assert_verdict(s, "slower", Verdict::Contradicted, &["value_mismatch"]);
        assert_verdict(s, "diff", Verdict::Supported, &[]);
        assert_verdict(s, "edge", Verdict::Unsupported, &["inconclusive"]);
        let v = verdict(s, "a", "faster");
        assert_eq!(v.kind, "compare_groups");
        assert!(v.context.contains(&"n:4/4".to_owned()), "{:?}", v.context);
        assert_eq!(v.runs.len(), 8);
    });
}

#[test]
fn a_ratio_over_a_zero_baseline_is_undefined() {
    let (mut h, new) = runs("n", "time", &[1.0, 2.0]);
    let (base_events, base) = runs("b", "time", &[0.0, 0.0]);
    h.extend(base_events);
    let all: Vec<String> = new.iter().chain(&base).cloned().collect();
    h.push(group_claim("c", compare_groups_check(&new, &base, "ratio", json!({"lo": "1"})), &all));
    given(h).then(|s| assert_verdict(s, "c", Verdict::Unsupported, &["interval_undefined"]));
}

fn replicated_check(pairs: Value, claimed: Value) -> Value {
    json!({"kind": "replicated", "metric": "time", "agg": "last", "stat": "mean", "as": "difference",
           "claimed": claimed, "pairs": pairs})
}

#[test]
fn replicated_holds_only_when_every_pair_does() {
    // Screening: a clear improvement. Confirmation: a clear one, a reversed one, a noisy one.
    let (mut h, s_new) = runs("sn", "time", &[0.5, 0.52, 0.51]);
    let groups = [
        ("sb", vec![1.0, 1.02, 1.01]),
        ("cn", vec![0.6, 0.61, 0.59]),
        ("cb", vec![1.0, 0.99, 1.01]),
        ("rn", vec![1.5, 1.52, 1.49]),
        ("qn", vec![0.5, 1.5, 1.0, 0.4, 1.6]),
    ];
    let mut ids = vec![s_new];
    for (prefix, values) in &groups {
        let (e, g) = runs(prefix, "time", values);
        h.extend(e);
        ids.push(g);
    }
    let pair = |a: usize, b: usize| json!({"runs": ids[a], "baseline_runs": ids[b]});
    let all: Vec<String> = ids.iter().flatten().cloned().collect();
    let improved = json!({"hi": "0"});
    h.push(group_claim("both", replicated_check(json!([pair(0, 1), pair(2, 3)]), improved.clone()), &all));
    h.push(group_claim(
        "reversed",
        replicated_check(json!([pair(0, 1), pair(4, 3)]), improved.clone()),
        &all,
    ));
    h.push(group_claim("noisy", replicated_check(json!([pair(0, 1), pair(5, 3)]), improved.clone()), &all));
    h.push(group_claim(
        "reversed-and-noisy",
        replicated_check(json!([pair(5, 3), pair(4, 3)]), improved),
        &all,
    ));
    given(h).then(|s| {
        assert_verdict(s, "both", Verdict::Supported, &[]);
        assert_verdict(s, "reversed", Verdict::Contradicted, &["value_mismatch"]);
        assert_verdict(s, "noisy", Verdict::Unsupported, &["inconclusive"]);
        assert_verdict(s, "reversed-and-noisy", Verdict::Contradicted, &["value_mismatch"]);
        let v = verdict(s, "a", "both");
        assert_eq!(v.kind, "replicated");
        assert!(v.context.contains(&"n:3/3 (pair 2)".to_owned()), "{:?}", v.context);
        assert!(v.context.iter().any(|c| c.starts_with("observed_interval:") && c.ends_with(" (pair 1)")));
    });
}

#[test]
fn every_run_of_a_group_must_stand_and_taint_reaches_the_group() {
    let (mut h, ids) = runs("s", "loss", &SEEDS);
    let mut cited = ids.clone();
    cited.push("ghost".to_owned());
    // A run that never ran, and one without the metric.
    let (other, other_ids) = runs("o", "acc", &[0.9]);
    h.extend(other);
    let mut missing = ids.clone();
    missing.push(other_ids[0].clone());
    h.push(group_claim("ghost", group_check(&cited, json!({"lo": "3"})), &ids));
    h.push(group_claim("missing", group_check(&missing, json!({"lo": "3"})), &missing));
    given(h.clone()).then(|s| {
        assert_verdict(
            s,
            "ghost",
            Verdict::Unsupported,
            &["metric_missing:ghost", "run_not_finished:ghost", "run_without_evidence:ghost"],
        );
        assert_verdict(s, "missing", Verdict::Unsupported, &["metric_missing:o1"]);
    });
    // A hardware Xid in the window of one seed taints the group claim.
    let at = h.iter().position(|e| e.ty == "run.started" && e.data["run"] == "s3").unwrap();
    h.insert(at + 1, gpu_xid(GPU0, 79, "hardware", "RESET_GPU"));
    h.push(group_claim("tainted", group_check(&ids, json!({"lo": "3"})), &ids));
    given(h).then(|s| assert_verdict(s, "tainted", Verdict::Tainted, &["xid_hardware_in_window:79"]));
}

#[test]
fn malformed_group_checks_the_schema_lets_through_are_invalid() {
    let (mut h, ids) = runs("s", "loss", &SEEDS);
    // lo above hi (JSON Schema cannot compare two strings as numbers).
    h.push(group_claim("reversed", group_check(&ids, json!({"lo": "3.2", "hi": "3.1"})), &ids));
    // Written before the schema said so: a run twice, a level of zero.
    let mut twice = group_check(&ids, json!({"lo": "3"}));
    twice["runs"] = json!(["s1", "s1"]);
    h.push(group_claim("twice", twice, &ids).unchecked());
    let mut zero = group_check(&ids, json!({"lo": "3"}));
    zero["level"] = json!("0.0");
    h.push(group_claim("zero-level", zero, &ids));
    given(h).then(|s| {
        for id in ["reversed", "twice", "zero-level"] {
            assert_verdict(s, id, Verdict::Unsupported, &["check_invalid"]);
            assert_eq!(verdict(s, "a", id).kind, "invalid");
        }
    });
}

#[test]
fn the_level_changes_the_interval() {
    let (mut h, ids) = runs("s", "loss", &SEEDS);
    let mut narrow = group_check(&ids, json!({"lo": "3"}));
    narrow["level"] = json!("0.5");
    h.push(group_claim("c", narrow, &ids));
    let i = group_interval(&SEEDS, Stat::Mean, Level::parse("0.5").unwrap()).unwrap();
    given(h).then(|s| {
        assert!(verdict(s, "a", "c").context.contains(&format!("observed_interval:{}..{}", i.lo, i.hi)));
    });
}

// ---------------------------------------------------------------------------------------
// Pre-registration.

#[test]
fn a_claim_stated_before_its_runs_started_is_preregistered() {
    let ids = vec!["s1".to_owned(), "s2".to_owned()];
    let check = group_check(&ids, json!({"lo": "3"}));
    let (events, _) = runs("s", "loss", &[3.1, 3.2]);
    let mut h = vec![claim("a", "pre", check.clone(), &[]), claim("a", "changed", check.clone(), &[])];
    h.extend(events);
    given(h)
        .then(|s| assert_eq!(verdict(s, "a", "pre").registration, Registration::Preregistered))
        // Restated with the same check, citing the evidence now that it exists: still
        // preregistered. Restated with another check: registered anew, after the runs.
        .when(group_claim("pre", check, &ids))
        .when(group_claim("changed", group_check(&ids, json!({"lo": "3.01"})), &ids))
        .when(group_claim("late", group_check(&ids, json!({"lo": "3"})), &ids))
        .then(|s| {
            assert_verdict(s, "pre", Verdict::Supported, &[]);
            assert_eq!(verdict(s, "a", "pre").registration, Registration::Preregistered);
            assert_eq!(verdict(s, "a", "changed").registration, Registration::PostHoc);
            assert_eq!(verdict(s, "a", "late").registration, Registration::PostHoc);
            let json = serde_json::to_value(verdict(s, "a", "late")).unwrap();
            assert_eq!(json["registration"], "post_hoc");
        });
}

#[test]
fn one_run_started_before_the_claim_makes_it_post_hoc() {
    let (mut h, ids) = runs("s", "loss", &[3.1]);
    let (later, later_ids) = runs("t", "loss", &[3.2]);
    let both: Vec<String> = ids.iter().chain(&later_ids).cloned().collect();
    h.push(claim("a", "c", group_check(&both, json!({"lo": "3"})), &[]));
    h.extend(later);
    given(h).then(|s| assert_eq!(verdict(s, "a", "c").registration, Registration::PostHoc));
}

#[test]
fn a_kernel_claim_is_preregistered_before_any_matching_launch() {
    let variant = json!({"dtype": "f32"});
    given(vec![
        claim("a", "k", kernel_check("saxpy", Some(variant.clone()), None), &[]),
        kernel_completed("other-run", "saxpy", json!({"dtype": "f16"}), "cpu", true),
        claim("a", "k-other", kernel_check("saxpy", Some(json!({"dtype": "f16"})), None), &[]),
        kernel_completed("run-1", "saxpy", variant, "cpu", true),
    ])
    .then(|s| {
        assert_eq!(verdict(s, "a", "k").registration, Registration::Preregistered);
        assert_eq!(verdict(s, "a", "k-other").registration, Registration::PostHoc);
    });
}

fn submitted_requiring(slug: &str, runs: &[&str]) -> Ev {
    let mut e = artifact_submitted(slug, 1, &format!("{slug}-content"), runs);
    e.data["require_preregistration"] = json!(true);
    e
}

#[test]
fn an_artifact_requiring_preregistration_fails_on_a_post_hoc_claim() {
    let ids = vec!["s1".to_owned(), "s2".to_owned()];
    let check = group_check(&ids, json!({"lo": "3"}));
    let (events, _) = runs("s", "loss", &[3.1, 3.2]);
    let mut h = vec![claim("a", "pre", check.clone(), &[]), claim("b", "pre", check.clone(), &[])];
    h.extend(events);
    h.push(submitted_requiring("a", &["s1", "s2"]));
    h.push(artifact_submitted("b", 1, "b-content", &["s1", "s2"]));
    h.push(claim("b", "pre", check.clone(), &["@evidence:s1", "@evidence:s2"]));
    h.push(claim("a", "pre", check.clone(), &["@evidence:s1", "@evidence:s2"]));
    given(h)
        .then(|s| {
            let r = s.audit_report();
            assert!(r.artifact("a").is_some_and(|a| a.passes), "{r:#?}");
            assert!(r.artifact("b").is_some_and(|a| a.passes));
        })
        .when(claim("a", "late", check.clone(), &["@evidence:s1"]))
        .when(claim("b", "late", check, &["@evidence:s1"]))
        .then(|s| {
            let r = s.audit_report();
            let a = r.artifact("a").unwrap();
            assert!(!a.passes);
            assert_eq!(a.reasons, ["claim_post_hoc:late"]);
            // Without the requirement, a post-hoc claim is shown but does not fail.
            assert!(r.artifact("b").is_some_and(|b| b.passes));
            assert!(r.claims.iter().all(|c| c.verdict == Verdict::Supported));
            assert_eq!(
                assay_projections::reasons::explain("claim_post_hoc:late").map(|t| t.contains("late")),
                Some(true)
            );
        });
}

#[test]
fn registration_is_kept_out_of_the_audit_state_of_post_hoc_ledgers() {
    // A claim after its run serializes as before (no `preregistered` member); a
    // preregistered one carries it.
    let (mut h, ids) = runs("s", "loss", &[3.1]);
    h.push(claim("a", "c", group_check(&ids, json!({"lo": "3"})), &["@evidence:s1"]));
    given(h).then(|s| {
        let state = serde_json::to_value(&s.audit).unwrap();
        assert!(state["claims"]["a"]["c"].get("preregistered").is_none(), "{}", state["claims"]);
    });
    given(vec![claim("a", "c", group_check(&ids, json!({"lo": "3"})), &[])]).then(|s| {
        let state = serde_json::to_value(&s.audit).unwrap();
        assert_eq!(state["claims"]["a"]["c"]["preregistered"], true);
    });
}

#[test]
fn pinned_intervals_are_the_same_on_every_machine() {
    // Bits computed once and written here: a platform, compiler or refactoring that changed
    // one bit of an interval would change verdicts that offline verifiers recompute.
    let g = group_interval(&[1.0, 2.0, 3.0, 4.0, 5.0], Stat::Mean, Level::DEFAULT).unwrap();
    assert_eq!(bits(g), (0x3ffc_cccc_cccc_cccd, 0x4010_cccc_cccc_cccd), "{g:?}"); // 1.8..4.2
    let m = group_interval(&SEEDS, Stat::Median, Level::DEFAULT).unwrap();
    assert_eq!((m.lo, m.hi), (3.08, 3.12));
    let r = compare_interval(
        &[0.70, 0.69, 0.71, 0.70],
        &[1.0, 1.01, 0.99, 1.0],
        Stat::Mean,
        Relation::Ratio,
        Level::DEFAULT,
    )
    .unwrap();
    assert_eq!(bits(r), (0x3fe6_211d_4b24_ef72, 0x3fe6_ac61_c4d2_f991), "{r:?}");
    assert_eq!(r.display(), "0.691542288557214..0.7085427135678392");
}

use serde_json::{Value, json};

use super::*;
use crate::testkit::{Ev, Ledger, gpu_xid, kernel_completed, kernel_faulted, metric};

fn passed(run: &str, kernel: &str, variant: Value) -> Ev {
    kernel_completed(run, kernel, variant, "cpu", true)
}

fn failed(run: &str, kernel: &str, variant: Value) -> Ev {
    kernel_completed(run, kernel, variant, "cpu", false)
}

fn faulted(run: &str, kernel: &str, variant: Value, error: &str) -> Ev {
    kernel_faulted(run, kernel, variant, "cpu", error)
}

/// Sets optional fields the schemas may not hold yet (so the event is not schema-checked).
fn with(mut e: Ev, fields: Value) -> Ev {
    for (k, v) in fields.as_object().expect("an object") {
        e.data[k] = v.clone();
    }
    e.unchecked()
}

fn timed(e: Ev, duration_us: u64, repeats: Option<[u64; 3]>) -> Ev {
    let mut fields = json!({"duration_us": duration_us});
    if let Some([min, median, p90]) = repeats {
        fields["repeats"] = json!({"count": 5, "min_us": min, "median_us": median, "p90_us": p90});
    }
    with(e, fields)
}

/// Folds `events` (one ledger) into the launches of `run`.
fn fold(run: &str, events: Vec<Ev>) -> RunLaunches {
    let mut ledger = Ledger::bare();
    let mut launches = RunLaunches::new(run);
    for e in events {
        let r = ledger.push(e);
        launches.apply(&r).expect("within the bound");
    }
    launches
}

fn class_of<'a>(d: &'a CampaignDiff, kernel: &str, variant: Value) -> &'a CellDiff {
    let variant = canonical(&variant);
    d.cells
        .iter()
        .find(|c| c.kernel == kernel && c.variant == variant)
        .unwrap_or_else(|| panic!("no cell {kernel} {variant} in {d:?}"))
}

#[test]
fn every_class_and_the_gate() {
    let v = |n: u64| json!({"n": n, "dtype": "f32"});
    let base = fold(
        "base",
        vec![
            passed("base", "k", v(1)),
            passed("base", "k", v(2)),
            failed("base", "k", v(3)),
            passed("base", "k", v(4)),
            faulted("base", "k", v(5), "SIGNAL_SIGSEGV"),
            failed("base", "k", v(6)),
            faulted("base", "k", v(7), "CUDA_ERROR_ILLEGAL_ADDRESS"),
            passed("base", "k", v(8)),
        ],
    );
    let new = fold(
        "new",
        vec![
            passed("new", "k", v(1)),
            failed("new", "k", v(2)),
            passed("new", "k", v(3)),
            faulted("new", "k", v(4), "TIMEOUT"),
            failed("new", "k", v(5)),
            faulted("new", "k", v(6), "SIGNAL_SIGABRT"),
            faulted("new", "k", v(7), "CUDA_ERROR_MISALIGNED_ADDRESS"),
            faulted("new", "k", v(9), "TIMEOUT"),
        ],
    );
    let d = diff(&base, &new);
    let expect = [
        (1, Class::Unchanged),
        (2, Class::Regressed),
        (3, Class::Fixed),
        (4, Class::NewlyFaulted),
        (5, Class::Unchanged),
        (6, Class::NewlyFaulted),
        (7, Class::Unchanged),
        (8, Class::Gone),
        (9, Class::New),
    ];
    for (n, class) in expect {
        assert_eq!(class_of(&d, "k", v(n)).class, class, "cell n={n}");
    }
    assert_eq!(d.counts, Counts { unchanged: 3, fixed: 1, regressed: 1, newly_faulted: 2, gone: 1, new: 1 });
    assert!(d.gate_failed());
    // Faulted → failed keeps both outcomes.
    let f = class_of(&d, "k", v(5));
    assert_eq!(f.base.as_ref().map(|s| s.launch.outcome_text()), Some("faulted: SIGNAL_SIGSEGV".to_owned()));
    assert_eq!(f.new.as_ref().map(|s| s.launch.outcome_text()), Some("failed".to_owned()));
    // Gone and new cells have one side; a new cell that faults does not fail the gate.
    assert!(class_of(&d, "k", v(8)).new.is_none());
    assert!(class_of(&d, "k", v(9)).base.is_none());
    // Cells are sorted by (kernel, canonical variant).
    let keys: Vec<String> = d.cells.iter().map(|c| canonical_string(&c.variant)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // The gate: only regressions and new faults fail it.
    let fixed_only = diff(&fold("a", vec![failed("a", "k", v(1))]), &fold("b", vec![passed("b", "k", v(1))]));
    assert_eq!(fixed_only.counts.fixed, 1);
    assert!(!fixed_only.gate_failed());
    let new_fault_only = diff(&fold("a", vec![]), &fold("b", vec![faulted("b", "k", v(1), "TIMEOUT")]));
    assert_eq!(new_fault_only.counts.new, 1);
    assert!(!new_fault_only.gate_failed());
    let failed_to_faulted =
        diff(&fold("a", vec![failed("a", "k", v(1))]), &fold("b", vec![faulted("b", "k", v(1), "TIMEOUT")]));
    assert_eq!(failed_to_faulted.counts.newly_faulted, 1);
    assert!(failed_to_faulted.gate_failed());
}

#[test]
fn cells_match_by_kernel_and_variant_whatever_the_key_order() {
    let base =
        fold("a", vec![passed("a", "k", json!({"n": 1, "dtype": "f32"})), passed("a", "j", json!({"n": 1}))]);
    let new =
        fold("b", vec![failed("b", "k", json!({"dtype": "f32", "n": 1})), passed("b", "j", json!({"n": 2}))]);
    let d = diff(&base, &new);
    assert_eq!(d.counts, Counts { regressed: 1, gone: 1, new: 1, ..Counts::default() });
}

#[test]
fn timing_rules() {
    let v = |n: u64| json!({"n": n});
    // (base duration, base repeats [min, median, p90], new …) → change
    type Case = (u64, Option<[u64; 3]>, u64, Option<[u64; 3]>, TimingChange);
    let cases: Vec<Case> = vec![
        (100, Some([90, 100, 110]), 130, Some([111, 130, 150]), TimingChange::Slower),
        (100, Some([90, 100, 110]), 120, Some([110, 120, 150]), TimingChange::WithinSpread),
        (100, Some([90, 100, 110]), 70, Some([60, 70, 89]), TimingChange::Faster),
        (100, Some([90, 100, 110]), 80, Some([60, 80, 90]), TimingChange::WithinSpread),
        (100, None, 300, Some([290, 300, 310]), TimingChange::NoSpread),
        (100, Some([90, 100, 110]), 300, None, TimingChange::NoSpread),
        (100, None, 50, None, TimingChange::NoSpread),
    ];
    let mut base_events = Vec::new();
    let mut new_events = Vec::new();
    for (i, (bd, br, nd, nr, _)) in cases.iter().enumerate() {
        base_events.push(timed(passed("a", "k", v(i as u64)), *bd, *br));
        new_events.push(timed(passed("b", "k", v(i as u64)), *nd, *nr));
    }
    let d = diff(&fold("a", base_events), &fold("b", new_events));
    for (i, (bd, _, nd, _, change)) in cases.iter().enumerate() {
        let t = class_of(&d, "k", v(i as u64)).timing.unwrap_or_else(|| panic!("case {i} has timing"));
        assert_eq!(t.change, *change, "case {i}");
        assert_eq!((t.base_us, t.new_us), (*bd, *nd), "case {i}");
        assert_eq!(t.ratio, Some(*nd as f64 / *bd as f64), "case {i}");
    }
    // No timing unless both passed; a zero base gives no ratio.
    let d = diff(
        &fold("a", vec![timed(passed("a", "k", v(0)), 0, None), timed(passed("a", "k", v(1)), 5, None)]),
        &fold("b", vec![timed(passed("b", "k", v(0)), 7, None), timed(failed("b", "k", v(1)), 5, None)]),
    );
    let zero = class_of(&d, "k", v(0)).timing.expect("timing");
    assert_eq!((zero.change, zero.ratio), (TimingChange::NoSpread, None));
    assert!(class_of(&d, "k", v(1)).timing.is_none());
}

#[test]
fn a_fallback_stays_beside_its_primary() {
    let primary = |run: &str, route: &str, ordinal: u64| {
        with(
            faulted(run, "gemm", json!({"m": 64, "route": route}), "CUDA_ERROR_ILLEGAL_INSTRUCTION"),
            json!({"launch": ordinal}),
        )
    };
    let fallback = |run: &str, of: u64, ordinal: u64| {
        with(
            passed(run, "gemm", json!({"m": 64, "route": "cute_dsl"})),
            json!({"launch": ordinal, "fallback_of": of}),
        )
    };
    let base = fold(
        "a",
        vec![
            primary("a", "cutlass", 0),
            fallback("a", 0, 1),
            with(passed("a", "gemm", json!({"m": 128, "route": "cutlass"})), json!({"launch": 2})),
        ],
    );
    let cells = base.cells();
    assert_eq!(cells.len(), 2, "the fallback is no cell of its own: {cells:?}");
    // Sorted by canonical variant text: `{"m":128,…}` before `{"m":64,…}`.
    let (other, cell) = (&cells[0], &cells[1]);
    assert_eq!(cell.variant, json!({"m": 64, "route": "cutlass"}));
    assert_eq!(cell.side.launch.outcome, Outcome::Faulted);
    let fb = cell.side.fallback.as_ref().expect("the fallback");
    assert_eq!(fb.launch.outcome, Outcome::Passed);
    assert_eq!(fb.launch.launch, Some(1));
    assert_eq!(fb.variant, json!({"m": 64, "route": "cute_dsl"}));
    assert!(other.side.fallback.is_none());
    assert_eq!(base.not_passed(), vec![("gemm".to_owned(), json!({"m": 64, "route": "cutlass"}))]);

    // In the diff, primaries are compared; the fallback is shown on its side.
    let new = fold(
        "b",
        vec![with(passed("b", "gemm", json!({"m": 64, "route": "cutlass"})), json!({"launch": 0}))],
    );
    let d = diff(&base, &new);
    let c = class_of(&d, "gemm", json!({"m": 64, "route": "cutlass"}));
    assert_eq!(c.class, Class::Fixed);
    assert!(c.base.as_ref().and_then(|s| s.fallback.as_ref()).is_some());
    assert!(c.new.as_ref().is_some_and(|s| s.fallback.is_none()));
    let json = serde_json::to_value(c).expect("serializes");
    assert_eq!(json["base"]["fallback"]["outcome"], "passed", "{json}");
    assert_eq!(json["base"]["fallback"]["variant"]["route"], "cute_dsl", "{json}");
}

/// Xid `code` on a GPU, attached to launch `launch` of `run`.
fn xid(run: &str, launch: u64, code: u32) -> Ev {
    with(gpu_xid("0000:41:00.0", code, "application", "RESTART_APP"), json!({"run": run, "launch": launch}))
}

#[test]
fn xids_attach_to_the_launch_they_name_primary_or_fallback() {
    let events = vec![
        // Before the launch it names: matched when the cells are read, whatever the order.
        xid("a", 0, 31),
        with(
            faulted("a", "gemm", json!({"m": 64, "route": "oob"}), "CUDA_ERROR_ILLEGAL_ADDRESS"),
            json!({"launch": 0}),
        ),
        xid("a", 0, 13),
        xid("a", 0, 13),
        with(failed("a", "gemm", json!({"m": 64, "route": "ref"})), json!({"launch": 1, "fallback_of": 0})),
        xid("a", 1, 43),
        with(passed("a", "gemm", json!({"m": 128, "route": "oob"})), json!({"launch": 2})),
        // Another run's launch 2, an Xid naming no launch, one naming a launch that is not there.
        xid("b", 2, 79),
        gpu_xid("0000:41:00.0", 48, "hardware", "RESET_GPU"),
        xid("a", 9, 74),
    ];
    let launches = fold("a", events.clone());
    let cells = launches.cells();
    let (clean, hit) = (&cells[0], &cells[1]);
    assert_eq!(hit.side.launch.xids, vec![13, 31], "distinct and ascending");
    let fb = hit.side.fallback.as_ref().expect("the fallback");
    assert_eq!(fb.launch.xids, vec![43]);
    assert!(clean.side.launch.xids.is_empty(), "{clean:?}");
    assert_eq!(hit.side.launch.outcome_text(), "faulted: CUDA_ERROR_ILLEGAL_ADDRESS with Xid 13, 31");
    assert_eq!(fb.launch.outcome_text(), "failed with Xid 43");
    assert_eq!(clean.side.launch.outcome_text(), "passed");
    assert_eq!(launches.launches(), 3, "Xids are not launches");
    assert_eq!(launches.first_seq(), Some(1));
    let json = serde_json::to_value(hit).expect("serializes");
    assert_eq!(json["xids"], json!([13, 31]), "{json}");
    assert_eq!(json["fallback"]["xids"], json!([43]), "{json}");
    assert!(serde_json::to_value(clean).expect("serializes").get("xids").is_none(), "none: no field");

    // The diff shows them on both sides.
    let d = diff(&launches, &launches);
    let c = class_of(&d, "gemm", json!({"m": 64, "route": "oob"}));
    assert_eq!(c.new.as_ref().map(|s| s.launch.xids.clone()), Some(vec![13, 31]));
    let json = serde_json::to_value(c).expect("serializes");
    assert_eq!(json["base"]["xids"], json!([13, 31]), "{json}");
    assert_eq!(json["base"]["fallback"]["xids"], json!([43]), "{json}");
    let back: CampaignDiff =
        serde_json::from_value(serde_json::to_value(&d).expect("JSON")).expect("reads back");
    assert_eq!(back, d);

    // Xids alone make no run.
    assert!(fold("b", vec![xid("b", 0, 13)]).is_empty());
}

#[test]
fn the_xids_of_a_run_are_bounded() {
    let mut ledger = Ledger::bare();
    let mut launches = RunLaunches::with_launches_max("a", 2);
    launches.apply(&ledger.push(xid("a", 0, 13))).expect("within the bound");
    launches.apply(&ledger.push(xid("a", 0, 31))).expect("within the bound");
    let err = launches.apply(&ledger.push(xid("a", 1, 43))).expect_err("past the bound");
    assert_eq!(err, CampaignError::TooManyXids { run: "a".to_owned(), xids_max: 2 });
    assert!(err.to_string().contains("more than 2 Xids"), "{err}");

    // Codes past the per-launch bound are not kept.
    let many: Vec<Ev> = std::iter::once(with(passed("a", "k", json!({})), json!({"launch": 0})))
        .chain((0..XIDS_PER_LAUNCH_MAX as u32 + 5).map(|code| xid("a", 0, code)))
        .collect();
    let cells = fold("a", many).cells();
    assert_eq!(cells[0].side.launch.xids.len(), XIDS_PER_LAUNCH_MAX);
}

#[test]
fn the_last_primary_wins_and_takes_its_own_fallback() {
    let v = json!({"n": 1});
    let events = vec![
        with(faulted("a", "k", v.clone(), "TIMEOUT"), json!({"launch": 0})),
        with(passed("a", "k", json!({"n": 1, "route": "b"})), json!({"launch": 1, "fallback_of": 0})),
        with(failed("a", "k", v.clone()), json!({"launch": 2})),
    ];
    let launches = fold("a", events.clone());
    let cells = launches.cells();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].side.launch.outcome, Outcome::Failed);
    assert!(cells[0].side.fallback.is_none(), "the fallback re-ran the replaced primary");
    assert_eq!(launches.launches(), 3);

    // Records applied out of order: the highest seq still wins.
    let mut ledger = Ledger::bare();
    let records: Vec<Record> = events.into_iter().map(|e| ledger.push(e)).collect();
    let mut reversed = RunLaunches::new("a");
    for r in records.iter().rev() {
        reversed.apply(r).expect("within the bound");
    }
    assert_eq!(reversed.cells(), cells);
}

#[test]
fn only_this_runs_launches_count_and_the_bound_holds() {
    let mut ledger = Ledger::bare();
    let mut launches = RunLaunches::with_launches_max("a", 2);
    for e in [
        passed("other", "k", json!({"n": 1})),
        metric("a", "loss", 0, 1.0),
        passed("a", "k", json!({"n": 1})),
        // The run's name in data but another subject: not this run's record.
        passed("a", "k", json!({"n": 9})).subject("run/other"),
        faulted("a", "k", json!({"n": 2}), "TIMEOUT"),
    ] {
        launches.apply(&ledger.push(e)).expect("within the bound");
    }
    assert_eq!(launches.launches(), 2);
    assert_eq!(launches.cells().len(), 2);
    let err = launches.apply(&ledger.push(passed("a", "k", json!({"n": 3})))).expect_err("past the bound");
    assert_eq!(err, CampaignError::TooManyLaunches { run: "a".to_owned(), launches_max: 2 });
    assert!(err.to_string().contains("more than 2 kernel launches"), "{err}");
    assert!(RunLaunches::new("nothing").is_empty());
}

#[test]
fn the_json_is_stable() {
    let base = fold(
        "a",
        vec![
            timed(passed("a", "k", json!({"z": 1, "a": 2})), 100, Some([90, 100, 110])),
            faulted("a", "j", json!({"n": 1}), "TIMEOUT"),
        ],
    );
    let new = fold(
        "b",
        vec![
            timed(passed("b", "k", json!({"a": 2, "z": 1})), 200, Some([150, 200, 250])),
            failed("b", "j", json!({"n": 1})),
        ],
    );
    let d = diff(&base, &new);
    let text = serde_json::to_string(&d).expect("serializes");
    assert_eq!(
        text,
        concat!(
            r#"{"base":"a","new":"b","counts":{"unchanged":2,"fixed":0,"regressed":0,"newly_faulted":0,"gone":0,"new":0},"#,
            r#""cells":[{"kernel":"j","variant":{"n":1},"class":"unchanged","base":{"outcome":"faulted","error":"TIMEOUT","seq":1},"#,
            r#""new":{"outcome":"failed","duration_us":41,"seq":1}},"#,
            r#"{"kernel":"k","variant":{"a":2,"z":1},"class":"unchanged","#,
            r#""base":{"outcome":"passed","duration_us":100,"repeats":{"count":5,"min_us":90,"median_us":100,"p90_us":110},"seq":0},"#,
            r#""new":{"outcome":"passed","duration_us":200,"repeats":{"count":5,"min_us":150,"median_us":200,"p90_us":250},"seq":0},"#,
            r#""timing":{"change":"slower","ratio":2.0,"base_us":100,"new_us":200}}]}"#
        )
    );
    let back: CampaignDiff = serde_json::from_str(&text).expect("reads back");
    assert_eq!(back, d);
}

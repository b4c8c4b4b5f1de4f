//! Determinism: replays agree with each other, with the live state, and with a snapshot
//! plus the tail, for random histories.

use assay_events::Hash32;
use assay_events::record::Record;
use assay_projections::canon::canonical_string;
use assay_projections::testkit::*;
use assay_projections::{ProjectionName, Projections};
use proptest::prelude::*;
use serde_json::json;

const GPUS: [&str; 3] = [GPU0, GPU0_NVML, GPU1];
const XIDS: [(u32, &str, &str); 5] = [
    (79, "hardware", "RESET_GPU"),
    (13, "application", "RESTART_APP"),
    (48, "hardware", "RESET_GPU"),
    (145, "nvlink", "RESET_GPU"),
    (8, "driver", "NONE"),
];

/// One event from four small numbers: every type the projections read, over a small world
/// (4 runs, 2 workers, 2 GPUs in 3 spellings, 3 slugs) so that events interact.
fn event(kind: u8, a: u8, b: u8, c: u8) -> Ev {
    let run = format!("r{}", a % 4);
    let run = run.as_str();
    let worker = if b.is_multiple_of(2) { "w0" } else { "w1" };
    let gpu = GPUS[usize::from(c) % 3];
    let slug = format!("s{}", a % 3);
    let slug = slug.as_str();
    let value = f64::from(c) / 8.0 - 4.0;
    match kind % 20 {
        0 => run_queued(run, "p", !b.is_multiple_of(3)),
        1 => worker_preflight(
            worker,
            !b.is_multiple_of(4),
            [&[GPU0, GPU1][..], &[GPU0_NVML], &[GPU1]][usize::from(c) % 3],
        ),
        2 => dispatch_requested(run, worker, if c.is_multiple_of(5) { None } else { Some(gpu) }),
        3 => run_started(run, worker, b.is_multiple_of(2).then_some(gpu)),
        4 => run_finished(run, if c.is_multiple_of(7) { None } else { Some(i64::from(c % 2)) }),
        5 => run_quiesced(run),
        6 => run_cancelled(run),
        7 => evidence_captured(run),
        8 | 9 => metric(run, if b.is_multiple_of(2) { "loss" } else { "acc" }, u64::from(c % 6), value),
        10 => {
            let variant =
                json!({"dtype": if b.is_multiple_of(2) { "f32" } else { "f16" }, "n": 1 << (c % 3)});
            if c.is_multiple_of(5) {
                kernel_faulted(run, "vector_add", variant, "cuda", "CUDA_ERROR_ILLEGAL_ADDRESS")
            } else {
                kernel_completed(
                    run,
                    "vector_add",
                    variant,
                    if c.is_multiple_of(2) { "cpu" } else { "cuda" },
                    !b.is_multiple_of(3),
                )
            }
        }
        11 => {
            let (code, severity, action) = XIDS[usize::from(b) % XIDS.len()];
            gpu_xid(gpu, code, severity, action)
        }
        12 => gpu_telemetry(gpu, i64::from(c % 90), f64::from(b % 101)),
        13 => gpu_preflight("node", !b.is_multiple_of(3), &GPUS[usize::from(c) % 2..]),
        14 => artifact_submitted(slug, u64::from(b % 3) + 1, &format!("content-{}", c % 4), &[run]),
        15 => artifact_superseded(slug, u64::from(b % 3) + 1, u64::from(b % 3) + 2),
        16 => {
            let group: Vec<String> = (0..=a % 4).map(|i| format!("r{i}")).collect();
            let others: Vec<String> = (a % 4 + 1..4).map(|i| format!("r{i}")).collect();
            let claimed = json!({"lo": "-4", "hi": format!("{}", f64::from(b) / 64.0 - 3.0)});
            let check = match c % 7 {
                0 => {
                    metric_check(run, "loss", ["last", "min", "max", "mean"][usize::from(b) % 4], "lt", "0.5")
                }
                1 => compare_check("loss", run, &format!("r{}", (a % 4 + 1) % 4), "mean", "ge", "-1.25"),
                2 => kernel_check("vector_add", b.is_multiple_of(2).then(|| json!({"dtype": "f32"})), None),
                3 => json!({"kind": "group", "metric": "loss", "runs": group, "agg": "mean",
                            "stat": if b.is_multiple_of(2) { "mean" } else { "median" }, "claimed": claimed}),
                4 if !others.is_empty() => json!({"kind": "compare_groups", "metric": "loss", "runs": group,
                            "baseline_runs": others, "agg": "last", "stat": "mean", "as": "difference",
                            "claimed": claimed}),
                5 if !others.is_empty() => json!({"kind": "replicated", "metric": "loss", "agg": "max",
                            "stat": "median", "as": "ratio", "claimed": claimed,
                            "pairs": [{"runs": group, "baseline_runs": others}, {"runs": others, "baseline_runs": group}]}),
                _ => completed_check(run),
            };
            let evidence = format!("@evidence:{run}");
            claim(slug, &format!("c{}", b % 3), check, &[evidence.as_str()])
        }
        17 => claim_withdrawn(slug, &format!("c{}", b % 3)),
        18 => match b % 8 {
            0 => paused(),
            1..=3 => resumed(),
            4 => maintenance(
                true,
                c.is_multiple_of(3).then_some(worker),
                if c.is_multiple_of(2) { &GPUS[..1] } else { &[] },
            ),
            _ => maintenance(false, None, &[]),
        },
        _ => run_heartbeat(run, f64::from(c)),
    }
}

/// A preamble (four queued runs, two workers offering both GPUs), then `events`.
fn history(events: &[(u8, u8, u8, u8)]) -> Scenario {
    let mut all: Vec<Ev> = (0..4).map(|i| run_queued(&format!("r{i}"), "p", i % 2 == 0)).collect();
    all.push(worker_preflight("w0", true, &[GPU0, GPU1]));
    all.push(worker_preflight("w1", true, &[GPU0, GPU1]));
    all.extend(events.iter().map(|&(k, a, b, c)| event(k, a, b, c)));
    given(all)
}

fn digests(p: &Projections) -> Vec<(&'static str, Hash32)> {
    p.digests().into_iter().collect()
}

fn states(p: &Projections) -> Vec<String> {
    ProjectionName::ALL
        .iter()
        .map(|n| p.state_json(*n).map(|v| canonical_string(&v)).unwrap_or_default())
        .collect()
}

fn replay(records: &[Record]) -> Projections {
    Projections::replay(records)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_plus_tail_equals_full_replay(
        events in proptest::collection::vec((0u8..20, any::<u8>(), any::<u8>(), any::<u8>()), 0..70),
        cut in any::<proptest::sample::Index>(),
    ) {
        let s = history(&events);
        let records = s.records();
        let full = replay(records);
        // The live state (applied record by record as the ledger appended) is the replay.
        prop_assert_eq!(digests(s.state()), digests(&full));
        prop_assert_eq!(full.seq(), records.last().map(|r| r.seq));
        // Replaying twice gives the same digests and the same state.
        prop_assert_eq!(digests(&replay(records)), digests(&full));
        // A snapshot (clone) at K plus the tail equals the full replay.
        let k = cut.index(records.len() + 1);
        let snapshot = replay(&records[..k]).clone();
        let mut resumed = snapshot;
        for r in &records[k..] {
            resumed.apply(r);
        }
        prop_assert_eq!(digests(&resumed), digests(&full));
        prop_assert_eq!(states(&resumed), states(&full));
        prop_assert!(resumed == full);
    }
}

#[test]
fn digests_hash_the_canonical_state_json() {
    let s = history(&[
        (0, 1, 1, 1),
        (1, 0, 1, 1),
        (2, 1, 1, 1),
        (3, 1, 0, 1),
        (8, 1, 0, 3),
        (4, 1, 0, 2),
        (7, 1, 0, 0),
        (5, 1, 0, 0),
        (14, 1, 0, 0),
        (16, 1, 0, 0),
        (11, 0, 0, 1),
        (10, 1, 0, 1),
    ]);
    let p = s.state();
    for (name, digest) in p.digests() {
        let json = p.state_json(name.parse().unwrap()).unwrap();
        assert_eq!(Hash32::blake3(canonical_string(&json).as_bytes()), digest, "{name}");
    }
    assert_eq!(p.digests().len(), ProjectionName::ALL.len());
    assert!(ProjectionName::parse("nope").is_err());
}

#[test]
fn the_verdicts_at_each_seq_are_those_of_the_prefix() {
    let s = history(&[
        (0, 1, 1, 1),
        (1, 0, 1, 1),
        (2, 1, 1, 1),
        (3, 1, 0, 1),
        (8, 1, 0, 3),
        (16, 1, 0, 0),
        (4, 1, 0, 2),
        (7, 1, 0, 0),
        (5, 1, 0, 0),
    ]);
    let records = s.records();
    let mut live = Projections::new();
    for (i, r) in records.iter().enumerate() {
        live.apply(r);
        let at = replay(&records[..=i]);
        assert_eq!(live.audit_report(), at.audit_report(), "at seq {}", r.seq);
    }
}

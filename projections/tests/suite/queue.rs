//! The queue projection.

use assay_projections::queue::{RECENT_DECISIONS, RunState};
use assay_projections::testkit::*;

fn state_of(s: &assay_projections::Projections, run: &str) -> Option<RunState> {
    s.queue.run(run).map(|r| r.state)
}

#[test]
fn a_run_moves_through_its_states() {
    given(vec![run_queued("r1", "proj", true), worker_preflight("w1", true, &[GPU0])])
        .then(|s| {
            let r = s.queue.run("r1").unwrap();
            assert_eq!(
                (r.state, r.project.as_deref(), r.needs_gpu),
                (RunState::Queued, Some("proj"), Some(true))
            );
            assert_eq!(
                r.spec.as_ref().map(|v| v.to_string()),
                Some(r#"{"command":["python","train.py"],"env":{"SEED":"7"}}"#.to_owned())
            );
        })
        .sequence(dispatch_requested("r1", "w1", Some(GPU0_NVML)))
        .then(|s| {
            let r = s.queue.run("r1").unwrap();
            assert_eq!(
                (r.state, r.worker.as_deref(), r.gpu.as_deref()),
                (RunState::Dispatched, Some("w1"), Some(GPU0))
            );
        })
        .when(run_started("r1", "w1", Some(GPU0)))
        .then(|s| assert_eq!(state_of(s, "r1"), Some(RunState::Running)))
        .when(run_heartbeat("r1", 150.0))
        .then(|s| {
            assert_eq!(
                s.queue.run("r1").and_then(|r| r.heartbeat.as_ref()).and_then(|h| h.cpu_pct),
                Some(150.0)
            )
        })
        .when(run_finished("r1", Some(0)))
        .then(|s| assert_eq!(state_of(s, "r1"), Some(RunState::Finished)))
        .when(run_quiesced("r1"))
        .then(|s| {
            assert_eq!(state_of(s, "r1"), Some(RunState::Quiesced));
            assert_eq!(s.queue.runs_in(RunState::Quiesced).collect::<Vec<_>>(), ["r1"]);
            assert_eq!(s.queue.counts()["quiesced"], 1);
            assert_eq!(s.queue.counts()["queued"], 0);
        });
}

#[test]
fn producer_times_are_kept_beside_the_ledgers_receive_times() {
    // A runner that was offline uploads its run late: each record is received an hour after
    // the runner says it happened. The first run.started counts; a repeat does not move it.
    let hour = 3600 * STEP_NS;
    let late = |e: Ev, n: i64| e.at_ns(BASE_NS + n * STEP_NS).received_at_ns(BASE_NS + hour + n * STEP_NS);
    given(vec![late(run_queued("r1", "p", false), 0)])
        .when(late(run_started("r1", "w1", None), 10))
        .when(late(run_started("r1", "w1", None), 11))
        .when(late(run_finished("r1", Some(0)), 70))
        .when(late(run_quiesced("r1"), 75))
        .then(|s| {
            let r = s.queue.run("r1").unwrap();
            let t = |n: i64| Some(rfc3339(BASE_NS + n * STEP_NS));
            assert_eq!(r.producer_time.queued, t(0));
            assert_eq!(r.producer_time.started, t(10));
            assert_eq!(r.producer_time.finished, t(70));
            assert_eq!(r.producer_time.quiesced, t(75));
            assert_eq!(r.producer_time.cancelled, None);
            assert_eq!(r.started_at_ns, Some(BASE_NS + hour + 10 * STEP_NS));
            assert_eq!(r.finished_at_ns, Some(BASE_NS + hour + 70 * STEP_NS));
            let json = s.state_json(assay_projections::ProjectionName::Queue).unwrap();
            assert_eq!(json["runs"]["r1"]["producer_time"]["started"], rfc3339(BASE_NS + 10 * STEP_NS));
        });
}

#[test]
fn failed_and_cancelled_runs() {
    given(vec![
        run_queued("f", "p", false),
        run_queued("c", "p", false),
        run_queued("k", "p", false),
        run_started("f", "w1", None),
        run_finished("f", Some(2)),
        run_quiesced("f"),
        run_cancelled("c"),
        run_started("k", "w1", None),
        run_finished("k", None),
    ])
    .then(|s| {
        assert_eq!(state_of(s, "f"), Some(RunState::Failed));
        assert!(s.queue.run("f").is_some_and(|r| r.quiesced_at_ns.is_some() && r.exit_code == Some(2)));
        assert_eq!(state_of(s, "c"), Some(RunState::Cancelled));
        assert_eq!(state_of(s, "k"), Some(RunState::Failed));
        assert_eq!(s.queue.run("k").and_then(|r| r.signal), Some(9));
    })
    // A late finish of a cancelled run keeps it cancelled.
    .when(run_finished("c", Some(0)))
    .then(|s| assert_eq!(state_of(s, "c"), Some(RunState::Cancelled)));
}

#[test]
fn lanes_follow_the_ledgers_decisions() {
    given(vec![worker_preflight("w1", true, &[GPU0, GPU1]), run_queued("r1", "p", true)])
        .then(|s| {
            let lanes = &s.queue.lanes()["w1"];
            assert_eq!(lanes.keys().collect::<Vec<_>>(), [GPU0, GPU1]);
            assert!(lanes.values().all(|l| l.offered && l.holder.is_none()));
        })
        // A decision the ledger wrote holds the lane even for a lane no preflight offered.
        .when(dispatch_decided("r1", "w9", Some(GPU1), true, &[]))
        .then(|s| assert_eq!(s.queue.lane_holder("w9", GPU1), Some("r1")))
        .when(worker_preflight("w1", true, &[GPU1]))
        .then(|s| assert!(!s.queue.lanes()["w1"][GPU0].offered))
        .when(run_quiesced("r1"))
        .then(|s| assert_eq!(s.queue.lane_holder("w9", GPU1), None));
}

#[test]
fn pause_preflight_and_decision_log() {
    given(vec![paused(), worker_preflight("w1", false, &[GPU0])])
        .then(|s| {
            assert_eq!(s.queue.paused().and_then(|p| p.reason.as_deref()), Some("driver upgrade"));
            let p = s.queue.preflight("w1").unwrap();
            assert!(!p.healthy);
            assert_eq!(p.checks.len(), 2);
            assert_eq!(p.checks[1].detail.as_deref(), Some("812 GiB free"));
        })
        .sequence(dispatch_requested("r1", "w1", Some(GPU0)))
        .then(|s| {
            let d = s.queue.decisions();
            assert_eq!((d.accepted, d.refused), (0, 1));
            assert_eq!(d.refusals_by_reason.get("paused"), Some(&1));
            assert_eq!(d.refusals_by_reason.get("run_not_queued"), Some(&1));
            let last = d.recent.back().unwrap();
            assert_eq!(last.reasons, ["run_not_queued", "paused", "preflight_failed"]);
            assert!(last.request.as_ref().is_some_and(|r| r.len() == 64));
        })
        .when(resumed())
        .then(|s| assert!(s.queue.paused().is_none()));
}

#[test]
fn the_decision_log_is_bounded() {
    let requests: Vec<Ev> =
        (0..RECENT_DECISIONS + 5).map(|i| dispatch_requested(&format!("r{i}"), "w1", None)).collect();
    given(requests).then(|s| {
        let d = s.queue.decisions();
        assert_eq!(d.refused, (RECENT_DECISIONS + 5) as u64);
        assert_eq!(d.recent.len(), RECENT_DECISIONS);
        assert_eq!(d.recent.front().map(|e| e.run.as_str()), Some("r5"));
    });
}

#[test]
fn malformed_data_is_ignored() {
    let bad = ev("run.queued", serde_json::json!({"run": 5})).unchecked();
    let bad2 = ev("dispatch.decided", serde_json::json!({"accepted": "yes"})).unchecked();
    given(vec![bad, bad2]).then(|s| {
        assert!(s.queue.runs().is_empty());
        assert_eq!(s.queue.decisions().recent.len(), 0);
    });
}

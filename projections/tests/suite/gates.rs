//! The dispatch and admission gates.

use assay_events::record::Record;
use assay_projections::gates::{GateError, MAX_REASONS};
use assay_projections::testkit::*;
use assay_projections::{
    AdmissionDecision, DispatchDecision, LedgerDecision, Projections, admission_decision, dispatch_decision,
    ledger_event_data,
};

fn dispatch(s: &Projections, r: &Record) -> DispatchDecision {
    dispatch_decision(s, r, MAX_AGE_NS).unwrap_or_else(|e| panic!("{e}"))
}

fn admission(s: &Projections, r: &Record) -> AdmissionDecision {
    admission_decision(s, r).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn refused(s: &Projections, r: &Record, reasons: &[&str]) {
    let d = dispatch(s, r);
    assert!(!d.accepted, "{d:?}");
    assert_eq!(d.reasons, reasons);
    schema::validate(d.event_type().as_str(), &ledger_event_data(&d)).unwrap_or_else(|e| panic!("{e}"));
}

#[track_caller]
fn accepted(s: &Projections, r: &Record) {
    let d = dispatch(s, r);
    assert!(d.accepted && d.reasons.is_empty(), "{d:?}");
    schema::validate(d.event_type().as_str(), &ledger_event_data(&d)).unwrap_or_else(|e| panic!("{e}"));
}

fn ready() -> Vec<Ev> {
    vec![
        run_queued("r1", "p", true),
        run_queued("r2", "p", true),
        worker_preflight("w1", true, &[GPU0, GPU1]),
    ]
}

#[test]
fn accepted_when_all_is_well_and_the_decision_matches_its_schema() {
    given(ready()).when(dispatch_requested("r1", "w1", Some(GPU0_NVML))).then_with(|s, req| {
        let d = dispatch(s, req);
        assert!(d.accepted);
        assert_eq!(d.gpu.as_deref(), Some(GPU0_NVML));
        assert_eq!(d.request, req.digest);
        assert_eq!(d.subject(), "run/r1");
        assert_eq!(d.event_type(), "dispatch.decided");
        let data = ledger_event_data(&d);
        assert_eq!(data["request"], req.digest.to_hex());
        assert_eq!(data["reasons"], serde_json::json!([]));
        schema::validate("dispatch.decided", &data).unwrap();
    });
}

#[test]
fn cpu_only_runs_hold_no_lane() {
    given(vec![
        run_queued("c1", "p", false),
        run_queued("c2", "p", false),
        worker_preflight("w1", true, &[]),
    ])
    .sequence(dispatch_requested("c1", "w1", None))
    .when(dispatch_requested("c2", "w1", None))
    .then_with(accepted);
}

#[test]
fn paused_then_resumed() {
    given(ready())
        .when(paused())
        .when(dispatch_requested("r1", "w1", Some(GPU0)))
        .then_with(|s, r| refused(s, r, &["paused"]))
        .when(resumed())
        .when(dispatch_requested("r1", "w1", Some(GPU0)))
        .then_with(accepted);
}

#[test]
fn maintenance_by_scope() {
    let req = || dispatch_requested("r1", "w1", Some(GPU0));
    given(ready())
        // Everything.
        .when(maintenance(true, None, &[]))
        .when(req())
        .then_with(|s, r| refused(s, r, &["maintenance"]))
        .when(maintenance(false, None, &[]))
        .when(req())
        .then_with(accepted)
        // All lanes of w1.
        .when(maintenance(true, Some("w1"), &[]))
        .when(req())
        .then_with(|s, r| refused(s, r, &["maintenance"]))
        .when(maintenance(false, Some("w1"), &[]))
        // GPU0 on every worker, named in the NVML form.
        .when(maintenance(true, None, &[GPU0_NVML]))
        .when(req())
        .then_with(|s, r| refused(s, r, &["maintenance"]))
        .when(dispatch_requested("r1", "w1", Some(GPU1)))
        .then_with(accepted)
        .when(maintenance(false, None, &[GPU0]))
        // One lane of another worker does not cover w1.
        .when(maintenance(true, Some("w2"), &[GPU0]))
        .when(req())
        .then_with(accepted)
        .when(maintenance(true, Some("w1"), &[GPU0]))
        .when(req())
        .then_with(|s, r| refused(s, r, &["maintenance"]))
        // Removing the worker scope does not remove its lane scope.
        .when(maintenance(false, Some("w1"), &[]))
        .when(req())
        .then_with(|s, r| refused(s, r, &["maintenance"]))
        // Off with no scope clears everything.
        .when(maintenance(false, None, &[]))
        .when(req())
        .then_with(accepted)
        .then(|s| assert!(s.queue.maintenance().is_empty()));
}

#[test]
fn preflight_missing_failed_and_stale() {
    given(vec![run_queued("r1", "p", true)])
        .when(dispatch_requested("r1", "w1", Some(GPU0)))
        .then_with(|s, r| refused(s, r, &["preflight_missing"]))
        .when(worker_preflight("w1", false, &[GPU0]))
        .when(dispatch_requested("r1", "w1", Some(GPU0)))
        .then_with(|s, r| refused(s, r, &["preflight_failed"]))
        .when(worker_preflight("w1", true, &[GPU0]))
        .then_with(|s, preflight| {
            let at = preflight.received_at_ns;
            // Exactly at the limit is fresh; one nanosecond more is stale.
            let ledger = Ledger::new();
            let fresh =
                ledger.build(dispatch_requested("r1", "w1", Some(GPU0)).received_at_ns(at + MAX_AGE_NS));
            accepted(s, &fresh);
            let stale =
                ledger.build(dispatch_requested("r1", "w1", Some(GPU0)).received_at_ns(at + MAX_AGE_NS + 1));
            refused(s, &stale, &["preflight_stale"]);
        })
        .when(worker_preflight("w1", false, &[GPU0]))
        .then_with(|s, preflight| {
            let late = Ledger::new().build(
                dispatch_requested("r1", "w1", Some(GPU0))
                    .received_at_ns(preflight.received_at_ns + MAX_AGE_NS + 1),
            );
            refused(s, &late, &["preflight_failed", "preflight_stale"]);
        });
}

#[test]
fn run_not_queued() {
    given(ready())
        .when(dispatch_requested("ghost", "w1", Some(GPU0)))
        .then_with(|s, r| refused(s, r, &["run_not_queued"]))
        .when(dispatch_requested("r1", "w1", Some(GPU0)))
        .decide()
        // Asking again for a dispatched run: not queued, and its lane is its own.
        .when(dispatch_requested("r1", "w1", Some(GPU0)))
        .then_with(|s, r| refused(s, r, &["run_not_queued", "lane_held_by:r1"]))
        .when(run_cancelled("r2"))
        .when(dispatch_requested("r2", "w1", Some(GPU1)))
        .then_with(|s, r| refused(s, r, &["run_not_queued"]));
}

#[test]
fn gpu_required_and_gpu_not_offered() {
    given(ready())
        .when(dispatch_requested("r1", "w1", None))
        .then_with(|s, r| refused(s, r, &["gpu_required"]))
        .when(dispatch_requested("r1", "w1", Some("0000:81:00.0")))
        .then_with(|s, r| refused(s, r, &["gpu_not_offered:0000:81:00.0"]));
}

#[test]
fn a_gpu_that_needs_a_reset_takes_no_work_until_a_preflight_finds_it_working() {
    given(ready())
        // An Xid that asks for no reset leaves the lane usable.
        .when(gpu_xid(GPU0, 13, "application", "RESTART_APP").on_host("w1"))
        .when(dispatch_requested("r1", "w1", Some(GPU0)))
        .then_with(accepted)
        // The same PCI id on another host, and another GPU of this host, stay usable.
        .when(gpu_xid(GPU1, 79, "hardware", "RESET_GPU").on_host("w2"))
        .when(dispatch_requested("r2", "w1", Some(GPU1)))
        .then_with(accepted)
        .when(gpu_xid(GPU1, 79, "hardware", "RESET_GPU").on_host("w1"))
        .when(dispatch_requested("r2", "w1", Some("00000000:41:00.0")))
        .then_with(|s, r| refused(s, r, &["gpu_needs_reset:00000000:41:00.0"]))
        // Another host's preflight does not clear it; this host's does.
        .when(gpu_preflight("w2", true, &[GPU1]))
        .when(dispatch_requested("r2", "w1", Some(GPU1)))
        .then_with(|s, r| refused(s, r, &[&format!("gpu_needs_reset:{GPU1}")]))
        .when(gpu_preflight("w1", true, &[GPU0, GPU1]))
        .when(dispatch_requested("r2", "w1", Some(GPU1)))
        .then_with(accepted)
        // An Xid recorded without a host counts on every host.
        .when(gpu_xid(GPU1, 48, "hardware", "RESET_GPU"))
        .when(dispatch_requested("r2", "w1", Some(GPU1)))
        .then_with(|s, r| refused(s, r, &[&format!("gpu_needs_reset:{GPU1}")]));
}

#[test]
fn the_lane_is_held_until_the_holder_quiesces() {
    given(ready())
        .sequence(dispatch_requested("r1", "w1", Some(GPU0)))
        .then(|s| assert_eq!(s.queue.lane_holder("w1", GPU0_NVML), Some("r1")))
        .when(dispatch_requested("r2", "w1", Some(GPU0_NVML)))
        .then_with(|s, r| refused(s, r, &["lane_held_by:r1"]))
        .when(run_started("r1", "w1", Some(GPU0)))
        .when(run_finished("r1", Some(1)))
        .when(evidence_captured("r1"))
        .when(dispatch_requested("r2", "w1", Some(GPU0)))
        .then_with(|s, r| refused(s, r, &["lane_held_by:r1"]))
        // The other lane of the same worker is free.
        .when(dispatch_requested("r2", "w1", Some(GPU1)))
        .then_with(accepted)
        .when(run_quiesced("r1"))
        .then(|s| assert_eq!(s.queue.lane_holder("w1", GPU0), None))
        .when(dispatch_requested("r2", "w1", Some(GPU0)))
        .then_with(accepted);
}

#[test]
fn cancelling_the_holder_frees_the_lane() {
    given(ready())
        .sequence(dispatch_requested("r1", "w1", Some(GPU0)))
        .when(run_cancelled("r1"))
        .when(dispatch_requested("r2", "w1", Some(GPU0)))
        .then_with(accepted);
}

#[test]
fn a_refused_decision_holds_nothing_and_every_reason_applies() {
    given(ready())
        .sequence(dispatch_requested("r1", "w1", Some(GPU0)))
        .when(paused())
        .when(maintenance(true, Some("w1"), &[]))
        .when(worker_preflight("w1", false, &[GPU1]))
        .then_with(|s, preflight| {
            let late = Ledger::new().build(
                dispatch_requested("ghost", "w1", Some(GPU0))
                    .received_at_ns(preflight.received_at_ns + MAX_AGE_NS + 1),
            );
            refused(
                s,
                &late,
                &[
                    "run_not_queued",
                    "paused",
                    "maintenance",
                    "preflight_failed",
                    "preflight_stale",
                    "gpu_not_offered:0000:01:00.0",
                    "lane_held_by:r1",
                ],
            );
        })
        .sequence(dispatch_requested("r2", "w1", Some(GPU1)))
        .then(|s| {
            assert_eq!(s.queue.lane_holder("w1", GPU1), None);
            assert_eq!(s.queue.run("r2").map(|r| r.state.as_str()), Some("queued"));
        });
}

#[test]
fn gates_refuse_the_wrong_record() {
    given(ready()).then_with(|s, last| {
        assert!(matches!(dispatch_decision(s, last, MAX_AGE_NS), Err(GateError::WrongType { .. })));
        assert!(matches!(admission_decision(s, last), Err(GateError::WrongType { .. })));
    });
}

// ---- admission ----

fn finished_runs() -> Vec<Ev> {
    let mut h = clean_run("r1", "w1", GPU0, &[]);
    h.extend(clean_run("r2", "w1", GPU0, &[]));
    h
}

#[track_caller]
fn rejected(s: &Projections, r: &Record, reasons: &[&str]) {
    let d = admission(s, r);
    assert!(!d.admitted, "{d:?}");
    assert_eq!(d.reasons, reasons);
    assert_eq!(d.event_type(), "artifact.rejected");
    schema::validate(d.event_type().as_str(), &ledger_event_data(&d)).unwrap_or_else(|e| panic!("{e}"));
}

#[track_caller]
fn admitted(s: &Projections, r: &Record) {
    let d = admission(s, r);
    assert!(d.admitted && d.reasons.is_empty(), "{d:?}");
    assert_eq!(d.event_type(), "artifact.admitted");
    assert_eq!(d.submission, r.digest);
    assert_eq!(d.subject(), format!("artifact/{}", d.slug));
    schema::validate(d.event_type().as_str(), &ledger_event_data(&d)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn admitted_when_runs_finished_with_evidence() {
    given(finished_runs()).when(artifact_submitted("a", 1, "a1", &["r1", "r2"])).then_with(admitted);
}

#[test]
fn runs_must_have_finished_and_captured_evidence() {
    given(vec![run_queued("q", "p", false), run_started("s", "w1", None), run_finished("f", Some(0))])
        .when(artifact_submitted("a", 1, "a1", &["q", "s", "f", "ghost"]))
        .then_with(|s, r| {
            rejected(
                s,
                r,
                &[
                    "run_not_finished:q",
                    "run_without_evidence:q",
                    "run_not_finished:s",
                    "run_without_evidence:s",
                    "run_without_evidence:f",
                    "run_not_finished:ghost",
                    "run_without_evidence:ghost",
                ],
            )
        });
}

#[test]
fn duplicates_supersession_and_versions() {
    given(finished_runs())
        .sequence(artifact_submitted("a", 1, "a1", &["r1"]))
        .then(|s| assert_eq!(s.corpus.canonical("a"), Some(1)))
        // Same content under another slug.
        .when(artifact_submitted("b", 1, "a1", &["r2"]))
        .then_with(|s, r| rejected(s, r, &["content_duplicate_of:a"]))
        // Same slug while canonical, new content.
        .when(artifact_submitted("a", 2, "a2", &["r1"]))
        .then_with(|s, r| rejected(s, r, &["slug_canonical:a@1"]))
        // Same slug, same content, same version: everything at once.
        .when(artifact_submitted("a", 1, "a1", &["r1"]))
        .then_with(|s, r| {
            rejected(s, r, &["content_duplicate_of:a", "slug_canonical:a@1", "version_not_newer"])
        })
        // Superseded first: a new version is admitted.
        .when(artifact_superseded("a", 1, 2))
        .then(|s| assert_eq!(s.corpus.canonical("a"), None))
        .when(artifact_submitted("a", 1, "a1-fixed", &["r1"]))
        .then_with(|s, r| rejected(s, r, &["version_not_newer"]))
        .sequence(artifact_submitted("a", 2, "a2", &["r1"]))
        .then(|s| assert_eq!(s.corpus.canonical("a"), Some(2)))
        // The superseded version's content stays taken.
        .when(artifact_submitted("c", 1, "a1", &[]))
        .then_with(|s, r| rejected(s, r, &["content_duplicate_of:a"]));
}

#[test]
fn a_rejected_submission_does_not_block_its_content_or_version() {
    given(finished_runs())
        .sequence(artifact_submitted("a", 1, "a1", &["r1", "late"]))
        .then(|s| assert_eq!(s.corpus.canonical("a"), None))
        .when(run_queued("late", "p", false))
        .when(run_started("late", "w1", None))
        .when(run_finished("late", Some(0)))
        .when(evidence_captured("late"))
        .when(artifact_submitted("a", 1, "a1", &["r1", "late"]))
        .then_with(admitted);
}

#[test]
fn reasons_are_capped_for_the_schema() {
    let runs: Vec<String> = (0..100).map(|i| format!("ghost-{i}")).collect();
    let refs: Vec<&str> = runs.iter().map(String::as_str).collect();
    given(vec![]).when(artifact_submitted("a", 1, "a1", &refs)).then_with(|s, r| {
        let d = admission(s, r);
        assert_eq!(d.reasons.len(), MAX_REASONS);
        assert_eq!(d.reasons.last().map(String::as_str), Some("more_reasons:137"));
        schema::validate("artifact.rejected", &ledger_event_data(&d)).unwrap();
    });
}

/// With the evidence gate on, a submission whose standing claims cite evidence without
/// `evidence.synced` is rejected, once per digest; the fact admits it; withdrawn claims and a
/// gate that is off do not count.
#[test]
fn the_evidence_gate_rejects_claims_citing_unsynced_evidence() {
    let mut h = finished_runs();
    h.push(claim("a", "c1", completed_check("r1"), &["@evidence:r1"]));
    h.push(claim("a", "c2", completed_check("r1"), &["@evidence:r1", "@evidence:r2"]));
    h.push(claim("a", "gone", completed_check("r2"), &["@evidence:r2"]));
    h.push(claim_withdrawn("a", "gone"));
    let submit = || artifact_submitted("a", 1, "a1", &["r1", "r2"]);
    given(h.clone()).when(submit()).then_with(admitted);
    h.push(evidence_sync_required(true));
    let on = given(h.clone());
    let cited = |run: &str| {
        on.ledger()
            .records()
            .iter()
            .rev()
            .find(|r| r.event.ty == "evidence.captured" && r.event.data["run"] == run)
            .map(|r| r.digest.to_hex())
            .expect("captured")
    };
    let mut expected =
        [format!("evidence_not_synced:{}", cited("r1")), format!("evidence_not_synced:{}", cited("r2"))];
    expected.sort();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    on.clone().when(submit()).then_with(|s, r| rejected(s, r, &expected));
    h.push(evidence_synced("r1"));
    h.push(evidence_synced("r2"));
    given(h.clone()).when(submit()).then_with(admitted);
    h.truncate(h.len() - 2);
    h.push(evidence_sync_required(false));
    given(h).when(submit()).then_with(admitted);
}

/// The sequencer decides with [`Projections::for_gates`], which keeps no metric points: at
/// every request of a ledger mixing metrics with runs, evidence, claims and submissions, both
/// gates decide exactly as with the whole state.
#[test]
fn the_state_for_gates_decides_as_the_whole_state() {
    let mut events = vec![run_queued("r1", "p", true), worker_preflight("w1", true, &[GPU0])];
    for step in 0..50 {
        events.push(metric("r1", "loss", step, 1.0 / (1.0 + step as f64)));
    }
    events.extend([
        dispatch_requested("r1", "w1", Some(GPU0)),
        run_started("r1", "w1", Some(GPU0)),
        metric("r1", "acc", 0, 0.9),
        artifact_submitted("a", 1, "early", &["r1"]),
        run_finished("r1", Some(0)),
        evidence_captured("r1"),
        evidence_sync_required(true),
        claim("a", "c1", metric_check("r1", "loss", "last", "le", "0.1"), &["@evidence:r1"]),
        artifact_submitted("a", 1, "unsynced", &["r1", "r2"]),
        evidence_synced("r1"),
        artifact_submitted("a", 2, "synced", &["r1"]),
        dispatch_requested("r1", "w1", Some(GPU0)),
    ]);
    let mut ledger = Ledger::new();
    for e in events {
        ledger.push(e);
    }
    let (mut whole, mut lean) = (Projections::new(), Projections::for_gates());
    let (mut decided, mut reasons) = (0, Vec::new());
    for r in ledger.records() {
        match r.event.ty.as_str() {
            "dispatch.requested" => {
                assert_eq!(dispatch(&whole, r), dispatch(&lean, r));
                decided += 1;
            }
            "artifact.submitted" => {
                let d = admission(&whole, r);
                assert_eq!(d, admission(&lean, r));
                reasons.extend(d.reasons);
                decided += 1;
            }
            _ => {}
        }
        whole.apply(r);
        lean.apply(r);
    }
    assert_eq!(decided, 5);
    // The admissions read what the audit keeps: runs finished, evidence, unsynced citations.
    for reason in ["run_not_finished:r1", "run_without_evidence:r2", "evidence_not_synced:"] {
        assert!(reasons.iter().any(|r| r.starts_with(reason)), "{reason} in {reasons:?}");
    }
    // What it leaves out is the metric points, and only them.
    assert_eq!(whole.audit.series("r1", "loss").len(), 50);
    assert!(lean.audit.series("r1", "loss").is_empty());
    assert_eq!(whole.audit.runs(), lean.audit.runs());
    assert_eq!(whole.audit.claims(), lean.audit.claims());
    assert_eq!((&whole.keys, &whole.queue, &whole.corpus), (&lean.keys, &lean.queue, &lean.corpus));
    assert_eq!((&whole.gpus, &whole.kernels), (&lean.gpus, &lean.kernels));
}

//! Audit verdicts and reasons from small hand-written histories.

use assay_projections::Projections;
use assay_projections::audit::{ClaimVerdict, Verdict};
use assay_projections::testkit::*;
use serde_json::json;

fn verdict(s: &Projections, slug: &str, claim: &str) -> ClaimVerdict {
    s.audit.verdict(slug, claim, &s.keys).unwrap_or_else(|| panic!("no verdict for {slug}/{claim}"))
}

#[track_caller]
fn assert_verdict(s: &Projections, slug: &str, claim: &str, expected: Verdict, reasons: &[&str]) {
    let v = verdict(s, slug, claim);
    assert_eq!(
        (v.verdict, v.reasons.iter().map(String::as_str).collect::<Vec<_>>()),
        (expected, reasons.to_vec()),
        "{v:#?}"
    );
}

/// loss: step 0 → 3.0, 1 → 2.0, 2 → 1.5, then step 2 again → 1.25 (latest seq wins `last`).
fn loss_run(run: &str) -> Vec<Ev> {
    clean_run(run, "w1", GPU0, &[("loss", 0, 3.0), ("loss", 1, 2.0), ("loss", 2, 1.5), ("loss", 2, 1.25)])
}

fn history(parts: Vec<Vec<Ev>>) -> Vec<Ev> {
    parts.into_iter().flatten().collect()
}

#[test]
fn metric_claims_supported_with_each_aggregation() {
    given(history(vec![
        loss_run("r1"),
        vec![
            artifact_submitted("a", 1, "a-content", &["r1"]),
            claim("a", "last", metric_check("r1", "loss", "last", "eq", "1.25"), &["@evidence:r1"]),
            claim("a", "min", metric_check("r1", "loss", "min", "le", "1.25"), &["@evidence:r1"]),
            claim("a", "max", metric_check("r1", "loss", "max", "ge", "3"), &["@evidence:r1"]),
            claim("a", "mean", metric_check("r1", "loss", "mean", "eq", "1.9375"), &["@evidence:r1"]),
        ],
    ]))
    .then(|s| {
        for id in ["last", "min", "max", "mean"] {
            assert_verdict(s, "a", id, Verdict::Supported, &[]);
        }
        assert_eq!(verdict(s, "a", "mean").context, ["observed:7.75/4"]);
        assert_eq!(verdict(s, "a", "last").context, ["observed:1.25"]);
        let report = s.audit_report();
        assert_eq!(report.headline, "1 of 1 canonical artifacts pass the claim/evidence audit");
        assert_eq!(report.verdicts.supported, 4);
        assert!(report.artifact("a").is_some_and(|a| a.passes && a.canonical_version == Some(1)));
    });
}

#[test]
fn eq_is_exact_not_fooled_by_float_noise() {
    // The binary64 mean of 0.1 and 0.2 is 0.15000000000000002; the decimal mean is 0.15.
    given(history(vec![
        clean_run("r1", "w1", GPU0, &[("x", 0, 0.1), ("x", 1, 0.2)]),
        vec![
            claim("a", "mean", metric_check("r1", "x", "mean", "eq", "0.15"), &["@evidence:r1"]),
            claim("a", "mean-above", metric_check("r1", "x", "mean", "gt", "0.15"), &["@evidence:r1"]),
            claim(
                "a",
                "max",
                metric_check("r1", "x", "max", "eq", "0.2000000000000000001"),
                &["@evidence:r1"],
            ),
        ],
    ]))
    .then(|s| {
        assert_verdict(s, "a", "mean", Verdict::Supported, &[]);
        assert_verdict(s, "a", "mean-above", Verdict::Contradicted, &["value_mismatch"]);
        assert_verdict(s, "a", "max", Verdict::Contradicted, &["value_mismatch"]);
    });
}

#[test]
fn contradicted_when_the_value_does_not_hold() {
    given(history(vec![
        loss_run("r1"),
        vec![claim("a", "c1", metric_check("r1", "loss", "last", "lt", "1.2"), &["@evidence:r1"])],
    ]))
    .then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Contradicted, &["value_mismatch"]);
        assert_eq!(verdict(s, "a", "c1").context, ["observed:1.25"]);
    });
}

#[test]
fn unsupported_metric_missing() {
    given(history(vec![
        loss_run("r1"),
        vec![claim("a", "c1", metric_check("r1", "acc", "max", "gt", "0.9"), &["@evidence:r1"])],
    ]))
    .then(|s| assert_verdict(s, "a", "c1", Verdict::Unsupported, &["metric_missing:r1"]));
}

#[test]
fn unsupported_until_the_run_finishes_quiesces_and_has_evidence() {
    let check = metric_check("r1", "loss", "last", "lt", "2");
    given(vec![
        run_queued("r1", "p", true),
        worker_preflight("w1", true, &[GPU0]),
        dispatch_requested("r1", "w1", Some(GPU0)),
        run_started("r1", "w1", Some(GPU0)),
        metric("r1", "loss", 0, 1.5),
        claim("a", "c1", check, &[]),
    ])
    .then(|s| {
        assert_verdict(
            s,
            "a",
            "c1",
            Verdict::Unsupported,
            &["evidence_missing", "run_not_finished:r1", "run_without_evidence:r1"],
        )
    })
    .when(run_finished("r1", Some(0)))
    .then(|s| {
        assert_verdict(
            s,
            "a",
            "c1",
            Verdict::Unsupported,
            &["evidence_missing", "run_not_quiesced:r1", "run_without_evidence:r1"],
        )
    })
    .when(evidence_captured("r1"))
    .then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Unsupported, &["evidence_missing", "run_not_quiesced:r1"])
    })
    // Late evidence: the claim is restated citing the bundle, then the run quiesces.
    .when(claim("a", "c1", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]))
    .then(|s| assert_verdict(s, "a", "c1", Verdict::Unsupported, &["run_not_quiesced:r1"]))
    .when(run_quiesced("r1"))
    .then(|s| assert_verdict(s, "a", "c1", Verdict::Supported, &[]));
}

#[test]
fn unknown_run_and_unknown_evidence() {
    let unknown = hex_of("not an event");
    given(vec![claim("a", "c1", metric_check("ghost", "loss", "last", "lt", "2"), &[&unknown])]).then(|s| {
        assert_verdict(
            s,
            "a",
            "c1",
            Verdict::Unsupported,
            &[
                &format!("evidence_missing:{unknown}"),
                "metric_missing:ghost",
                "run_not_finished:ghost",
                "run_without_evidence:ghost",
            ],
        )
    });
}

#[test]
fn tainted_by_a_hardware_xid_in_the_window_on_the_runs_gpu() {
    // The run starts on the NVML form of GPU0; the Xid names the kernel-log form.
    let mut h = loss_run("r1");
    h[3] = run_started("r1", "w1", Some(GPU0_NVML));
    h.insert(5, gpu_xid(GPU0, 79, "hardware", "RESET_GPU"));
    h.insert(5, gpu_xid(GPU0, 13, "application", "RESTART_APP"));
    h.push(claim("a", "c1", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]));
    given(h).then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Tainted, &["xid_hardware_in_window:79"]);
        assert_eq!(verdict(s, "a", "c1").context, ["observed:1.25", "xid_application_in_window:13"]);
    });
}

#[test]
fn application_xid_in_the_window_is_context_only() {
    let mut h = loss_run("r1");
    h.insert(5, gpu_xid(GPU0, 13, "application", "RESTART_APP"));
    h.insert(5, gpu_xid(GPU0, 43, "application", "NONE"));
    h.push(claim("a", "c1", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]));
    given(h).then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Supported, &[]);
        assert_eq!(
            verdict(s, "a", "c1").context,
            ["observed:1.25", "xid_application_in_window:13", "xid_application_in_window:43"]
        );
    });
}

#[test]
fn hardware_xid_outside_the_window_or_on_another_gpu_does_not_taint() {
    let mut h = vec![gpu_xid(GPU0, 48, "hardware", "RESET_GPU")]; // before the start
    h.extend(loss_run("r1"));
    h.insert(6, gpu_xid(GPU1, 79, "hardware", "RESET_GPU")); // in the window, other GPU
    h.push(gpu_xid(GPU0, 79, "hardware", "RESET_GPU")); // after the finish
    h.push(claim("a", "c1", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]));
    given(h).then(|s| assert_verdict(s, "a", "c1", Verdict::Supported, &[]));
}

/// Two nodes of one model have the same PCI bus ids: r1 runs on w1's GPU0, r2 on w2's.
fn two_hosts_one_pci() -> Vec<Ev> {
    let mut h = loss_run("r1");
    h.extend(clean_run("r2", "w2", GPU0, &[("loss", 0, 1.0)]));
    h
}

/// Inserts `xid` into both runs' windows (after their `run.started`).
fn in_both_windows(mut h: Vec<Ev>, xid: Ev) -> Vec<Ev> {
    let started: Vec<usize> =
        h.iter().enumerate().filter(|(_, e)| e.ty == "run.started").map(|(i, _)| i).collect();
    for at in started.into_iter().rev() {
        h.insert(at + 1, xid.clone());
    }
    h
}

fn claims_on_both(mut h: Vec<Ev>) -> Vec<Ev> {
    h.push(claim("a", "c1", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]));
    h.push(claim("b", "c2", metric_check("r2", "loss", "last", "lt", "2"), &["@evidence:r2"]));
    h
}

#[test]
fn an_xid_on_one_host_does_not_taint_a_run_on_the_same_pci_of_another() {
    let h = in_both_windows(two_hosts_one_pci(), gpu_xid(GPU0, 79, "hardware", "RESET_GPU").on_host("w1"));
    given(claims_on_both(h)).then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Tainted, &["xid_hardware_in_window:79"]);
        assert_verdict(s, "b", "c2", Verdict::Supported, &[]);
        assert!(!verdict(s, "b", "c2").context.iter().any(|c| c.starts_with("xid_")));
    });
    // The same with the host in the NVML form of the PCI id and the run on the other host.
    let h =
        in_both_windows(two_hosts_one_pci(), gpu_xid(GPU0_NVML, 48, "hardware", "RESET_GPU").on_host("w2"));
    given(claims_on_both(h)).then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Supported, &[]);
        assert_verdict(s, "b", "c2", Verdict::Tainted, &["xid_hardware_in_window:48"]);
    });
}

#[test]
fn an_xid_without_a_host_taints_runs_on_that_pci_of_every_host() {
    let h = in_both_windows(two_hosts_one_pci(), gpu_xid(GPU0, 79, "hardware", "RESET_GPU"));
    given(claims_on_both(h)).then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Tainted, &["xid_hardware_in_window:79"]);
        assert_verdict(s, "b", "c2", Verdict::Tainted, &["xid_hardware_in_window:79"]);
    });
}

#[test]
fn an_xid_recorded_late_counts_by_its_own_time() {
    // Recorded after the run finished, but its time lies inside the window (seqs 6+: the
    // run starts at the 4th event after genesis).
    let s = given(loss_run("r1"));
    let started = s
        .records()
        .iter()
        .find(|r| r.event.ty == "run.started")
        .map(|r| r.received_at_ns)
        .unwrap_or_default();
    s.when(gpu_xid(GPU0, 95, "hardware", "DRAIN_AND_RESET").at_ns(started + 1))
        .when(gpu_xid(GPU0, 145, "nvlink", "RESET_GPU").at_ns(started + 2))
        .when(gpu_xid(GPU0, 154, "hardware", "RESET_GPU").at_ns(started + 3))
        .when(claim("a", "c1", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]))
        .then(|s| {
            assert_verdict(
                s,
                "a",
                "c1",
                Verdict::Tainted,
                &["xid_hardware_in_window:154", "xid_hardware_in_window:95", "xid_nvlink_in_window:145"],
            )
        });
}

#[test]
fn xid_during_an_unfinished_run_taints_it() {
    given(vec![
        run_queued("r1", "p", true),
        worker_preflight("w1", true, &[GPU0]),
        dispatch_requested("r1", "w1", Some(GPU0)),
        gpu_xid(GPU0, 79, "hardware", "RESET_GPU"),
        claim("a", "c1", completed_check("r1"), &["@evidence:r1"]),
    ])
    // The dispatch gave the run its GPU, but it never started: no window, so no taint.
    .then(|s| assert_eq!(verdict(s, "a", "c1").verdict, Verdict::Unsupported))
    .when(run_started("r1", "w1", None))
    .when(gpu_xid(GPU0, 79, "hardware", "RESET_GPU"))
    .then(|s| assert_eq!(verdict(s, "a", "c1").verdict, Verdict::Tainted));
}

#[test]
fn withdrawn_claims_do_not_count() {
    given(history(vec![
        loss_run("r1"),
        vec![
            artifact_submitted("a", 1, "a-content", &["r1"]),
            claim("a", "good", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]),
            claim("a", "bad", metric_check("r1", "loss", "last", "lt", "1"), &["@evidence:r1"]),
        ],
    ]))
    .then(|s| {
        let r = s.audit_report();
        assert_eq!(r.artifacts_passing, 0);
        assert_eq!(
            r.artifact("a").map(|a| a.reasons.clone()),
            Some(vec!["claim_contradicted:bad".to_owned()])
        );
    })
    .when(claim_withdrawn("a", "bad"))
    .then(|s| {
        assert!(s.audit.verdict("a", "bad", &s.keys).is_none());
        let r = s.audit_report();
        assert_eq!(r.headline, "1 of 1 canonical artifacts pass the claim/evidence audit");
        assert_eq!(r.claims.len(), 1);
        assert_eq!(r.withdrawn.len(), 1);
        assert_eq!(r.verdicts.total(), 1);
    })
    .when(claim_withdrawn("a", "good"))
    .then(|s| {
        let r = s.audit_report();
        assert_eq!(r.headline, "0 of 1 canonical artifacts pass the claim/evidence audit");
        assert_eq!(r.artifact("a").map(|a| a.reasons.clone()), Some(vec!["no_claims".to_owned()]));
    });
}

#[test]
fn compare_checks_with_margin() {
    given(history(vec![
        clean_run("fast", "w1", GPU0, &[("tok_s", 0, 1600.5), ("tok_s", 1, 1700.5)]),
        clean_run("base", "w1", GPU0, &[("tok_s", 0, 100.0), ("tok_s", 1, 150.0), ("tok_s", 2, 50.0)]),
        vec![
            // mean(fast) − mean(base) = 1650.5 − 100 = 1550.5 exactly.
            claim(
                "a",
                "ge",
                compare_check("tok_s", "fast", "base", "mean", "ge", "1500"),
                &["@evidence:fast", "@evidence:base"],
            ),
            claim(
                "a",
                "eq",
                compare_check("tok_s", "fast", "base", "mean", "eq", "1550.5"),
                &["@evidence:fast"],
            ),
            claim(
                "a",
                "gt",
                compare_check("tok_s", "fast", "base", "mean", "gt", "1550.5"),
                &["@evidence:fast"],
            ),
            claim(
                "a",
                "neg",
                compare_check("tok_s", "base", "fast", "max", "lt", "-1550"),
                &["@evidence:fast"],
            ),
            claim(
                "a",
                "missing",
                compare_check("loss", "fast", "base", "last", "lt", "0"),
                &["@evidence:fast"],
            ),
        ],
    ]))
    .then(|s| {
        assert_verdict(s, "a", "ge", Verdict::Supported, &[]);
        assert_verdict(s, "a", "eq", Verdict::Supported, &[]);
        assert_verdict(s, "a", "gt", Verdict::Contradicted, &["value_mismatch"]);
        // max(base) − max(fast) = 150 − 1700.5 = −1550.5 < −1550.
        assert_verdict(s, "a", "neg", Verdict::Supported, &[]);
        assert_verdict(
            s,
            "a",
            "missing",
            Verdict::Unsupported,
            &["metric_missing:base", "metric_missing:fast"],
        );
        assert_eq!(verdict(s, "a", "ge").context, ["observed_delta:3301/2 - 300/3"]);
        assert_eq!(verdict(s, "a", "ge").runs, ["base", "fast"]);
    });
}

#[test]
fn compare_checks_need_both_runs_settled() {
    let mut h = clean_run("fast", "w1", GPU0, &[("tok_s", 0, 1600.5)]);
    h.extend([run_queued("base", "p", false), metric("base", "tok_s", 0, 1.0)]);
    h.push(claim("a", "c", compare_check("tok_s", "fast", "base", "last", "gt", "0"), &["@evidence:fast"]));
    given(h).then(|s| {
        assert_verdict(
            s,
            "a",
            "c",
            Verdict::Unsupported,
            &["run_not_finished:base", "run_without_evidence:base"],
        )
    });
}

fn campaign() -> Vec<Ev> {
    let mut h = vec![
        run_queued("camp", "kernels", true),
        worker_preflight("w1", true, &[GPU0]),
        dispatch_requested("camp", "w1", Some(GPU0)),
        run_started("camp", "w1", Some(GPU0)),
    ];
    h.extend([
        kernel_completed("camp", "vector_add", json!({"dtype": "f32", "n": 1024, "block": 256}), "cpu", true),
        kernel_completed(
            "camp",
            "vector_add",
            json!({"n": 1024, "dtype": "f32", "block": 256}),
            "cuda",
            true,
        ),
        kernel_completed(
            "camp",
            "vector_add",
            json!({"dtype": "f32", "n": 4096, "block": 128}),
            "cuda",
            true,
        ),
        kernel_completed(
            "camp",
            "vector_add",
            json!({"dtype": "f16", "n": 1024, "block": 256}),
            "cuda",
            false,
        ),
        kernel_faulted(
            "camp",
            "oob_write",
            json!({"dtype": "f32", "n": 4096, "block": 128}),
            "cuda",
            "CUDA_ERROR_ILLEGAL_ADDRESS",
        ),
        kernel_completed("camp", "oob_write", json!({"dtype": "f32", "n": 64, "block": 32}), "cpu", true),
        run_finished("camp", Some(0)),
        evidence_captured("camp"),
        run_quiesced("camp"),
    ]);
    h
}

#[test]
fn kernel_checks() {
    let e = &["@evidence:camp"];
    let mut h = campaign();
    h.extend([
        claim("k", "f32", kernel_check("vector_add", Some(json!({"dtype": "f32"})), None), e),
        claim(
            "k",
            "f32-cuda-1024",
            kernel_check("vector_add", Some(json!({"n": 1024, "dtype": "f32"})), Some("cuda")),
            e,
        ),
        claim("k", "all", kernel_check("vector_add", None, None), e),
        claim("k", "f16", kernel_check("vector_add", Some(json!({"dtype": "f16"})), Some("cuda")), e),
        claim("k", "oob", kernel_check("oob_write", None, Some("cuda")), e),
        claim("k", "oob-cpu", kernel_check("oob_write", None, Some("cpu")), e),
        claim("k", "matmul", kernel_check("matmul", None, None), e),
        claim("k", "f64", kernel_check("vector_add", Some(json!({"dtype": "f64"})), None), e),
    ]);
    given(h).then(|s| {
        assert_verdict(s, "k", "f32", Verdict::Supported, &[]);
        assert_eq!(verdict(s, "k", "f32").context, ["launches:passed=3,failed=0,faulted=0"]);
        assert_eq!(verdict(s, "k", "f32").runs, ["camp"]);
        assert_verdict(s, "k", "f32-cuda-1024", Verdict::Supported, &[]);
        assert_verdict(s, "k", "all", Verdict::Contradicted, &["kernel_failed"]);
        assert_verdict(s, "k", "f16", Verdict::Contradicted, &["kernel_failed"]);
        assert_verdict(s, "k", "oob", Verdict::Contradicted, &["kernel_faulted"]);
        assert_eq!(
            verdict(s, "k", "oob").context,
            ["kernel_error:CUDA_ERROR_ILLEGAL_ADDRESS", "launches:passed=0,failed=0,faulted=1"]
        );
        assert_verdict(s, "k", "oob-cpu", Verdict::Supported, &[]);
        assert_verdict(s, "k", "matmul", Verdict::Unsupported, &["kernel_missing"]);
        assert_verdict(s, "k", "f64", Verdict::Unsupported, &["kernel_missing"]);
    });
}

#[test]
fn kernel_checks_are_tainted_through_their_launch_runs() {
    let mut h = campaign();
    h.insert(5, gpu_xid(GPU0, 62, "hardware", "RESET_GPU"));
    h.push(claim(
        "k",
        "f32",
        kernel_check("vector_add", Some(json!({"dtype": "f32"})), None),
        &["@evidence:camp"],
    ));
    given(h).then(|s| assert_verdict(s, "k", "f32", Verdict::Tainted, &["xid_hardware_in_window:62"]));
}

/// A command campaign's run (no `run.started`: the runner records launches only) whose
/// first launch had Xid `code` of `severity` attached to it, and a kernel claim on it.
fn campaign_with_attached_xid(code: u32, severity: &str, attached: bool) -> Vec<Ev> {
    let mut launch =
        kernel_completed("sweep", "fp4_gemm", json!({"m": 128, "route": "cutlass"}), "cuda", true);
    launch.data["launch"] = json!(0);
    let mut xid = gpu_xid(GPU0, code, severity, "RESET_GPU");
    if attached {
        xid.data["run"] = json!("sweep");
        xid.data["launch"] = json!(0);
    }
    vec![
        launch,
        xid,
        evidence_captured("sweep"),
        claim("k", "gemm", kernel_check("fp4_gemm", None, None), &["@evidence:sweep"]),
    ]
}

#[test]
fn an_xid_attached_to_a_launch_taints_kernel_claims_on_its_run() {
    given(campaign_with_attached_xid(48, "hardware", true))
        .then(|s| assert_verdict(s, "k", "gemm", Verdict::Tainted, &["xid_hardware_in_launch:48"]));
    given(campaign_with_attached_xid(13, "application", true)).then(|s| {
        assert_verdict(s, "k", "gemm", Verdict::Supported, &[]);
        assert!(verdict(s, "k", "gemm").context.contains(&"xid_application_in_launch:13".to_owned()));
    });
    // The same Xid not attached to the launch (and no run window to put it in) does not taint.
    given(campaign_with_attached_xid(48, "hardware", false))
        .then(|s| assert_verdict(s, "k", "gemm", Verdict::Supported, &[]));
}

#[test]
fn completed_checks() {
    let mut h = clean_run("ok", "w1", GPU0, &[]);
    h.extend(clean_run("bad", "w1", GPU0, &[]));
    let n = h.len();
    h[n - 3] = run_finished("bad", Some(1));
    h.extend(clean_run("killed", "w1", GPU0, &[("loss", 0, 1.0)]));
    let n = h.len();
    h[n - 3] = run_finished("killed", None);
    h.extend([run_queued("later", "p", false)]);
    h.extend([
        claim("a", "ok", completed_check("ok"), &["@evidence:ok"]),
        claim("a", "bad", completed_check("bad"), &["@evidence:bad"]),
        claim("a", "killed", completed_check("killed"), &["@evidence:killed"]),
        claim("a", "killed-metric", metric_check("killed", "loss", "last", "le", "1"), &["@evidence:killed"]),
        claim("a", "later", completed_check("later"), &["@evidence:ok"]),
    ]);
    given(h).then(|s| {
        assert_verdict(s, "a", "ok", Verdict::Supported, &[]);
        assert_verdict(s, "a", "bad", Verdict::Contradicted, &["run_failed:bad"]);
        assert_verdict(s, "a", "killed", Verdict::Contradicted, &["run_failed:killed"]);
        // Metrics of a run that then failed still stand; the failure is context.
        assert_verdict(s, "a", "killed-metric", Verdict::Supported, &[]);
        assert_eq!(verdict(s, "a", "killed-metric").context, ["observed:1", "run_failed:killed"]);
        assert_verdict(
            s,
            "a",
            "later",
            Verdict::Unsupported,
            &["run_not_finished:later", "run_without_evidence:later"],
        );
    });
}

#[test]
fn producer_lacks_role() {
    let author = key("author").keyid();
    let stranger = key("stranger").keyid();
    let mut h = clean_run("r1", "w1", GPU0, &[("loss", 0, 1.0)]);
    h.push(claim("a", "worker-signed", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    h.push(evidence_captured("r1").signed_by("author"));
    h.push(claim("a", "author-signed", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    h.push(evidence_captured("r1").signed_by("stranger"));
    h.push(claim("a", "stranger-signed", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    given(h).then(|s| {
        assert_verdict(s, "a", "worker-signed", Verdict::Supported, &[]);
        assert_verdict(
            s,
            "a",
            "author-signed",
            Verdict::Tainted,
            &[&format!("producer_lacks_role:{author}")],
        );
        assert_verdict(
            s,
            "a",
            "stranger-signed",
            Verdict::Tainted,
            &[&format!("producer_lacks_role:{stranger}")],
        );
    });
}

#[test]
fn revocation_after_the_evidence_leaves_it_valid_before_does_not() {
    let mut h = clean_run("r1", "w1", GPU0, &[("loss", 0, 1.0)]);
    h.push(evidence_captured("r1").signed_by("runner"));
    h.push(claim("a", "before", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    h.push(key_revoked("runner"));
    h.push(evidence_captured("r1").signed_by("runner"));
    h.push(claim("a", "after", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    given(h).then(|s| {
        assert_verdict(s, "a", "before", Verdict::Supported, &[]);
        assert_verdict(
            s,
            "a",
            "after",
            Verdict::Tainted,
            &[&format!("producer_lacks_role:{}", key("runner").keyid())],
        );
    });
}

#[test]
fn role_changes_count_from_their_seq() {
    // `worker` loses the worker role (re-registered as author) after signing one bundle.
    let mut h = clean_run("r1", "w1", GPU0, &[("loss", 0, 1.0)]);
    h.push(claim("a", "before", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    h.push(key_registered("worker", &["author"]));
    h.push(evidence_captured("r1"));
    h.push(claim("a", "after", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    given(h).then(|s| {
        assert_verdict(s, "a", "before", Verdict::Supported, &[]);
        assert_eq!(verdict(s, "a", "after").verdict, Verdict::Tainted);
    });
}

#[test]
fn a_check_that_does_not_parse_is_unsupported() {
    let bogus = ev(
        "claim.asserted",
        json!({"artifact": "a", "claim": "c", "statement": "s", "check": {"kind": "vibes"}, "evidence": []}),
    )
    .unchecked();
    given(vec![bogus]).then(|s| {
        let v = verdict(s, "a", "c");
        assert_eq!((v.verdict, v.kind), (Verdict::Unsupported, "invalid"));
        assert_eq!(v.reasons, ["check_invalid", "evidence_missing"]);
    });
}

#[test]
fn artifacts_pass_only_when_canonical_with_all_claims_supported() {
    let mut h = loss_run("r1");
    h.extend([
        // a: admitted, one supported claim → passes.
        artifact_submitted("a", 1, "a1", &["r1"]),
        claim("a", "c", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]),
        // b: admitted, one supported and one contradicted claim → fails.
        artifact_submitted("b", 1, "b1", &["r1"]),
        claim("b", "ok", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]),
        claim("b", "no", metric_check("r1", "loss", "last", "gt", "2"), &["@evidence:r1"]),
        // c: admitted, no claims → fails.
        artifact_submitted("c", 1, "c1", &["r1"]),
        // d: rejected (unfinished run), supported claim → not canonical, not counted.
        artifact_submitted("d", 1, "d1", &["r1", "ghost"]),
        claim("d", "c", metric_check("r1", "loss", "last", "lt", "2"), &["@evidence:r1"]),
    ]);
    given(h)
        .then(|s| {
            let r = s.audit_report();
            assert_eq!(r.headline, "1 of 3 canonical artifacts pass the claim/evidence audit");
            assert_eq!((r.artifacts_canonical, r.artifacts_passing), (3, 1));
            assert_eq!(r.verdicts.supported, 2);
            assert_eq!(r.verdicts.contradicted, 1);
            let reasons = |slug: &str| r.artifact(slug).map(|a| a.reasons.clone()).unwrap_or_default();
            assert_eq!(reasons("b"), ["claim_contradicted:no"]);
            assert_eq!(reasons("c"), ["no_claims"]);
            assert_eq!(reasons("d"), ["not_canonical"]);
            assert_eq!(r.claims.len(), 4);
        })
        // Claims belong to the slug: superseding b and admitting a new version keeps them.
        .when(artifact_superseded("b", 1, 2))
        .then(|s| assert_eq!(s.audit_report().artifacts_canonical, 2))
        .sequence(artifact_submitted("b", 2, "b2", &["r1"]))
        .when(claim_withdrawn("b", "no"))
        .then(|s| {
            assert_eq!(s.audit_report().headline, "2 of 3 canonical artifacts pass the claim/evidence audit")
        });
}

/// The evidence gate: off, nothing changes; on, a claim whose cited evidence has no
/// `evidence.synced` is unsupported; the fact clears it; off again, the rule no longer applies.
#[test]
fn evidence_not_synced_only_while_the_gate_is_on() {
    let mut h = clean_run("r1", "w1", GPU0, &[("loss", 0, 1.0)]);
    h.push(claim("a", "c1", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    let off = given(h.clone());
    let off = off.then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Supported, &[]);
        assert!(!s.audit.evidence_sync_required());
        // Ledgers without the gate's events serialize as before (their digests stay).
        let state = serde_json::to_string(&s.audit).unwrap();
        assert!(!state.contains("synced") && !state.contains("evidence_sync_required"), "{state}");
    });
    let on = off.clone().when(evidence_sync_required(true));
    let digest = verdict(on.state(), "a", "c1").evidence[0].clone();
    on.clone().then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Unsupported, &[&format!("evidence_not_synced:{digest}")]);
        assert_eq!(s.audit.unsynced_cited("a").into_iter().collect::<Vec<_>>(), [digest.as_str()]);
    });
    on.clone().when(evidence_synced("r1")).then(|s| {
        assert_verdict(s, "a", "c1", Verdict::Supported, &[]);
        assert!(s.audit.evidence(&digest).is_some_and(|e| e.synced.is_some()));
        assert!(s.audit.unsynced_cited("a").is_empty());
    });
    on.when(evidence_sync_required(false)).then(|s| assert_verdict(s, "a", "c1", Verdict::Supported, &[]));
    // A fact naming an event that is no evidence changes nothing.
    let mut h = clean_run("r1", "w1", GPU0, &[("loss", 0, 1.0)]);
    h.push(evidence_sync_required(true));
    h.push(ev("evidence.synced", json!({"run": "r1", "evidence": "0".repeat(64), "files": 1})));
    h.push(claim("a", "c1", metric_check("r1", "loss", "last", "le", "1"), &["@evidence:r1"]));
    given(h).then(|s| assert_eq!(verdict(s, "a", "c1").verdict, Verdict::Unsupported));
}

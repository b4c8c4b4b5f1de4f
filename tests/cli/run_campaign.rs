//! `assay run campaign` and `assay gpu preflight` through the binary, into real ledgers:
//! every cell recorded, the broken variant failed with its max error, an aborting child
//! recorded as faulted, and nothing panics without a GPU.

use crate::support;
use crate::support::runner as runner_support;

use std::ffi::OsStr;

use assay_kernels::campaign::Campaign;
use runner_support::{Rig, campaigns};
use serde_json::Value;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn no_panic(out: &support::Out) {
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn smoke_campaign_records_every_cell() {
    let rig = Rig::new();
    let file = campaigns().join("smoke.toml");
    let campaign = Campaign::load(&file).expect("smoke.toml parses");
    let out = rig
        .run(
            &["run", "campaign"],
            &[file.as_os_str(), os("--run"), os("smoke-1"), os("--backend"), os("auto"), os("--json")],
        )
        .ok();
    no_panic(&out);
    let summary = out.json();
    assert_eq!(summary["run"], "smoke-1");
    assert_eq!(
        summary["totals"]["passed"].as_u64().unwrap_or(0) + summary["totals"]["failed"].as_u64().unwrap_or(0),
        campaign.cells.len() as u64
    );

    let records = rig.check_signed_and_verified();
    // gpu.preflight first, saying why CUDA is unavailable when it is.
    assert_eq!(records[0]["type"], "gpu.preflight");
    assert_eq!(records[0]["subject"], "worker/runner");
    let preflight = &records[0]["event"]["data"];
    if preflight["available"] == false {
        assert!(preflight["unavailable_reason"].as_str().is_some_and(|r| !r.is_empty()), "{preflight}");
        assert_eq!(summary["backend"], "cpu");
    }
    let launches: Vec<&Value> = records[1..].iter().collect();
    assert_eq!(launches.len(), campaign.cells.len(), "one event per cell");
    for (record, cell) in launches.iter().zip(&campaign.cells) {
        assert_eq!(record["type"], "kernel.launch.completed", "{record}");
        assert_eq!(record["subject"], "run/smoke-1");
        let data = &record["event"]["data"];
        assert_eq!(data["kernel"], cell.spec.name());
        assert_eq!(data["variant"], cell.variant());
        assert_eq!(data["run"], "smoke-1");
        let broken = cell.spec.name() == "matmul_tiled_broken";
        assert_eq!(data["passed"], !broken, "{data}");
        if data["backend"] == "cpu" {
            assert_eq!(data["device"], "cpu");
            assert_eq!(data["grid"], serde_json::json!([1, 1, 1]));
        }
        for digest in ["input_digest", "output_digest", "reference_digest"] {
            assert_eq!(data[digest].as_str().map(str::len), Some(64), "{digest}");
        }
        if broken {
            assert_ne!(data["output_digest"], data["reference_digest"]);
        } else {
            assert!(data["max_abs_err"].as_f64().is_some_and(|e| e <= cell.tolerance), "{data}");
        }
    }
    let kernels: std::collections::BTreeSet<&str> =
        launches.iter().filter_map(|r| r["event"]["data"]["kernel"].as_str()).collect();
    assert_eq!(kernels.len(), assay_kernels::campaign::KERNEL_NAMES.len(), "every kernel ran: {kernels:?}");
}

#[test]
fn broken_variant_is_recorded_failed_with_its_max_error() {
    let rig = Rig::new();
    let file = campaigns().join("blackwell-fp4.toml");
    let campaign = Campaign::load(&file).expect("parses");
    let out = rig.run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os("fp4-1")]).ok();
    no_panic(&out);
    assert!(out.stdout.contains("matmul_tiled_broken"), "the summary lists it:\n{}", out.stdout);
    assert!(out.stdout.contains("cells that did not pass"), "{}", out.stdout);
    let launches = rig.events("kernel.launch.completed");
    assert_eq!(launches.len(), campaign.cells.len());
    let broken: Vec<&Value> =
        launches.iter().filter(|e| e["data"]["kernel"] == "matmul_tiled_broken").collect();
    assert_eq!(
        broken.len(),
        campaign.cells.iter().filter(|c| c.spec.name() == "matmul_tiled_broken").count()
    );
    for e in &broken {
        let data = &e["data"];
        assert_eq!(data["passed"], false);
        let err = data["max_abs_err"].as_f64().expect("a finite max error");
        let tolerance = data["tolerance"].as_f64().expect("tolerance");
        assert!(err > tolerance, "{data}");
    }
    let fp4_passed = launches
        .iter()
        .filter(|e| e["data"]["kernel"] == "fp4_dequant_matmul" && e["data"]["passed"] == true);
    assert_eq!(
        fp4_passed.count(),
        campaign.cells.iter().filter(|c| c.spec.name() == "fp4_dequant_matmul").count()
    );
    // --strict turns the failures into exit status 1, after recording them.
    let strict = rig
        .run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os("fp4-2"), os("--strict")])
        .status(1);
    no_panic(&strict);
    rig.check_signed_and_verified();
}

#[test]
fn an_aborting_child_is_recorded_as_faulted_and_the_rest_runs() {
    let rig = Rig::new();
    let file = rig.lab.write(
        "abort.toml",
        r#"
        name = "abort"
        seed = [1, 2]
        tolerance = 1e-4
        [[kernel]]
        name = "saxpy"
        n = 100
        alpha = 2
        [[kernel]]
        name = "softmax_rows"
        shape = { rows = 4, cols = 9 }
        [[kernel]]
        name = "reduce_sum"
        n = 1000
        block = 64
        tolerance = 1e-3
        "#,
    );
    let mut command = support::command();
    command
        .args(["run", "campaign"])
        .arg(&file)
        .arg("--db")
        .arg(&rig.lab.db)
        .arg("--key")
        .arg(&rig.runner.key)
        .args(["--run", "abort-1", "--isolate", "--cell-timeout", "60s"])
        .env("ASSAY_TEST_ABORT_KERNEL", "softmax_rows");
    let output = command.output().expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let records = rig.check_signed_and_verified();
    let types: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["type"].as_str().unwrap_or(""), r["event"]["data"]["kernel"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        types,
        vec![
            ("gpu.preflight", ""),
            ("kernel.launch.completed", "saxpy"),
            ("kernel.launch.completed", "saxpy"),
            ("kernel.launch.faulted", "softmax_rows"),
            ("kernel.launch.faulted", "softmax_rows"),
            ("kernel.launch.completed", "reduce_sum"),
            ("kernel.launch.completed", "reduce_sum"),
        ]
    );
    for fault in rig.events("kernel.launch.faulted") {
        let data = &fault["data"];
        assert_eq!(data["error"], "SIGNAL_SIGABRT", "{data}");
        assert_eq!(data["sticky"], false);
        assert_eq!(data["backend"], "cpu");
        assert!(data["detail"].as_str().is_some_and(|d| d.contains("signal 6")), "{data}");
        assert_eq!(data["variant"]["rows"], 4);
    }
    assert!(rig.events("kernel.launch.completed").iter().all(|e| e["data"]["passed"] == true));
}

#[test]
fn without_a_gpu_nothing_panics_and_preflight_says_why() {
    let rig = Rig::new();
    let file = campaigns().join("smoke.toml");
    let gpu_present = std::path::Path::new("/proc/driver/nvidia/version").exists();
    if !gpu_present {
        // --backend cuda refuses, after recording why.
        let out = rig
            .run(
                &["run", "campaign"],
                &[file.as_os_str(), os("--backend"), os("cuda"), os("--run"), os("c-1")],
            )
            .status(2);
        no_panic(&out);
        assert!(out.stderr.contains("CUDA is unavailable"), "{}", out.stderr);
        let preflights = rig.events("gpu.preflight");
        assert_eq!(preflights.len(), 1);
        assert_eq!(preflights[0]["data"]["available"], false);
        assert!(rig.events("kernel.launch.completed").is_empty());
    }
    let out = rig.run(&["gpu", "preflight"], &[os("--worker"), os("node-1"), os("--json")]).ok();
    no_panic(&out);
    let both = out.json();
    assert_eq!(both["worker.preflight"]["worker"], "node-1");
    let gpu = rig.events("gpu.preflight");
    let worker = rig.events("worker.preflight");
    assert_eq!(worker.len(), 1);
    let last = gpu.last().expect("gpu.preflight");
    assert_eq!(last["subject"], "worker/node-1");
    assert_eq!(worker[0]["subject"], "worker/node-1");
    let checks = worker[0]["data"]["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, vec!["cpu_kernels", "proc", "cuda", "nvml", "nvrtc", "kmsg", "gpu_processes"]);
    // The doctor's facts are recorded but never decide `healthy`.
    assert!(checks[4..].iter().all(|c| c["required"] == false && c["detail"].is_string()), "{checks:?}");
    if !gpu_present {
        assert_eq!(last["data"]["available"], false);
        assert!(
            last["data"]["unavailable_reason"]
                .as_str()
                .is_some_and(|r| r.contains("CUDA") || r.contains("libcuda"))
        );
        assert_eq!(worker[0]["data"]["healthy"], true, "a CPU worker is healthy");
        assert_eq!(worker[0]["data"]["gpus"], serde_json::json!([]));
        assert_eq!(checks[2]["required"], false, "the failed CUDA check says it does not count");
        // In text, "healthy" under a failed check comes with why that check does not count.
        let text = rig.run(&["gpu", "preflight"], &[os("--worker"), os("node-1")]).ok();
        let cuda = text.stdout.lines().find(|l| l.starts_with("check cuda")).expect("the cuda line");
        assert!(cuda.contains("does not count: no GPU is visible"), "{}", text.stdout);
        assert!(!text.stdout.contains("FAIL"), "{}", text.stdout);
        assert!(text.stdout.contains("worker node-1: healthy"), "{}", text.stdout);
    }
    // A server that does not answer is refused clearly, and a bad campaign is refused
    // before anything is recorded.
    let server = rig.lab.run([
        os("gpu"),
        os("preflight"),
        os("--server"),
        os("http://127.0.0.1:9"),
        os("--key"),
        rig.runner.key.as_os_str(),
    ]);
    no_panic(&server);
    assert_eq!(server.code, 2, "{}", server.stderr);
    assert!(server.stderr.contains("does not answer"), "{}", server.stderr);
    let bad = rig
        .lab
        .write("bad.toml", "name = \"b\"\n[[kernel]]\nname = \"saxpy\"\nn = 0\nalpha = 1\ntolerance = 0\n");
    let before = rig.records().len();
    let out = rig.run(&["run", "campaign"], &[bad.as_os_str()]).status(2);
    assert!(out.stderr.contains("at least 1"), "{}", out.stderr);
    assert_eq!(rig.records().len(), before);
    rig.check_signed_and_verified();
}

#[test]
fn a_campaign_records_through_a_server() {
    let rig = Rig::new();
    let served = rig.lab.serve();
    let url = served.url.clone();
    let file = rig.lab.write(
        "tiny.toml",
        "name = \"tiny\"\ntolerance = 1e-6\nseed = [1, 2, 3]\n[[kernel]]\nname = \"saxpy\"\nn = [1, 64]\nalpha = 2\n",
    );
    let out = rig.lab.run([
        os("run"),
        os("campaign"),
        file.as_os_str(),
        os("--server"),
        os(&url),
        os("--key"),
        rig.runner.key.as_os_str(),
        os("--run"),
        os("srv-1"),
    ]);
    drop(served);
    let out = out.ok();
    no_panic(&out);
    let launches = rig.events("kernel.launch.completed");
    assert_eq!(launches.len(), 6);
    assert!(launches.iter().all(|e| e["data"]["passed"] == true && e["subject"] == "run/srv-1"));
    assert_eq!(rig.events("gpu.preflight").len(), 1);
    rig.check_signed_and_verified();
}

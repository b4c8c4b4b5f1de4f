//! The demo's kernel launches are what the kernel runner records for the shipped campaign
//! files: each campaign run's launches match, cell by cell, a run of the same file through
//! `run_campaign` here (same kernels, variants, digests, errors and verdicts); the kernels
//! projection counts exactly those launches, the broken matmul failed with its max error, and
//! the same seed gives the same kernels projection, durations included.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use assay_kernels::BackendRequest;
use assay_kernels::campaign::{Campaign, CampaignOptions, Isolation, run_campaign};
use assay_kernels::cuda::CudaProbe;
use assay_kernels::preflight::Preflight;
use assay_kernels::sink::MemorySink;
use serde_json::Value;

use crate::support;

/// A fixed first day, so two builds have the same history.
const START: &str = "2026-03-01";

fn assay(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_assay")).args(args).output().expect("runs assay");
    assert!(out.status.success(), "assay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The small demo built in `dir` by `assay demo` (which exits 0 only when the ledger agrees
/// with the scenario and verifies); its ledger's path.
fn demo(dir: &Path) -> String {
    let dir = dir.to_str().expect("UTF-8 path");
    let printed = assay(&["demo", "--size", "small", "--start", START, "--dir", dir]);
    assert!(printed.contains("verify:      ok"), "{printed}");
    Path::new(dir).join("assay.db").to_str().expect("UTF-8 path").to_owned()
}

/// [`demo`], built once per test process (both tests below want it; a build costs a few
/// CPU-seconds) and copied into `dir`, which must not exist; the copy's ledger path.
fn demo_copy(dir: &Path) -> String {
    let built = support::built_once("demo-kernels-start", |folder| {
        demo(folder);
    });
    support::copy_lab(&built, dir).to_str().expect("UTF-8 path").to_owned()
}

/// The launches the runner records for a shipped campaign file under `run`, CPU backend.
fn campaign_launches(file: &str, run: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/campaigns").join(file);
    let campaign = Campaign::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let options = CampaignOptions {
        run: run.to_owned(),
        worker: "here".into(),
        backend: BackendRequest::Cpu,
        isolation: Isolation::MayFault,
        child: None,
        cell_timeout: Duration::from_secs(60),
        device: 0,
        scratch: std::env::temp_dir(),
        kernel_log: None,
        xid_grace: Duration::from_millis(500),
    };
    let preflight =
        Preflight { cuda: CudaProbe::Unavailable { reason: "test".into() }, nvml: Err("test".into()) };
    let mut sink = MemorySink::new();
    run_campaign(&campaign, &options, &preflight, &mut sink, &AtomicBool::new(false), &mut |_| {})
        .unwrap_or_else(|e| panic!("{e}"));
    sink.of_type("kernel.launch.completed").into_iter().map(|e| e.data.clone()).collect()
}

/// A launch without its duration (measured here, simulated in the demo) and its error
/// (compared with [`close`]).
fn timeless(data: &Value) -> Value {
    let mut data = data.clone();
    if let Some(object) = data.as_object_mut() {
        object.remove("duration_us");
        object.remove("max_abs_err");
    }
    data
}

/// Equal up to the last bit or two: serde_json's default float parsing (used reading the
/// log and the projection back) may round the printed shortest form one ulp away.
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs()),
        (a, b) => a == b,
    }
}

#[test]
fn demo_launches_are_the_runners_for_the_shipped_campaigns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_copy(&dir.path().join("lab"));
    let log: Vec<Value> = assay(&["log", "--db", &db, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    let data = |r: &Value| r["event"]["data"].clone();
    let ty = |r: &Value| r["event"]["type"].as_str().unwrap_or_default().to_owned();
    assert!(log.iter().any(|r| ty(r) == "run.started"), "the log names event types as expected");

    // Campaign runs: the file their command names.
    let mut campaigns: BTreeMap<String, String> = BTreeMap::new();
    for r in log.iter().filter(|r| ty(r) == "run.started") {
        let started = data(r);
        let command: Vec<&str> =
            started["command"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if command.get(1..3) == Some(&["run", "campaign"]) {
            let file = command[3].strip_prefix("kernels/campaigns/").expect("a shipped campaign file");
            campaigns.insert(s(&started, "run"), file.to_owned());
        }
    }
    let files: Vec<&str> = campaigns.values().map(String::as_str).collect();
    assert!(files.contains(&"smoke.toml") && files.contains(&"blackwell-fp4.toml"), "{campaigns:?}");

    // (kernel, canonical variant, backend) → (passed, failed, faulted, last max_abs_err).
    type Counts = (u64, u64, u64, Option<f64>);
    let mut expected: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
    for (run, file) in &campaigns {
        let ours = campaign_launches(file, run);
        let recorded: Vec<Value> = log
            .iter()
            .filter(|r| ty(r) == "kernel.launch.completed" && data(r)["run"] == run.as_str())
            .map(data)
            .collect();
        assert_eq!(recorded.len(), ours.len(), "{run} ({file}): launches");
        for (theirs, ours) in recorded.iter().zip(&ours) {
            assert_eq!(timeless(theirs), timeless(ours), "{run} ({file})");
            assert!(close(theirs["max_abs_err"].as_f64(), ours["max_abs_err"].as_f64()), "{theirs} {ours}");
            assert!(theirs["duration_us"].as_u64().is_some(), "{theirs}");
            let key = (s(ours, "kernel"), canonical(&ours["variant"]), "cpu".to_owned());
            let counts = expected.entry(key).or_default();
            if ours["passed"] == true {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
            counts.3 = ours["max_abs_err"].as_f64();
        }
        // The broken control fails on every machine, with its error over the tolerance.
        let broken: Vec<&Value> = ours.iter().filter(|l| l["kernel"] == "matmul_tiled_broken").collect();
        assert!(!broken.is_empty(), "{file} has the broken control");
        for l in broken {
            assert_eq!(l["passed"], false);
            assert!(l["max_abs_err"].as_f64().expect("finite") > l["tolerance"].as_f64().expect("tolerance"));
        }
        // The Blackwell bring-up's CUDA launches of NVFP4 are the simulated faults.
        let faulted: Vec<Value> = log
            .iter()
            .filter(|r| ty(r) == "kernel.launch.faulted" && data(r)["run"] == run.as_str())
            .map(data)
            .collect();
        let nvfp4 = ours
            .iter()
            .filter(|l| l["kernel"] == "fp4_dequant_matmul" && l["variant"]["format"] == "nvfp4")
            .count();
        assert_eq!(faulted.len(), if file == "blackwell-fp4.toml" { nvfp4 } else { 0 }, "{run}");
        for f in faulted {
            assert!(s(&f, "detail").starts_with("SIMULATED"), "{f}");
            let key = (s(&f, "kernel"), canonical(&f["variant"]), s(&f, "backend"));
            expected.entry(key).or_default().2 += 1;
        }
    }

    // The kernels projection: exactly those cells and counts.
    let projection: Value =
        serde_json::from_str(&assay(&["replay", "--db", &db, "--projection", "kernels", "--json"]))
            .expect("replay --json");
    let matrix = find_matrix(&projection).unwrap_or_else(|| panic!("no kernels matrix in {projection}"));
    let mut found: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
    for (kernel, variants) in matrix.as_object().expect("kernels") {
        for (variant, backends) in variants.as_object().expect("variants") {
            for (backend, cell) in backends.as_object().expect("backends") {
                let n = |k: &str| cell[k].as_u64().expect("count");
                let variant: Value = serde_json::from_str(variant).expect("a variant key is JSON");
                found.insert(
                    (kernel.clone(), canonical(&variant), backend.clone()),
                    (n("passed"), n("failed"), n("faulted"), cell["last_max_abs_err"].as_f64()),
                );
            }
        }
    }
    assert_eq!(found.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "cells");
    for (key, theirs) in &found {
        let ours = expected[key];
        assert_eq!(
            (theirs.0, theirs.1, theirs.2),
            (ours.0, ours.1, ours.2),
            "{key:?}: passed, failed, faulted"
        );
        assert!(close(theirs.3, ours.3), "{key:?}: last max_abs_err {:?}, ran {:?}", theirs.3, ours.3);
    }
    let failed: Vec<_> = found.iter().filter(|(_, c)| c.1 > 0).map(|(k, _)| k.0.as_str()).collect();
    assert!(!failed.is_empty() && failed.iter().all(|k| *k == "matmul_tiled_broken"), "{failed:?}");
}

#[test]
fn the_same_seed_gives_the_same_kernels_projection() {
    // Two builds of the same seed: one shared with the test above, one made here.
    let (a, b) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
    let (a, b) = (a.path().join("lab"), b.path());
    let digest = |db: &str| assay(&["replay", "--db", db, "--projection", "kernels", "--digest-only"]);
    let first = digest(&demo_copy(&a));
    let second = digest(&demo(b));
    assert!(first.contains("kernels"), "{first}");
    assert_eq!(first, second);
    let results = |dir: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for entry in std::fs::read_dir(dir.join("evidence")).expect("evidence folder") {
            let path = entry.expect("entry").path().join("results.jsonl");
            if let Ok(bytes) = std::fs::read(&path) {
                files
                    .push((path.parent().and_then(Path::file_name).unwrap().to_string_lossy().into(), bytes));
            }
        }
        files.sort();
        files
    };
    let (ra, rb) = (results(&a), results(b));
    assert!(!ra.is_empty(), "campaign evidence");
    assert_eq!(ra, rb, "campaign evidence is the same for the same seed");
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

/// Compact JSON with every object's keys sorted, whatever order the map keeps.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The kernel → variant → backend map, wherever `--json` puts it.
fn find_matrix(v: &Value) -> Option<&Value> {
    if let Some(m) = v.get("matrix") {
        return Some(m);
    }
    v.as_object()?.values().find_map(find_matrix)
}

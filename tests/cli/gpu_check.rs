//! `tools/gpu-check.sh` run here with the binary under test: without a GPU it runs what can
//! run (doctor, preflight, the smoke campaign on the CPU, a supervised command, verify), names
//! what it skipped, and exits 0; bad arguments exit 2 with nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Out};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/gpu-check.sh")
}

fn check(args: &[&Path]) -> Out {
    let mut c = Command::new("bash");
    c.arg(script()).args(args).env_remove("ASSAY_DB").env_remove("ASSAY_LEDGER_KEY");
    let cmdline = format!("{c:?}");
    Out::from_output(cmdline, c.output().expect("running bash"))
}

#[test]
fn the_self_check_without_a_gpu_says_what_it_skipped_and_passes() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_dir = dir.path().join("check");
    let out = check(&[Path::new(support::bin()), &out_dir]);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).expect("summary.json"))
            .expect("summary is JSON");
    assert_eq!(out.code, if summary["ok"] == true { 0 } else { 1 }, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(summary["ok"], true, "{summary:#}\n{}", out.stderr);
    assert!(out_dir.join("ledger.db").is_file());
    // The doctor's findings travel with the summary.
    assert!(summary["doctor"]["can_run_kernels"].is_boolean(), "{summary:#}");
    assert_eq!(summary["doctor"]["searched"].as_array().map(Vec::len), Some(3), "{summary:#}");
    let steps = summary["steps"].as_array().expect("steps");
    let status = |name: &str| {
        steps.iter().find(|s| s["name"] == name).map(|s| s["status"].as_str().unwrap_or("").to_owned())
    };
    for ran in ["doctor", "ledger", "preflight", "exec", "verify"] {
        assert_eq!(status(ran).as_deref(), Some("passed"), "{ran}: {summary:#}");
    }
    if summary["mode"] == "no-gpu" {
        let skipped: Vec<&str> =
            summary["skipped"].as_array().expect("skipped").iter().filter_map(Value::as_str).collect();
        assert_eq!(skipped, ["smoke-cuda", "blackwell-fp4-cuda", "large-cuda", "fault", "xid"]);
        assert_eq!(status("smoke-cpu").as_deref(), Some("passed"));
        for line in ["smoke-cuda: skipped (no GPU)", "xid: skipped (no GPU)"] {
            assert!(out.stdout.contains(&format!("gpu-check: {line}")), "{}", out.stdout);
        }
        // The recorded ledger is a real one: it verifies on its own.
        let verified = support::command()
            .args(["verify", "--json", "--db"])
            .arg(out_dir.join("ledger.db"))
            .output()
            .expect("verify");
        let report: Value = serde_json::from_slice(&verified.stdout).expect("verify JSON");
        assert_eq!(report["ok"], true, "{report}");
        assert!(report["records"].as_u64().is_some_and(|n| n > 30), "{report}");
    }
}

#[test]
fn the_self_check_refuses_bad_arguments_with_status_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_dir = dir.path().join("check");
    let missing = dir.path().join("no-assay");
    let out = check(&[&missing, &out_dir]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is not an executable file"), "{}", out.stderr);
    assert!(!out_dir.exists(), "nothing is written for bad arguments");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    std::fs::write(out_dir.join("old"), b"x").expect("write");
    let out = check(&[Path::new(support::bin()), &out_dir]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is not empty"), "{}", out.stderr);
    assert_eq!(check(&[Path::new(support::bin())]).code, 2);
}

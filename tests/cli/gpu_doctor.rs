//! `assay gpu doctor` through the binary: every library it searched, in order, with the path
//! it found; the fix for each missing piece; exit 1 when kernels cannot run.

use std::path::Path;

use serde_json::Value;

use crate::support::{self, Out};

/// `assay gpu doctor ARGS` with the CUDA variables cleared and `PATH` and `ASSAY_NVRTC` as given.
fn doctor(args: &[&str], path: &str, nvrtc: Option<&Path>) -> Out {
    let mut c = support::command();
    c.args(["gpu", "doctor"]).args(args);
    c.env_remove("CUDA_HOME").env_remove("CUDA_PATH").env_remove("LD_LIBRARY_PATH").env_remove("ASSAY_NVRTC");
    c.env("PATH", path);
    if let Some(nvrtc) = nvrtc {
        c.env("ASSAY_NVRTC", nvrtc);
    }
    let cmdline = format!("{c:?}");
    Out::from_output(cmdline, c.output().expect("running the assay binary"))
}

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, b"").expect("touch");
}

fn searched<'a>(report: &'a Value, library: &str) -> &'a Value {
    let all = report["searched"].as_array().expect("searched");
    all.iter().find(|s| s["library"] == library).unwrap_or_else(|| panic!("{library} not searched: {report}"))
}

/// Exit 0 exactly when the report says kernels can run.
fn exit_matches(out: &Out, report: &Value) {
    let can_run = report["can_run_kernels"].as_bool().expect("can_run_kernels");
    assert_eq!(out.code, if can_run { 0 } else { 1 }, "{}", out.stdout);
}

#[test]
fn doctor_json_names_every_library_searched_and_a_found_wheel_that_does_not_load() {
    let dir = tempfile::tempdir().expect("tmp");
    let venv = dir.path().join("venv");
    touch(&venv.join("bin/python3"));
    // Not a real library: found by the search, refused by the loader, and said so.
    let wheel = venv.join("lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13");
    touch(&wheel);
    let path = format!("{}:/usr/bin:/bin", venv.join("bin").display());
    let out = doctor(&["--json"], &path, None);
    let report = out.json();
    exit_matches(&out, &report);
    for library in ["driver", "nvrtc", "nvml"] {
        let candidates = searched(&report, library)["candidates"].as_array().expect("candidates");
        assert!(!candidates.is_empty(), "{library}");
        assert!(
            candidates.iter().all(|c| c["path"].as_str().is_some_and(|p| p.starts_with('/'))),
            "{library}"
        );
    }
    let wheel_text = wheel.canonicalize().expect("canonical").display().to_string();
    let nvrtc = searched(&report, "nvrtc")["candidates"].as_array().expect("candidates");
    let hit = nvrtc.iter().find(|c| c["path"] == wheel_text.as_str()).unwrap_or_else(|| panic!("{report}"));
    assert_eq!(hit["exists"], true);
    assert!(hit["origin"].as_str().is_some_and(|o| o.contains("pip wheel")), "{hit}");
    // The empty file cannot be the NVRTC in use, so kernels cannot run.
    assert!(report["nvrtc_path"].is_null(), "{report}");
    assert_eq!(report["can_run_kernels"], false);
    assert_eq!(out.code, 1);
    let problems = report["problems"].as_array().expect("problems");
    let nvrtc_problem = problems
        .iter()
        .find(|p| p["problem"].as_str().is_some_and(|t| t.contains("NVRTC 13 was found but did not load")))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(nvrtc_problem["fix"].as_str().is_some_and(|f| f.contains("ASSAY_NVRTC")), "{nvrtc_problem}");
    for key in ["kmsg_readable", "nvml", "devices", "driver_cuda_version", "other_processes_readable"] {
        assert!(report.get(key).is_some(), "{key} missing: {report}");
    }
}

#[test]
fn doctor_text_without_a_gpu_gives_each_fix_and_exits_1() {
    let dir = tempfile::tempdir().expect("tmp");
    let named = dir.path().join("no/libnvrtc.so.12");
    let out = doctor(&[], "/usr/bin:/bin", Some(&named));
    // The override is the whole NVRTC search: a missing file is the problem, whatever else is here.
    assert!(
        out.stdout.contains(&format!("nvrtc not found in 1 places:\n  {}", named.display())),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("problem: ASSAY_NVRTC names {}, which does not exist", named.display()))
    );
    assert!(out.stdout.contains("  fix: point ASSAY_NVRTC at"), "{}", out.stdout);
    assert!(out.stdout.ends_with("kernels cannot run\n"), "{}", out.stdout);
    let out = out.status(1);
    // Every problem line is followed by its fix.
    let lines: Vec<&str> = out.stdout.lines().collect();
    for (i, line) in lines.iter().enumerate().filter(|(_, l)| l.starts_with("problem: ")) {
        assert!(lines.get(i + 1).is_some_and(|next| next.starts_with("  fix: ")), "{line}");
    }
    let json = doctor(&["--json"], "/usr/bin:/bin", Some(&named));
    let report = json.json();
    exit_matches(&json, &report);
    assert_eq!(searched(&report, "nvrtc")["candidates"].as_array().map(Vec::len), Some(1));
}

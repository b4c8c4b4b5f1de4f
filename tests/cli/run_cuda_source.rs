//! `[[cuda]]` cells (the lab's own `.cu` kernels) through `assay run campaign`, into real
//! ledgers: without CUDA every cell is recorded as faulted `NOT_RUNNABLE` with the preflight's
//! reason and nothing passes; with CUDA the example's routes pass and fail as written; bad
//! tables are refused with their line, exit status 2, nothing recorded.

use crate::support;
use crate::support::runner::{Rig, campaigns};

use std::ffi::OsStr;

use assay_kernels::campaign::{Campaign, CellOutcome, CellRequest, NOT_RUNNABLE};
use serde_json::{Value, json};

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn the_own_saxpy_example_is_not_runnable_without_cuda_and_judged_with_it() {
    let rig = Rig::new();
    let file = campaigns().join("examples/own-saxpy.toml");
    let campaign = Campaign::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let out = rig.run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os("own-1"), os("--json")]).ok();
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let summary = out.json();
    let records = rig.check_signed_and_verified();
    assert_eq!(records[0]["type"], "gpu.preflight");
    let preflight = &records[0]["event"]["data"];
    let launches: Vec<Value> = records[1..]
        .iter()
        .filter(|r| r["subject"] == "run/own-1")
        .map(|r| {
            let mut data = r["event"]["data"].clone();
            data["type"] = r["type"].clone();
            data
        })
        .collect();
    assert_eq!(launches.len(), campaign.cuda.len(), "one launch per cell");
    for ((ordinal, launch), cell) in launches.iter().enumerate().zip(&campaign.cuda) {
        assert_eq!(launch["launch"], ordinal as u64);
        assert_eq!(launch["kernel"], cell.name.as_str());
        assert_eq!(launch["variant"], cell.variant());
        assert_eq!(launch["backend"], "cuda");
    }
    if preflight["available"] == false {
        let reason = preflight["unavailable_reason"].as_str().expect("a reason");
        assert_eq!(summary["backend"], "cpu");
        assert_eq!(summary["not_runnable"], campaign.cuda.len() as u64, "{summary}");
        let n = campaign.cuda.len() as u64;
        assert_eq!(summary["totals"], json!({"passed": 0, "failed": 0, "faulted": n}), "{summary}");
        for launch in &launches {
            assert_eq!(launch["type"], "kernel.launch.faulted", "never a pass: {launch}");
            assert_eq!(launch["error"], NOT_RUNNABLE);
            assert_eq!(launch["sticky"], false);
            assert!(launch.get("device").is_none(), "{launch}");
            let detail = launch["detail"].as_str().expect("detail");
            assert!(detail.contains(reason), "the preflight's reason {reason:?} in {detail:?}");
        }
        let text = rig.run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os("own-2")]).ok();
        assert!(text.stdout.contains("not runnable here"), "{}", text.stdout);
        assert!(text.stdout.contains(NOT_RUNNABLE), "{}", text.stdout);
        let strict =
            rig.run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os("own-3"), os("--strict")]);
        strict.status(1);
        return;
    }
    // A GPU: naive agrees with itself, strided with naive and with the CPU; off_by_one fails
    // on its last element.
    assert_eq!(summary["not_runnable"], 0);
    for launch in &launches {
        assert_eq!(launch["type"], "kernel.launch.completed", "{launch}");
        assert!(launch["device"].as_str().is_some_and(|d| d.starts_with("GPU-") || d.starts_with("MIG-")));
        let n = launch["variant"]["n"].as_u64().expect("n");
        assert_eq!(launch["grid"], json!([n.div_ceil(256), 1, 1]));
        assert_eq!(launch["block"], json!([256, 1, 1]));
        let off = launch["variant"]["route"] == "off_by_one";
        assert_eq!(launch["passed"], !off, "{launch}");
        if off {
            assert_ne!(launch["output_digest"], launch["reference_digest"]);
            assert!(launch["max_abs_err"].as_f64().is_some_and(|e| e > 0.0), "{launch}");
        } else if launch["kernel"] == "own_saxpy" {
            assert_eq!(launch["output_digest"], launch["reference_digest"], "{launch}");
        }
    }
}

#[test]
fn bad_cuda_tables_name_the_line_and_record_nothing() {
    let rig = Rig::new();
    let source = std::fs::read(campaigns().join("examples/own_saxpy.cu")).expect("the example source");
    rig.lab.write("own_saxpy.cu", source);
    let before = rig.lab.records();
    let table = |body: &str| {
        format!(
            "name = \"bad\"\n\n[[cuda]]\nname = \"own\"\nsource = \"own_saxpy.cu\"\nentry = \"saxpy_{{route}}\"\ndefine = [\"alpha\"]\ngrid = [\"{{n}}/256\"]\nblock = [256]\ninputs = [{{ name = \"x\", len = \"{{n}}\" }}, {{ name = \"y\", len = \"{{n}}\" }}]\noutput = {{ len = \"{{n}}\" }}\nreference = {{ route = \"naive\" }}\nn = 1000\nalpha = 2.0\n{body}"
        )
    };
    let cases = [
        (
            table("route = [\"naive\"]\n").replace("own_saxpy.cu", "gone.cu"),
            "line 5: cuda #1: |gone.cu: No such file",
        ),
        (
            table("route = [\"naive\", \"tiled\"]\n"),
            "line 6: cuda #1: \"saxpy_tiled\" is not an extern \"C\" __global__ function",
        ),
        (
            table("route = [\"naive\"]\n").replace("{n}/256", "{m}/256"),
            "line 8: cuda #1: unknown placeholder {m}",
        ),
        (
            table("route = [\"naive\"]\n").replace("block = [256]", "block = [4096]"),
            "line 9: cuda #1: block[0] is 4096",
        ),
        (
            table("route = [\"naive\"]\n").replace("grid = [\"{n}/256\"]", "grid = [0]"),
            "line 8: cuda #1: grid[0] is 0",
        ),
        (table("route = []\n"), "line 15: cuda #1: route: empty list"),
        (
            table("route = [\"naive\"]\n").replace("define = [\"alpha\"]", "define = [\"ALPHA\"]"),
            "line 7: cuda #1: define \"ALPHA\" names no axis",
        ),
    ];
    for (index, (text, want)) in cases.iter().enumerate() {
        let file = rig.lab.write(&format!("bad-{index}.toml"), text);
        let out = rig.run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os("bad-1")]).status(2);
        for part in want.split('|') {
            assert!(out.stderr.contains(part), "want {part:?} in {}", out.stderr);
        }
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert_eq!(rig.lab.records(), before, "nothing was recorded");
}

#[test]
fn the_cell_child_takes_a_cuda_cell_up_to_the_driver() {
    use std::io::Write;
    use std::process::Stdio;

    let campaign =
        Campaign::load(&campaigns().join("examples/own-saxpy.toml")).unwrap_or_else(|e| panic!("{e}"));
    let request = CellRequest::Source { cell: Box::new(campaign.cuda[0].clone()) };
    let mut child = support::command()
        .args(["run", "cell", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cell child starts");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", serde_json::to_string(&request).expect("json")).expect("request sent");
    drop(stdin);
    let out = child.wait_with_output().expect("the child ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let outcome: CellOutcome = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let available = assay_kernels::cuda::probe_cuda().is_available();
    match outcome {
        // No usable CUDA here: the cell reaches the driver boundary and says so.
        CellOutcome::Faulted(fault) if !available => {
            if !assay_kernels::cuda::driver_library_present() {
                assert_eq!(fault.error, "CUDA_UNAVAILABLE", "{fault:?}");
            }
        }
        // A GPU: the naive route agrees with a second launch of itself.
        CellOutcome::Completed(done) if available => assert!(done.passed, "{done:?}"),
        other => panic!("CUDA available: {available}; {other:?}"),
    }
}

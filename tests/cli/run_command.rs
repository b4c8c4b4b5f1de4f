//! `[[command]]` cells through `assay run campaign`, into real ledgers, with real child
//! processes: every outcome class, fallbacks, repeats, substitution and `ASSAY_CELL`, the
//! timeout killing the whole process group, bounded output, and bad campaign files refused
//! with the line named and nothing recorded.

use crate::support::runner::{Rig, campaigns};

use std::ffi::OsStr;
use std::path::Path;

use serde_json::{Value, json};

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Runs the campaign file `file` under run id `run`; returns the summary JSON.
fn run_campaign(rig: &Rig, file: &Path, run: &str) -> Value {
    let out = rig.run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os(run), os("--json")]).ok();
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.json()
}

/// The launches of `run`, in recorded order (their `data`, with `type` added); not the
/// `evidence.captured` events that cite the cells' kept output.
fn launches(rig: &Rig, run: &str) -> Vec<Value> {
    rig.check_signed_and_verified()
        .into_iter()
        .filter(|r| r["subject"] == format!("run/{run}"))
        .filter(|r| r["type"].as_str().is_some_and(|t| t.starts_with("kernel.launch.")))
        .map(|r| {
            let mut data = r["event"]["data"].clone();
            data["type"] = r["type"].clone();
            data
        })
        .collect()
}

#[test]
fn the_routes_example_records_every_outcome_class_and_falls_back() {
    let rig = Rig::new();
    let file = campaigns().join("examples/matmul-routes.toml");
    let summary = run_campaign(&rig, &file, "routes-1");
    // 2 sizes × 4 routes × 2 seeds; only `blocked` passes.
    assert_eq!(summary["totals"], json!({"passed": 4, "failed": 4, "faulted": 8}), "{summary}");
    let all = launches(&rig, "routes-1");
    assert_eq!(all.len(), 16 + 12, "16 primaries and a fallback for each of the 12 that did not pass");
    for (ordinal, launch) in all.iter().enumerate() {
        assert_eq!(launch["launch"], ordinal as u64, "ordinals follow the recorded order");
        assert_eq!(launch["kernel"], "matmul_routes");
        assert_eq!(launch["command"]["argv"][0], "python3");
        for stream in ["stdout", "stderr"] {
            assert_eq!(launch["command"][stream]["digest"].as_str().map(str::len), Some(64), "{launch}");
        }
    }
    let primaries: Vec<&Value> = all.iter().filter(|l| l.get("fallback_of").is_none()).collect();
    let route = |l: &Value| l["variant"]["route"].as_str().unwrap_or_default().to_owned();
    for launch in &primaries {
        let m = launch["variant"]["m"].as_u64().expect("m");
        assert_eq!(
            launch["command"]["argv"],
            json!(["python3", "matmul_routes.py", m.to_string(), route(launch)])
        );
        match route(launch).as_str() {
            "blocked" => {
                assert_eq!(launch["type"], "kernel.launch.completed", "{launch}");
                assert_eq!(launch["passed"], true);
                assert!(launch["metrics"]["mflops"].as_f64().is_some_and(|v| v > 0.0), "{launch}");
                assert!(launch["max_abs_err"].as_f64().is_some_and(|e| e <= 1e-9), "{launch}");
                let tail = launch["command"]["stdout"]["tail"].as_str().expect("tail");
                assert!(tail.contains(&format!("m={m} route=blocked")), "{tail}");
            }
            "wrong" => {
                assert_eq!(launch["type"], "kernel.launch.completed", "{launch}");
                assert_eq!(launch["passed"], false);
                assert_eq!(launch["command"]["exit_code"], 0);
                assert!(launch["max_abs_err"].as_f64().is_some_and(|e| e > 1e-9), "{launch}");
            }
            "crash" => {
                assert_eq!(launch["type"], "kernel.launch.faulted", "{launch}");
                assert_eq!(launch["error"], "SIGNAL_SIGSEGV");
                assert_eq!(launch["command"]["signal"], "SIGSEGV");
                assert!(launch["command"]["exit_code"].is_null());
            }
            "oob" => {
                assert_eq!(launch["type"], "kernel.launch.faulted", "{launch}");
                assert_eq!(launch["error"], "CUDA_ERROR_ILLEGAL_ADDRESS");
                assert_eq!(launch["sticky"], true);
                assert!(
                    launch["detail"].as_str().is_some_and(|d| d.contains("illegal memory access")),
                    "{launch}"
                );
                assert_eq!(launch["command"]["exit_code"], 1);
            }
            other => panic!("unexpected route {other}"),
        }
    }
    // Each fallback follows its primary, names it, and runs the reference route.
    for fallback in all.iter().filter(|l| l.get("fallback_of").is_some()) {
        let primary = &all[fallback["fallback_of"].as_u64().expect("ordinal") as usize];
        assert_eq!(fallback["launch"].as_u64(), primary["launch"].as_u64().map(|p| p + 1));
        assert_ne!(route(primary), "blocked");
        assert_eq!(route(fallback), "reference");
        assert_eq!(fallback["variant"]["m"], primary["variant"]["m"]);
        assert_eq!(fallback["variant"]["seed"], primary["variant"]["seed"]);
        assert_eq!(fallback["passed"], true, "{fallback}");
    }
}

#[test]
fn a_matrix_of_sixty_cells_substitutes_and_passes_the_cell() {
    let rig = Rig::new();
    let out_dir = rig.path("cells");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let file = rig.lab.write(
        "matrix.toml",
        format!(
            r#"name = "matrix"
[[command]]
name = "cells"
command = ["sh", "-c", "printf '%s' \"$ASSAY_CELL\" > {dir}/cell-{{i}}-{{j}}.json; echo \"$J_VALUE\" > {dir}/env-{{i}}-{{j}}; test {{i}} -ne 3"]
env = {{ J_VALUE = "j is {{j}}" }}
i = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
j = ["a", "b", "c", "d", "e", "f"]
"#,
            dir = out_dir.display()
        ),
    );
    let summary = run_campaign(&rig, &file, "matrix-1");
    assert_eq!(summary["totals"], json!({"passed": 54, "failed": 6, "faulted": 0}), "{summary}");
    let all = launches(&rig, "matrix-1");
    assert_eq!(all.len(), 60);
    for launch in &all {
        let (i, j) =
            (launch["variant"]["i"].as_u64().expect("i"), launch["variant"]["j"].as_str().expect("j"));
        let cell: Value = serde_json::from_slice(
            &std::fs::read(out_dir.join(format!("cell-{i}-{j}.json"))).expect("the cell wrote ASSAY_CELL"),
        )
        .expect("ASSAY_CELL is JSON");
        assert_eq!(cell, launch["variant"], "ASSAY_CELL is the recorded variant");
        let env = std::fs::read_to_string(out_dir.join(format!("env-{i}-{j}"))).expect("env file");
        assert_eq!(env.trim(), format!("j is {j}"));
        let script = launch["command"]["argv"][2].as_str().expect("script");
        assert!(
            script.contains(&format!("cell-{i}-{j}.json")) && script.ends_with(&format!("test {i} -ne 3")),
            "{script}"
        );
        assert_eq!(launch["passed"], i != 3, "{launch}");
        assert_eq!(launch["command"]["exit_code"], if i == 3 { 1 } else { 0 });
    }
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let rig = Rig::new();
    let pid_file = rig.path("background.pid");
    let file = rig.lab.write(
        "slow.toml",
        format!(
            r#"name = "slow"
[[command]]
name = "slow"
command = ["sh", "-c", "sleep 300 & echo $! > {pid}; sleep 300"]
timeout = "1s"
"#,
            pid = pid_file.display()
        ),
    );
    let summary = run_campaign(&rig, &file, "slow-1");
    assert_eq!(summary["totals"]["faulted"], 1, "{summary}");
    let launch = &launches(&rig, "slow-1")[0];
    assert_eq!(launch["error"], "TIMEOUT", "{launch}");
    assert!(launch["command"]["exit_code"].is_null());
    let pid: u32 = std::fs::read_to_string(&pid_file).expect("pid").trim().parse().expect("a pid");
    // The background sleep was in the cell's group: it is gone (or a zombie awaiting its
    // reaper) once the campaign has returned.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let alive =
        state.as_deref().is_some_and(|s| s.contains("(sleep)") && !s.contains(") Z ") && !s.contains(") X "));
    assert!(!alive, "the cell's background process survived its timeout: {state:?}");
}

#[test]
fn output_is_digested_whole_and_kept_bounded() {
    let rig = Rig::new();
    let file = rig.lab.write(
        "loud.toml",
        r#"name = "loud"
[[command]]
name = "loud"
command = ["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo done >&2"]
"#,
    );
    run_campaign(&rig, &file, "loud-1");
    let launch = &launches(&rig, "loud-1")[0];
    let mut bytes = vec![b'x'; 3_000_000];
    bytes.push(b'\n');
    let stdout = &launch["command"]["stdout"];
    assert_eq!(stdout["bytes"], bytes.len() as u64);
    assert_eq!(stdout["digest"], blake3::hash(&bytes).to_hex().to_string());
    let tail = stdout["tail"].as_str().expect("tail");
    assert!(
        tail.len() <= assay_kernels::campaign::TAIL_BYTES_MAX && tail.ends_with("xx\n"),
        "{}",
        tail.len()
    );
    assert_eq!(launch["command"]["stderr"]["tail"], "done\n");
    assert_eq!(launch["passed"], true);
}

#[test]
fn results_repeats_and_non_finite_values() {
    let rig = Rig::new();
    let file = rig.lab.write(
        "results.toml",
        r#"name = "results"
[[command]]
name = "reports"
command = ["sh", "-c", "case {mode} in nan) echo 'ASSAY_RESULT {{\"max_abs_err\": NaN}}';; file) echo '{{\"passed\": false, \"gbps\": 12.5}}' > \"$ASSAY_RESULT_FILE\";; over) echo 'ASSAY_RESULT {{\"max_abs_err\": 0.5, \"duration_us\": 7}}';; esac"]
tolerance = 0.1
mode = ["nan", "file", "over"]

[[command]]
name = "repeated"
command = ["true"]
repeat = 5

[[command]]
name = "ab"
command = ["sh", "-c", "case {route} in fast) d=10;; slow) d=50;; near) d=11;; esac; echo \"ASSAY_RESULT {{\\\"duration_us\\\": $d}}\""]
repeat = 3
route = ["fast", "slow", "near"]
"#,
    );
    let summary = run_campaign(&rig, &file, "results-1");
    let routes = summary["routes"].as_array().expect("routes");
    let pair = |faster: &str, slower: &str| {
        routes
            .iter()
            .find(|c| c["faster"]["route"] == faster && c["slower"]["route"] == slower)
            .unwrap_or_else(|| panic!("no {faster} vs {slower} in {routes:?}"))
    };
    assert_eq!(pair("fast", "slow")["beyond_spread"], true);
    assert_eq!(pair("fast", "near")["beyond_spread"], true, "10 µs every time is below 11 µs every time");
    assert_eq!(pair("fast", "slow")["ratio"], 5.0);
    assert_eq!(routes.len(), 3, "three routes, three pairs");
    let all = launches(&rig, "results-1");
    assert_eq!(all.len(), 7);
    assert_eq!(all[0]["type"], "kernel.launch.faulted");
    assert_eq!(all[0]["error"], "NAN_IN_OUTPUT");
    assert_eq!(all[1]["passed"], false, "the result file said so: {}", all[1]);
    assert_eq!(all[1]["metrics"]["gbps"], 12.5);
    assert_eq!(all[2]["passed"], false, "0.5 is above the tolerance: {}", all[2]);
    assert_eq!((all[2]["max_abs_err"].as_f64(), all[2]["tolerance"].as_f64()), (Some(0.5), Some(0.1)));
    assert_eq!(all[2]["duration_us"], 7, "the command's own duration is recorded");
    let repeats = &all[3]["repeats"];
    assert_eq!(repeats["count"], 5, "{}", all[3]);
    let (min, median, p90) =
        (repeats["min_us"].as_u64(), repeats["median_us"].as_u64(), repeats["p90_us"].as_u64());
    assert!(min <= median && median <= p90, "{repeats}");
    assert_eq!(all[3]["duration_us"].as_u64(), median);
}

#[test]
fn bad_command_campaigns_name_the_line_and_record_nothing() {
    let rig = Rig::new();
    let before = rig.lab.records();
    let cases = [
        (
            "[[command]]\nname = \"a\"\ncommand = [\"echo\", \"{rout}\"]\nroute = [\"x\"]\n",
            "line 5: command #1: unknown placeholder {rout}",
        ),
        (
            "[[command]]\nname = \"a\"\ncommand = [\"echo\"]\n\nroute = []\n",
            "line 7: command #1: route: empty list",
        ),
        (
            "[[command]]\nname = \"a\"\ncommand = [\"no-such-program-here\"]\n",
            "line 5: command #1: command not found",
        ),
        ("[[command]]\nname = \"a\"\ncommand = [\"./missing.py\"]\n", "no such file"),
        (
            "[[command]]\nname = \"a\"\ncommand = [\"echo\"]\nrepeat = 0\n",
            "line 6: command #1: repeat must be",
        ),
        ("[[command]]\nname = \"a\"\ncommand = [\"echo\"]\nfallback = { route = \"b\" }\n", "not an axis"),
        (
            "[[command]]\nname = \"a\"\ncommand = [\"echo\"]\ntimeout = \"soon\"\n",
            "line 6: command #1: timeout",
        ),
    ];
    for (index, (body, want)) in cases.iter().enumerate() {
        let file = rig.lab.write(&format!("bad-{index}.toml"), format!("name = \"bad\"\n\n{body}"));
        let out = rig.run(&["run", "campaign"], &[file.as_os_str(), os("--run"), os("bad-1")]).status(2);
        assert!(out.stderr.contains(want), "{body:?}: want {want:?} in {}", out.stderr);
    }
    assert_eq!(rig.lab.records(), before, "nothing was recorded");
}

#[test]
fn an_xid_in_the_cells_window_is_attached_to_its_launch() {
    let rig = Rig::new();
    let log =
        rig.lab.write("kern.log", "[ 1.0] NVRM: Xid (PCI:0000:41:00): 79, an Xid from before the campaign\n");
    // The faulting cell logs an Xid now (attached), one stamped an hour ago (outside every
    // window: recorded, naming no launch), and one without a stamp (read during the grace:
    // attached), then prints the CUDA error its process saw.
    let file = rig.lab.write(
        "xid.toml",
        format!(
            r#"name = "xid"
[[command]]
name = "warp"
command = ["sh", "-c", """
if [ {{route}} = bad ]; then
  now=$(date -u +%Y-%m-%dT%H:%M:%S.%N+0000)
  old=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S.%N+0000)
  echo "$now n1 kernel: NVRM: Xid (PCI:0000:41:00): 13, pid=$$, name=sh, Graphics SM Warp Exception on (GPC 1, TPC 0, SM 0): Illegal Instruction Encoding" >> {log}
  echo "$old n1 kernel: NVRM: Xid (PCI:0000:41:00): 43, pid=1, name=old, Ch 00000008" >> {log}
  echo "NVRM: Xid (PCI:0000:41:00): 31, pid=$$, name=sh, channel 0x0000000c, intr 00000000. MMU Fault" >> {log}
  echo 'RuntimeError: CUDA error: an illegal instruction was encountered' >&2
  exit 1
fi
"""]
route = ["bad", "good"]
"#,
            log = log.display()
        ),
    );
    let out = rig
        .run(
            &["run", "campaign"],
            &[file.as_os_str(), os("--run"), os("xid-1"), os("--kernel-log"), log.as_os_str()],
        )
        .ok();
    assert!(out.stdout.contains("faulted: CUDA_ERROR_ILLEGAL_INSTRUCTION with Xid 13, 31"), "{}", out.stdout);
    let launches = launches(&rig, "xid-1");
    assert_eq!(launches.len(), 2);
    assert_eq!(launches[0]["error"], "CUDA_ERROR_ILLEGAL_INSTRUCTION", "{}", launches[0]);
    assert_eq!(launches[1]["passed"], true);
    let xids = rig.events("gpu.xid");
    let by_code = |code: u64| {
        xids.iter().find(|x| x["data"]["code"] == code).unwrap_or_else(|| panic!("no Xid {code} in {xids:?}"))
    };
    assert_eq!(xids.len(), 3, "the Xid from before the campaign is not read: {xids:?}");
    for code in [13, 31] {
        let data = &by_code(code)["data"];
        assert_eq!((data["run"].as_str(), data["launch"].as_u64()), (Some("xid-1"), Some(0)), "{data}");
        assert_eq!(data["host"], "runner");
    }
    let old = &by_code(43)["data"];
    assert!(
        old.get("run").is_none() && old.get("launch").is_none(),
        "an Xid outside the window attached: {old}"
    );
    assert_eq!(by_code(13)["subject"], "gpu/0000:41:00.0");
}

#[test]
fn only_failed_of_reruns_what_did_not_pass_and_the_diff_gates_on_regressions() {
    let rig = Rig::new();
    let state = rig.lab.write("broken", "1\n2\n");
    // Cell i fails while its number is listed in the state file; its fallback always passes.
    let file = rig.lab.write(
        "state.toml",
        format!(
            r#"name = "state"
[[command]]
name = "stateful"
command = ["sh", "-c", "[ {{mode}} = safe ] && exit 0; grep -qx {{i}} {state} && exit 1; exit 0"]
fallback = {{ mode = "safe" }}
i = [0, 1, 2, 3]
mode = "fast"
"#,
            state = state.display()
        ),
    );
    run_campaign(&rig, &file, "base");
    std::fs::write(&state, "2\n").expect("write state");
    let out = rig
        .run(
            &["run", "campaign"],
            &[file.as_os_str(), os("--run"), os("rerun"), os("--only-failed-of"), os("base"), os("--json")],
        )
        .ok();
    assert!(out.stderr.contains("rerunning 2 cell(s)"), "{}", out.stderr);
    let rerun = launches(&rig, "rerun");
    let primaries: Vec<u64> = rerun
        .iter()
        .filter(|l| l.get("fallback_of").is_none())
        .map(|l| l["variant"]["i"].as_u64().expect("i"))
        .collect();
    assert_eq!(primaries, [1, 2], "only the cells that did not pass in base ran again");

    // base → rerun: 1 fixed, 2 unchanged, 0 and 3 gone; nothing regressed → exit 0.
    let diff = rig.lab.db(&["campaign", "diff"], &["base", "rerun", "--json"]).ok().json();
    assert_eq!(diff["counts"]["fixed"], 1, "{diff}");
    assert_eq!(diff["counts"]["gone"], 2, "{diff}");
    assert_eq!(diff["counts"]["regressed"], 0, "{diff}");
    let two =
        diff["cells"].as_array().expect("cells").iter().find(|c| c["variant"]["i"] == 2).expect("cell 2");
    assert_eq!(two["new"]["fallback"]["outcome"], "passed", "the fallback is shown: {two}");

    // A full run where cell 0 now fails: base → full has a regression, and exits 1.
    std::fs::write(&state, "0\n").expect("write state");
    run_campaign(&rig, &file, "full");
    let out = rig.lab.db(&["campaign", "diff"], &["base", "full"]).status(1);
    assert!(out.stdout.contains("regressed"), "{}", out.stdout);
    let nothing = rig.run(
        &["run", "campaign"],
        &[file.as_os_str(), os("--run"), os("none"), os("--only-failed-of"), os("full"), os("--json")],
    );
    // Cell 0 failed in `full`, so one cell reruns; a run with no failures reruns nothing.
    assert_eq!(nothing.code, 0, "{}", nothing.stderr);
    std::fs::write(&state, "").expect("write state");
    run_campaign(&rig, &file, "clean");
    let out = rig
        .run(
            &["run", "campaign"],
            &[file.as_os_str(), os("--run"), os("after-clean"), os("--only-failed-of"), os("clean")],
        )
        .ok();
    assert!(out.stdout.contains("nothing to rerun"), "{}", out.stdout);
    assert!(launches(&rig, "after-clean").is_empty(), "nothing was recorded for a run with nothing to rerun");
    let unknown = rig
        .run(&["run", "campaign"], &[file.as_os_str(), os("--only-failed-of"), os("no-such-run")])
        .status(2);
    assert!(unknown.stderr.contains("no-such-run"), "{}", unknown.stderr);
}

#[test]
fn the_torch_example_runs_where_it_can_and_says_why_not_elsewhere() {
    let rig = Rig::new();
    let file = campaigns().join("examples/torch-matmul.toml");
    run_campaign(&rig, &file, "torch-1");
    let all = launches(&rig, "torch-1");
    assert_eq!(all.len(), 6, "3 dtypes × 2 shapes");
    for launch in &all {
        let stderr = launch["command"]["stderr"]["tail"].as_str().unwrap_or_default();
        if stderr.contains("not run:") {
            // No PyTorch or no GPU here: a failed cell with the reason, never a pass.
            assert_eq!(launch["passed"], false, "{launch}");
            assert_eq!(launch["command"]["exit_code"], 1, "{launch}");
        } else {
            assert_eq!(launch["type"], "kernel.launch.completed", "{launch}");
            assert!(launch["metrics"]["tflops"].as_f64().is_some(), "{launch}");
            assert_eq!(launch["repeats"]["count"], 5, "{launch}");
        }
    }
}

#[test]
fn ctrl_c_reaches_a_running_cell_and_nothing_unfinished_is_recorded() {
    use std::time::{Duration, Instant};
    let rig = Rig::new();
    let (started, got) = (rig.path("started"), rig.path("got-int"));
    let file = rig.lab.write(
        "long.toml",
        format!(
            r#"name = "long"
[[command]]
name = "long"
command = ["sh", "-c", "trap 'touch {got}; exit 3' INT; touch {started}; while :; do sleep 0.05; done"]
timeout = "300s"
i = [1, 2]
"#,
            got = got.display(),
            started = started.display()
        ),
    );
    let mut command = crate::support::command();
    command
        .args(["run", "campaign", "--db"])
        .arg(&rig.lab.db)
        .arg("--key")
        .arg(&rig.runner.key)
        .arg(&file)
        .args(["--run", "long-1", "--kernel-log", "none"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the first cell never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill =
        std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let output = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "an interrupted campaign exits 1: {stderr}");
    assert!(got.exists(), "the cell's group did not get SIGINT: {stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("interrupted"));
    assert!(launches(&rig, "long-1").is_empty(), "the unfinished cell was recorded");
}

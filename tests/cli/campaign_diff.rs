//! `assay campaign diff` through the binary, over runs recorded by real `assay run campaign`
//! invocations: every class (tolerances flip pass and fail, an aborting child faults), the
//! exit status CI gates on (1 on a regression or a new fault, else 0), the same JSON from the
//! database and from a server, and bad input (unknown run, bad id) as exit status 2.

use crate::support;
use crate::support::runner::Rig;

use std::ffi::OsStr;

use serde_json::{Value, json};

/// A campaign of one seed: `tolerances` of the broken tiled matmul on two shapes, saxpy,
/// the tiled matmul, and reduce_sum at `reduce_n`.
fn campaign(rig: &Rig, name: &str, tolerances: [f64; 2], reduce_n: u64) -> std::path::PathBuf {
    rig.lab.write(
        &format!("{name}.toml"),
        format!(
            r#"
            name = "{name}"
            seed = 1
            tolerance = 1e-4
            [[kernel]]
            name = "matmul_tiled_broken"
            shape = {{ m = 17, n = 13, k = 29 }}
            tile = 8
            tolerance = {t0:e}
            [[kernel]]
            name = "matmul_tiled_broken"
            shape = {{ m = 9, n = 9, k = 9 }}
            tile = 4
            tolerance = {t1:e}
            [[kernel]]
            name = "saxpy"
            n = 100
            alpha = 2
            [[kernel]]
            name = "matmul_tiled"
            shape = {{ m = 8, n = 8, k = 8 }}
            tile = 4
            [[kernel]]
            name = "reduce_sum"
            n = {reduce_n}
            block = 32
            tolerance = 1e-3
            "#,
            t0 = tolerances[0],
            t1 = tolerances[1],
        ),
    )
}

/// `assay run campaign FILE --run RUN --isolate`, saxpy's child aborting when `abort_saxpy`.
fn record(rig: &Rig, file: &std::path::Path, run: &str, abort_saxpy: bool) {
    let mut command = support::command();
    command
        .args(["run", "campaign"])
        .arg(file)
        .arg("--db")
        .arg(&rig.lab.db)
        .arg("--key")
        .arg(&rig.runner.key)
        .args(["--run", run, "--isolate", "--cell-timeout", "60s"]);
    if abort_saxpy {
        command.env("ASSAY_TEST_ABORT_KERNEL", "saxpy");
    }
    let output = command.output().expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}

fn diff(rig: &Rig, base: &str, new: &str, extra: &[&str]) -> support::Out {
    let mut rest = vec![base, new];
    rest.extend_from_slice(extra);
    rig.lab.db(&["campaign", "diff"], &rest)
}

/// The cell of `kernel` whose variant has `key` = `value`.
fn cell<'a>(d: &'a Value, kernel: &str, key: &str, value: Value) -> &'a Value {
    d["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["kernel"] == kernel && c["variant"][key] == value)
        .unwrap_or_else(|| panic!("no {kernel} cell with {key}={value} in {d}"))
}

#[test]
fn every_class_and_the_exit_status() {
    let rig = Rig::new();
    // Base: the first broken shape fails (tight tolerance), the second passes (loose).
    record(&rig, &campaign(&rig, "base", [1e-4, 1e9], 1000), "base-1", false);
    // New: the tolerances swap, saxpy's child aborts, reduce_sum runs on another size.
    record(&rig, &campaign(&rig, "new", [1e9, 1e-4], 2000), "new-1", true);

    let out = diff(&rig, "base-1", "new-1", &["--json"]).status(1);
    assert!(out.stderr.contains("1 cells regressed and 1 newly faulted"), "{}", out.stderr);
    let d = out.json();
    assert_eq!((d["base"].as_str(), d["new"].as_str()), (Some("base-1"), Some("new-1")));
    assert_eq!(
        d["counts"],
        json!({"unchanged": 1, "fixed": 1, "regressed": 1, "newly_faulted": 1, "gone": 1, "new": 1}),
        "{d}"
    );
    assert_eq!(cell(&d, "matmul_tiled_broken", "tile", json!(8))["class"], "fixed");
    assert_eq!(cell(&d, "matmul_tiled_broken", "tile", json!(4))["class"], "regressed");
    let saxpy = cell(&d, "saxpy", "n", json!(100));
    assert_eq!(saxpy["class"], "newly_faulted");
    assert_eq!(saxpy["base"]["outcome"], "passed");
    assert_eq!(saxpy["new"]["outcome"], "faulted");
    assert_eq!(saxpy["new"]["error"], "SIGNAL_SIGABRT");
    assert!(saxpy.get("timing").is_none(), "{saxpy}");
    let unchanged = cell(&d, "matmul_tiled", "tile", json!(4));
    assert_eq!(unchanged["class"], "unchanged");
    assert_eq!(unchanged["timing"]["change"], "no_spread", "no repeats: {unchanged}");
    assert!(unchanged["timing"]["base_us"].is_u64(), "{unchanged}");
    assert_eq!(cell(&d, "reduce_sum", "n", json!(1000))["class"], "gone");
    assert_eq!(cell(&d, "reduce_sum", "n", json!(2000))["class"], "new");
    // Sorted by kernel, then variant.
    let kernels: Vec<&str> =
        d["cells"].as_array().expect("cells").iter().filter_map(|c| c["kernel"].as_str()).collect();
    let mut sorted = kernels.clone();
    sorted.sort();
    assert_eq!(kernels, sorted);

    // For people: the counts, then regressions and new faults before the rest.
    let text = diff(&rig, "base-1", "new-1", &[]).status(1);
    assert!(
        text.stdout.starts_with(
            "campaign diff base-1 → new-1: 1 unchanged, 1 fixed, 1 regressed, 1 newly faulted, 1 gone, 1 new\n"
        ),
        "{}",
        text.stdout
    );
    let rows: Vec<&str> = text.stdout.lines().skip(2).take(5).collect();
    let classes: Vec<&str> = rows.iter().filter_map(|r| r.split_whitespace().next()).collect();
    assert_eq!(classes, ["regressed", "newly_faulted", "fixed", "gone", "new"], "{}", text.stdout);
    assert!(rows[1].contains("faulted: SIGNAL_SIGABRT"), "{}", text.stdout);

    // A run against itself: nothing changed, exit 0.
    let same = diff(&rig, "new-1", "new-1", &["--json"]).ok().json();
    assert_eq!(same["counts"]["unchanged"], 5, "{same}");
    // Fixes and cells gone do not fail the gate: new-1 → a run of just the fixed shape.
    let only = rig.lab.write(
        "only.toml",
        "name = \"only\"\nseed = 1\n[[kernel]]\nname = \"matmul_tiled_broken\"\nshape = { m = 9, n = 9, k = 9 }\ntile = 4\ntolerance = 1e9\n",
    );
    record(&rig, &only, "only-1", false);
    let fixed = diff(&rig, "new-1", "only-1", &["--json"]).ok().json();
    assert_eq!(
        fixed["counts"],
        json!({"unchanged": 0, "fixed": 1, "regressed": 0, "newly_faulted": 0, "gone": 4, "new": 0}),
        "{fixed}"
    );

    // The same diff from a server, and its errors as exit status 2.
    let served = rig.lab.serve();
    let url = served.url.clone();
    let remote = rig.lab.run([
        OsStr::new("campaign"),
        OsStr::new("diff"),
        OsStr::new("base-1"),
        OsStr::new("new-1"),
        OsStr::new("--json"),
        OsStr::new("--server"),
        OsStr::new(&url),
    ]);
    let unknown = rig.lab.run(["campaign", "diff", "base-1", "nope", "--server", &url]);
    drop(served);
    assert_eq!(remote.status(1).json(), d, "the server's diff is the database's");
    let unknown = unknown.status(2);
    assert!(unknown.stderr.contains("no run \"nope\""), "{}", unknown.stderr);
    rig.check_signed_and_verified();
}

#[test]
fn unknown_runs_and_bad_ids_exit_2() {
    let rig = Rig::new();
    let file = rig.lab.write(
        "t.toml",
        "name = \"t\"\nseed = 1\ntolerance = 1e-6\n[[kernel]]\nname = \"saxpy\"\nn = 10\nalpha = 1\n",
    );
    record(&rig, &file, "t-1", false);
    let out = diff(&rig, "t-1", "t-2", &[]).status(2);
    assert!(
        out.stderr.contains("no run \"t-2\": no kernel launch has subject \"run/t-2\""),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = diff(&rig, "gone", "t-1", &["--json"]).status(2);
    assert!(out.stderr.contains("no run \"gone\""), "{}", out.stderr);
    // A run with records but no launch is no campaign run.
    rig.lab.append_metrics(&rig.lab.worker("w"), "m-1", 0, 1);
    let out = diff(&rig, "t-1", "m-1", &[]).status(2);
    assert!(out.stderr.contains("no run \"m-1\""), "{}", out.stderr);
    for bad in ["_first", "a b", "", "x%y"] {
        let out = diff(&rig, "t-1", bad, &[]).status(2);
        assert!(out.stderr.contains("bad run id"), "{bad:?}: {}", out.stderr);
    }
    let missing = rig.lab.run(["campaign", "diff", "a", "b", "--db", "no-such.db"]).status(2);
    assert!(missing.stderr.contains("no ledger"), "{}", missing.stderr);
}

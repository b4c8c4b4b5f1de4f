//! A campaign's command cells keep their evidence: the whole stdout and stderr and the files
//! their table declares in `outputs`, stored as blobs in the ledger's evidence store before the
//! `evidence.captured` that cites them; the same output from two cells is stored once.

use crate::evidence::{blob_folder, cited};
use crate::support::blobs::named_files;
use crate::support::runner::Rig;

use std::collections::BTreeSet;
use std::ffi::OsStr;

use serde_json::Value;

const CAMPAIGN: &str = r#"
name = "kept"

[[command]]
name = "writer"
command = ["sh", "-c", "mkdir -p out && printf 'same output' > out/{n}.txt && echo cell {n} && echo complaint {n} >&2"]
outputs = ["out/{n}.txt", "out/never-written-{n}.txt"]
n = [1, 2]
"#;

#[test]
fn command_cells_keep_output_and_declared_files_before_citing_them() {
    let rig = Rig::new();
    let file = rig.lab.write("kept.toml", CAMPAIGN);
    let out = rig
        .run(
            &["run", "campaign"],
            &[file.as_os_str(), OsStr::new("--run"), OsStr::new("kept-1"), OsStr::new("--json")],
        )
        .ok();
    assert_eq!(out.json()["totals"]["passed"], 2, "{}", out.stdout);
    assert!(out.stderr.contains("never-written-1.txt"), "a missing output is named: {}", out.stderr);
    let launches: Vec<Value> = rig
        .events("kernel.launch.completed")
        .into_iter()
        .filter(|e| e["data"]["run"] == "kept-1")
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(launches.len(), 2);
    let files = cited(&rig, "kept-1");
    let paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "launch-0/outputs/out/1.txt",
            "launch-0/stderr",
            "launch-0/stdout",
            "launch-1/outputs/out/2.txt",
            "launch-1/stderr",
            "launch-1/stdout",
        ],
        "{files:?}"
    );
    let digest_of = |path: &str| files.iter().find(|(p, _, _)| p == path).map(|(_, d, _)| d.clone()).unwrap();
    for (n, launch) in launches.iter().enumerate() {
        let ordinal = launch["launch"].as_u64().expect("launch");
        for stream in ["stdout", "stderr"] {
            assert_eq!(
                launch["command"][stream]["digest"].as_str(),
                Some(digest_of(&format!("launch-{ordinal}/{stream}")).as_str()),
                "the kept {stream} is the whole stream the launch digested (cell {n})"
            );
        }
    }
    let same = blake3::hash(b"same output").to_hex().to_string();
    assert_eq!(digest_of("launch-0/outputs/out/1.txt"), same);
    assert_eq!(digest_of("launch-1/outputs/out/2.txt"), same);
    let out = rig.lab.db(&["evidence", "verify"], &[] as &[&str]).ok();
    // verify counts distinct digests: the two identical outputs are one.
    assert!(out.stderr.contains("5 cited evidence file(s), every one stored whole"), "{}", out.stderr);
    if let Some(folder) = blob_folder(&rig) {
        let named = named_files(&folder);
        let distinct: BTreeSet<&String> = files.iter().map(|(_, d, _)| d).collect();
        assert_eq!(named.len(), distinct.len(), "one blob per distinct content (5 of 6): {named:?}");
        assert_eq!(distinct.len(), 5);
        for (name, hash) in &named {
            assert_eq!(name, hash, "every blob lies under its true name");
            assert!(distinct.contains(name), "only cited blobs were stored: {name}");
        }
    }
}

/// A file left at a declared output path by an earlier run, which this launch did not write,
/// is not kept as this launch's evidence; one the launch rewrote is.
#[test]
fn an_output_the_launch_did_not_write_is_not_cited() {
    let rig = Rig::new();
    rig.lab.write("stale.txt", "from an earlier run");
    rig.lab.write("rewritten.txt", "from an earlier run");
    let file = rig.lab.write(
        "stale.toml",
        r#"
name = "stale"

[[command]]
name = "quiet"
command = ["sh", "-c", "printf 'this run' > rewritten.txt"]
outputs = ["stale.txt", "rewritten.txt"]
"#,
    );
    let out = rig
        .run(
            &["run", "campaign"],
            &[file.as_os_str(), OsStr::new("--run"), OsStr::new("stale-1"), OsStr::new("--json")],
        )
        .ok();
    assert!(
        out.stderr.contains("stale.txt") && out.stderr.contains("not written by this launch"),
        "the stale output is named: {}",
        out.stderr
    );
    let files = cited(&rig, "stale-1");
    let paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(paths, ["launch-0/outputs/rewritten.txt"], "{files:?}");
    assert_eq!(files[0].1, blake3::hash(b"this run").to_hex().to_string());
}

#[test]
fn an_output_path_leaving_the_cell_folder_is_refused_and_nothing_runs() {
    let rig = Rig::new();
    let text = CAMPAIGN.replace("\"out/{n}.txt\", ", "\"../{n}.txt\", ");
    let file = rig.lab.write("bad.toml", &text);
    let out = rig
        .run(&["run", "campaign"], &[file.as_os_str(), OsStr::new("--run"), OsStr::new("bad-1")])
        .status(2);
    assert!(out.stderr.contains("outputs") && out.stderr.contains("../1.txt"), "{}", out.stderr);
    assert!(rig.records().is_empty(), "nothing recorded");
}

//! `assay audit --recompute-from-evidence`: a run's `metrics.jsonl`, kept as evidence by `run
//! exec --evidence DIR --metrics DIR/metrics.jsonl`, gives the claimed values again; a recorded
//! metric the file does not hold is a disagreement (exit status 1), and so is a damaged file.

use std::ffi::OsStr;

use serde_json::json;

use crate::support::runner::Rig;
use crate::support::{Lab, Out};

/// `run exec` of `run` writing `lines` into `ev-<run>/metrics.jsonl`, read as its metrics.
fn exec_with_metrics(rig: &Rig, run: &str, lines: &[&str]) -> Out {
    let metrics = rig.path(&format!("ev-{run}")).join("metrics.jsonl");
    let script: String =
        lines.iter().map(|l| format!("printf '%s\\n' '{l}' >> '{}'\n", metrics.display())).collect();
    crate::evidence::exec_script(rig, run, &[OsStr::new("--metrics"), metrics.as_os_str()], &script)
}

fn append(lab: &Lab, key: &std::path::Path, ty: &str, subject: &str, data: serde_json::Value) {
    let line = json!({"type": ty, "subject": subject, "data": data}).to_string();
    let file = lab.write(&format!("{}.ndjson", blake3::hash(line.as_bytes()).to_hex()), line + "\n");
    lab.db(&["append"], &[OsStr::new("--key"), key.as_os_str(), OsStr::new("--ndjson"), file.as_os_str()])
        .ok();
}

fn recompute(lab: &Lab) -> Out {
    lab.db(&["audit"], &["--recompute-from-evidence"])
}

#[test]
fn claimed_values_are_recomputed_from_the_kept_metrics_file() {
    let rig = Rig::new();
    let lab = &rig.lab;
    let author = lab.producer("author", &["author"]);
    exec_with_metrics(
        &rig,
        "r-1",
        &[
            r#"{"name":"loss","step":0,"value":3.5}"#,
            r#"{"name":"loss","step":1,"value":1.25}"#,
            "",
            r#"{"name":"acc","step":1,"value":0.5}"#,
        ],
    )
    .ok();
    exec_writing_plain(&rig, "r-2");
    let evidence: Vec<String> = lab
        .log(&[])
        .into_iter()
        .filter(|r| r["type"] == "evidence.captured")
        .map(|r| r["digest"].as_str().unwrap().to_owned())
        .collect();
    let claim = |id: &str, run: &str, agg: &str, value: &str| {
        let check =
            json!({"kind": "metric", "run": run, "metric": "loss", "agg": agg, "op": "le", "value": value});
        append(
            lab,
            &author.key,
            "claim.asserted",
            "artifact/paper",
            json!({"artifact": "paper", "claim": id, "statement": "loss is low", "check": check, "evidence": evidence}),
        );
    };
    claim("last", "r-1", "last", "2");
    claim("mean", "r-1", "mean", "3");
    claim("elsewhere", "r-2", "last", "2");
    let out = recompute(lab).ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(
        lines[0],
        "paper#elsewhere  r-2 last(loss)  recorded none  from evidence none  no metrics file kept"
    );
    assert_eq!(lines[1], "paper#last  r-1 last(loss)  recorded 1.25  from evidence 1.25  agree");
    assert_eq!(lines[2], "paper#mean  r-1 mean(loss)  recorded 4.75/2  from evidence 4.75/2  agree");
    assert!(
        out.stderr.contains("3 claim value(s), 2 recomputed from evidence, every one agreeing"),
        "{}",
        out.stderr
    );
    // A value recorded that the kept file does not hold: the claim's value disagrees.
    append(
        lab,
        &rig.runner.key,
        "metric.recorded",
        "run/r-1",
        json!({"run": "r-1", "name": "loss", "step": 9, "value": 0.5}),
    );
    let out = recompute(lab).status(1);
    assert!(
        out.lines().contains(&"paper#last  r-1 last(loss)  recorded 0.5  from evidence 1.25  DISAGREE"),
        "{}",
        out.stdout
    );
    assert!(
        out.lines().contains(&"paper#mean  r-1 mean(loss)  recorded 5.25/3  from evidence 4.75/2  DISAGREE")
    );
    assert!(out.stderr.contains("2 finding(s)"), "{}", out.stderr);
    let json =
        lab.db(&["audit"], &["--recompute-from-evidence", "--json", "--artifact", "paper"]).status(1).json();
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(3), "{json}");
    assert_eq!(json["rows"][1]["outcome"], "disagree");
    // A damaged file is named.
    if crate::support::store::is_postgres() {
        return crate::support::skip::say("damaging a blob on disk", "the blobs are in PostgreSQL");
    }
    let kept = lab.log(&[]).into_iter().find(|r| r["type"] == "evidence.captured").expect("captured");
    let file = kept["event"]["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "metrics.jsonl")
        .cloned()
        .expect("the metrics file is evidence");
    let name = file["blake3"].as_str().unwrap();
    std::fs::write(format!("{}.blobs/{}/{name}", lab.db, &name[..2]), b"{\"name\":\"loss\"}\n").unwrap();
    let out = recompute(lab).status(1);
    assert!(
        out.lines().contains(&format!("{name}  metrics.jsonl  damaged  (run r-1)").as_str()),
        "{}",
        out.stdout
    );
}

/// `run exec` of `run` keeping a file that is not a metrics file.
fn exec_writing_plain(rig: &Rig, run: &str) {
    crate::evidence::exec_writing(rig, run, &[("notes.txt", "no metrics here")]).ok();
}

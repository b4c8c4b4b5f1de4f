//! The evidence gate through the real binary: `run exec --evidence` uploads first, so the
//! ledger appends `evidence.synced` right after its `evidence.captured`; evidence whose files
//! were not stored gets none, and once `control.evidence_sync` turns the gate on, a submission
//! whose claims cite it is rejected and the audit finds the claim unsupported
//! (`evidence_not_synced:<digest>`) until `assay evidence put` and `assay evidence sync`
//! record the fact.

use std::ffi::OsStr;

use serde_json::{Value, json};

use crate::evidence::exec_writing;
use crate::support::runner::Rig;
use crate::support::{Key, Lab, Out};

/// Appends one event of `ty` with `data` signed by `key` (its subject the one `data` dictates).
fn append(lab: &Lab, key: &std::path::Path, ty: &str, subject: &str, data: Value) -> Out {
    let line = json!({"type": ty, "subject": subject, "data": data}).to_string();
    let file = lab.write(&format!("{}.ndjson", blake3::hash(line.as_bytes()).to_hex()), line + "\n");
    lab.db(&["append"], &[OsStr::new("--key"), key.as_os_str(), OsStr::new("--ndjson"), file.as_os_str()])
}

fn appended(lab: &Lab, key: &Key, ty: &str, subject: &str, data: Value) {
    append(lab, &key.key, ty, subject, data).ok();
}

/// The records of type `ty`, as `assay log --json` prints them.
fn records(lab: &Lab, ty: &str) -> Vec<Value> {
    lab.log(&[]).into_iter().filter(|r| r["type"] == ty).collect()
}

/// The event digest of the latest `evidence.captured` of `run`.
fn captured(lab: &Lab, run: &str) -> (u64, String) {
    let r = records(lab, "evidence.captured")
        .into_iter()
        .rev()
        .find(|r| r["event"]["data"]["run"] == run)
        .unwrap_or_else(|| panic!("no evidence.captured of {run}"));
    (r["seq"].as_u64().expect("seq"), r["digest"].as_str().expect("digest").to_owned())
}

fn sync(lab: &Lab, digests: &[&str]) -> Out {
    let mut args = vec!["evidence", "sync"];
    args.extend_from_slice(digests);
    lab.db(&args, &[] as &[&str])
}

/// The decision the gate appended after the latest submission of `slug`.
fn decision(lab: &Lab, slug: &str) -> (String, Vec<String>) {
    let log = lab.log(&[]);
    let d = log
        .iter()
        .rev()
        .find(|r| {
            (r["type"] == "artifact.admitted" || r["type"] == "artifact.rejected")
                && r["event"]["data"]["slug"] == slug
        })
        .expect("a decision");
    let reasons = d["event"]["data"]["reasons"].as_array().expect("reasons");
    (d["type"].as_str().unwrap().to_owned(), reasons.iter().map(|r| r.as_str().unwrap().to_owned()).collect())
}

/// The verdict and reasons `assay audit --json` gives a claim.
fn verdict(lab: &Lab, slug: &str, claim: &str) -> (String, Vec<String>) {
    let audit = lab.db(&["audit"], &["--json"]).ok().json();
    let c = audit["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .find(|c| c["artifact"] == slug && c["claim"] == claim)
        .cloned()
        .unwrap_or_else(|| panic!("no verdict for {slug}#{claim}: {audit}"));
    let reasons = c["reasons"].as_array().expect("reasons").iter().map(|r| r.as_str().unwrap().to_owned());
    (c["verdict"].as_str().unwrap().to_owned(), reasons.collect())
}

fn submission(slug: &str, version: u64, content: &str) -> Value {
    json!({
        "slug": slug, "version": version, "title": "A result", "content_digest": content,
        "runs": ["r-1"], "generator": "test 1",
        "files": [{"path": "paper.md", "blake3": content, "bytes": 10}],
    })
}

#[test]
fn the_gate_refuses_evidence_not_in_the_store_until_it_is_put_and_synced() {
    let rig = Rig::new();
    let lab = &rig.lab;
    let author = lab.producer("author", &["author"]);
    // Uploaded before it was cited: the fact follows the evidence at once, signed by the ledger.
    exec_writing(&rig, "r-1", &[("a.txt", "alpha")]).ok();
    let (seq1, d1) = captured(lab, "r-1");
    let synced = records(lab, "evidence.synced");
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(synced[0]["seq"], seq1 + 1);
    // Signed by the ledger key: the genesis record's source.
    assert_eq!(synced[0]["event"]["source"], lab.log(&[])[0]["event"]["source"]);
    assert_eq!(synced[0]["event"]["data"], json!({"run": "r-1", "evidence": d1, "files": 1}));
    // Captured elsewhere and never put: no fact.
    let file = lab.write("late.txt", "late bytes");
    let blake = blake3::hash(b"late bytes").to_hex().to_string();
    let manifest = format!("{blake}  late.txt\n");
    let data = json!({"run": "r-2", "files": [{"path": "late.txt", "blake3": blake, "bytes": 10}],
                      "bundle_digest": blake3::hash(manifest.as_bytes()).to_hex().to_string()});
    appended(lab, &rig.runner, "evidence.captured", "run/r-2", data);
    let (_, d2) = captured(lab, "r-2");
    assert_eq!(records(lab, "evidence.synced").len(), 1, "no fact for files not stored");
    let check = json!({"kind": "completed", "run": "r-1"});
    appended(
        lab,
        &author,
        "claim.asserted",
        "artifact/paper",
        json!({"artifact": "paper", "claim": "c1", "statement": "r-1 completed", "check": check,
               "evidence": [d1, d2]}),
    );
    // Off, as in every ledger before the gate: admitted, supported.
    appended(lab, &author, "artifact.submitted", "artifact/paper", submission("paper", 1, &"1".repeat(64)));
    assert_eq!(decision(lab, "paper"), ("artifact.admitted".to_owned(), vec![]));
    assert_eq!(verdict(lab, "paper", "c1"), ("supported".to_owned(), vec![]));
    // On: the audit judges the claim unsupported, and the gate rejects a new version.
    let admin = lab.key("admin");
    appended(lab, &admin, "control.evidence_sync", "control", json!({"required": true}));
    let not_synced = format!("evidence_not_synced:{d2}");
    assert_eq!(verdict(lab, "paper", "c1"), ("unsupported".to_owned(), vec![not_synced.clone()]));
    // The bundle carries the switch, so the verdict recomputed offline is the same.
    bundle_verdict(lab, "unsupported.bundle", 1);
    appended(
        lab,
        &admin,
        "artifact.superseded",
        "artifact/paper",
        json!({"slug": "paper", "version": 1, "by": 2}),
    );
    appended(lab, &author, "artifact.submitted", "artifact/paper", submission("paper", 2, &"2".repeat(64)));
    assert_eq!(decision(lab, "paper"), ("artifact.rejected".to_owned(), vec![not_synced.clone()]));
    // A sync while the file is missing names it and records nothing (exit status 1).
    let out = sync(lab, &[&d2]).status(1);
    assert!(out.stderr.contains("late.txt") && out.stderr.contains("not stored"), "{}", out.stderr);
    assert!(out.stderr.contains("1 of 1 evidence not synced"), "{}", out.stderr);
    assert_eq!(records(lab, "evidence.synced").len(), 1);
    // Put, then synced: once, and asked again it is the same fact.
    lab.db(&["evidence", "put"], &[file.as_os_str()]).ok();
    let out = sync(lab, &[&d2, &d1]).ok();
    let lines = out.lines();
    assert!(
        lines[0].starts_with(&format!("{d2}  synced  seq ")) && lines[0].ends_with("1 file(s)"),
        "{}",
        out.stdout
    );
    assert!(lines[1].starts_with(&format!("{d1}  already synced  seq {}", seq1 + 1)), "{}", out.stdout);
    let again = sync(lab, &[&d2]).ok();
    assert!(again.stdout.starts_with(&format!("{d2}  already synced")), "{}", again.stdout);
    assert_eq!(records(lab, "evidence.synced").len(), 2);
    assert_eq!(verdict(lab, "paper", "c1"), ("supported".to_owned(), vec![]));
    appended(lab, &author, "artifact.submitted", "artifact/paper", submission("paper", 3, &"3".repeat(64)));
    assert_eq!(decision(lab, "paper"), ("artifact.admitted".to_owned(), vec![]));
    assert!(lab.verify(&[]).ok, "the log verifies");
    // And the facts of its evidence: it passes offline too.
    bundle_verdict(lab, "passing.bundle", 0);
}

/// `assay export bundle` of `paper`, then `assay verify-bundle` as a gate: its exit status.
fn bundle_verdict(lab: &Lab, name: &str, status: i32) {
    let file = lab.path(name);
    lab.db(
        &["export", "bundle"],
        &[OsStr::new("--artifact"), OsStr::new("paper"), OsStr::new("--out"), file.as_os_str()],
    )
    .ok();
    let vkey = lab.keys.join("ledger.vkey");
    let out = lab.run([
        OsStr::new("verify-bundle"),
        file.as_os_str(),
        OsStr::new("--ledger-key"),
        vkey.as_os_str(),
    ]);
    let expected = if status == 0 { "PASSED" } else { "FAILED" };
    assert!(out.stdout.contains(expected), "{}{}", out.stdout, out.stderr);
    out.status(status);
}

#[test]
fn sync_refuses_what_is_not_evidence() {
    let rig = Rig::new();
    let lab = &rig.lab;
    let out = sync(lab, &["not-a-digest"]).status(2);
    assert!(out.stderr.contains("not an event digest"), "{}", out.stderr);
    let out = sync(lab, &[&"A".repeat(64)]).status(2);
    assert!(out.stderr.contains("not an event digest"), "{}", out.stderr);
    let out = sync(lab, &[&"0".repeat(64)]).status(2);
    assert!(out.stderr.contains("no event with digest"), "{}", out.stderr);
    let genesis = lab.log(&[]).remove(0);
    let out = sync(lab, &[genesis["digest"].as_str().unwrap()]).status(2);
    assert!(out.stderr.contains("not an evidence.captured"), "{}", out.stderr);
    // The ledger's own type is refused from any producer.
    let data = json!({"run": "r-1", "evidence": "0".repeat(64), "files": 1});
    let out = append(lab, &rig.runner.key, "evidence.synced", "run/r-1", data).status(2);
    assert!(out.stderr.contains("ledger"), "{}", out.stderr);
    assert!(records(lab, "evidence.synced").is_empty());
}

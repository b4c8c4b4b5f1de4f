//! `assay export bundle` and `assay verify-bundle`: bundles verify offline and recompute the
//! audit's verdict; a removed envelope, an altered metric value and a bundle checked against
//! another ledger's key are caught.

use crate::support::export as export_support;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use export_support::{Demo, assay, s};
use serde_json::Value;

fn bundle(demo: &Demo, slug: &str, name: &str) -> PathBuf {
    let out = demo.path(name);
    assay(&["export", "bundle", "--db", &demo.db(), "--artifact", slug, "--out", &s(&out)]).ok();
    out
}

/// Authenticity only: signatures, proofs and the recomputed verdict, whatever the verdict is.
fn verify(file: &Path, vkey: &Path) -> (i32, Value) {
    let out = assay(&["verify-bundle", &s(file), "--ledger-key", &s(vkey), "--authentic-only", "--json"]);
    let code = out.code;
    (code, out.json())
}

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).expect("the bundle").lines().map(str::to_owned).collect()
}

fn write_lines(file: &Path, lines: &[String]) {
    std::fs::write(file, lines.iter().map(|l| format!("{l}\n")).collect::<String>())
        .expect("writing the bundle");
}

/// The decoded payload of an envelope line.
fn payload(line: &str) -> Value {
    let env: Value = serde_json::from_str(line).expect("an envelope");
    serde_json::from_slice(&STANDARD.decode(env["payload"].as_str().expect("payload")).expect("base64"))
        .expect("JSON")
}

/// The first line holding a `metric.recorded` event, and its seq (from the summary's names).
fn metric_line(file: &Path) -> Option<(usize, u64)> {
    let ls = lines(file);
    let summary = payload(ls.last().expect("a summary"));
    let names = summary["predicate"]["inputAttestations"].as_array().expect("inputAttestations").clone();
    ls.iter().enumerate().find_map(|(i, l)| {
        (payload(l)["type"] == "metric.recorded").then(|| {
            let name = names[i]["name"].as_str().expect("a name");
            let seq = name.strip_prefix("seq/").and_then(|r| r.split_once(' ')).expect("seq/N type").0;
            (i, seq.parse().expect("a seq"))
        })
    })
}

/// The audit's artifacts: (slug, passes).
fn artifacts(demo: &Demo) -> Vec<(String, bool)> {
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    audit["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| (a["slug"].as_str().expect("slug").to_owned(), a["passes"].as_bool().expect("passes")))
        .collect()
}

#[test]
fn bundles_verify_and_recompute_the_verdict() {
    let demo = Demo::new(7);
    let all = artifacts(&demo);
    let passing = all.iter().find(|(_, p)| *p).expect("a passing artifact");
    let failing = all.iter().find(|(_, p)| !*p).expect("a failing artifact");
    for (i, (slug, passes)) in [passing, failing].into_iter().enumerate() {
        let file = bundle(&demo, slug, &format!("b{i}.intoto.jsonl"));
        assert!(PathBuf::from(format!("{}.proof", file.display())).is_file());
        let proofs = std::fs::read_to_string(format!("{}.proof", file.display())).expect("proofs");
        assert!(proofs.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{}", &proofs[..80]);
        let (code, report) = verify(&file, &demo.ledger_vkey());
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["artifact"], slug.as_str());
        assert_eq!(report["verdict"], if *passes { "PASSED" } else { "FAILED" }, "{report}");
        // As a gate (no --authentic-only) a FAILED artifact exits 1, in text and JSON alike.
        for json in [false, true] {
            let mut args =
                vec!["verify-bundle".to_owned(), s(&file), "--ledger-key".to_owned(), s(&demo.ledger_vkey())];
            if json {
                args.push("--json".to_owned());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let gate = assay(&args);
            assert_eq!(gate.code, if *passes { 0 } else { 1 }, "json {json}: {}{}", gate.stdout, gate.stderr);
            if !json && !*passes {
                assert!(
                    gate.stdout.contains("FAILED") && gate.stderr.contains("does not pass"),
                    "{}{}",
                    gate.stdout,
                    gate.stderr
                );
            }
        }
        // The summary is an in-toto SLSA verification summary signed by the ledger.
        let ls = lines(&file);
        let env: Value = serde_json::from_str(ls.last().expect("summary")).expect("envelope");
        assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
        let vsa = payload(ls.last().expect("summary"));
        assert_eq!(vsa["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(vsa["predicateType"], "https://slsa.dev/verification_summary/v1");
        assert_eq!(vsa["predicate"]["inputAttestations"].as_array().expect("inputs").len(), ls.len() - 1);
        let claims =
            ls.iter().filter(|l| payload(l)["predicateType"] == "https://assay.dev/claim/v1").count();
        assert!(claims > 0);
        assert_eq!(payload(&ls[0])["type"], "ledger.initialized", "genesis first");
    }
}

/// A bundle of some artifact whose verdict rests on metric values.
fn bundle_with_metrics(demo: &Demo) -> (PathBuf, usize, u64) {
    for (i, (slug, _)) in artifacts(demo).iter().enumerate() {
        let file = bundle(demo, slug, &format!("m{i}.intoto.jsonl"));
        if let Some((line, seq)) = metric_line(&file) {
            return (file, line, seq);
        }
    }
    panic!("no artifact rests on a metric");
}

#[test]
fn a_removed_envelope() {
    let demo = Demo::new(7);
    let (file, line, seq) = bundle_with_metrics(&demo);
    let proof = PathBuf::from(format!("{}.proof", file.display()));
    let original = lines(&file);
    let mut ls = original.clone();
    ls.remove(line);
    write_lines(&file, &ls);
    // Its proof is left without an envelope.
    let (code, report) = verify(&file, &demo.ledger_vkey());
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["first_bad_seq"], seq, "{report}");
    assert!(report["reason"].as_str().unwrap_or_default().contains("has no envelope"), "{report}");
    // Its proof removed too: the summary's inputAttestations still list it.
    let text = std::fs::read_to_string(&proof).expect("proofs");
    let mut blocks: Vec<String> = Vec::new();
    for l in text.split_inclusive('\n') {
        if l == "c2sp.org/tlog-proof@v1\n" || blocks.is_empty() {
            blocks.push(String::new());
        }
        blocks.last_mut().expect("a block").push_str(l);
    }
    let kept: String =
        blocks.iter().filter(|b| !b.contains(&format!("\nindex {seq}\n"))).map(String::as_str).collect();
    assert_eq!(blocks.len(), kept.matches("c2sp.org/tlog-proof@v1\n").count() + 1, "one proof removed");
    std::fs::write(&proof, kept).expect("writing proofs");
    let (code, report) = verify(&file, &demo.ledger_vkey());
    assert_eq!(code, 1, "{report}");
    assert!(report["reason"].as_str().unwrap_or_default().contains("an envelope is missing"), "{report}");
}

#[test]
fn an_altered_metric_value() {
    let demo = Demo::new(7);
    let (file, line, seq) = bundle_with_metrics(&demo);
    let mut ls = lines(&file);
    let mut env: Value = serde_json::from_str(&ls[line]).expect("an envelope");
    let text = String::from_utf8(STANDARD.decode(env["payload"].as_str().expect("payload")).expect("base64"))
        .expect("UTF-8");
    let altered = text.replacen("\"value\":", "\"value\":9", 1);
    assert_ne!(altered, text);
    env["payload"] = STANDARD.encode(altered).into();
    ls[line] = env.to_string();
    write_lines(&file, &ls);
    let (code, report) = verify(&file, &demo.ledger_vkey());
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["first_bad_line"], line as u64 + 1, "{report}");
    assert!(report["reason"].as_str().unwrap_or_default().contains("no inclusion proof"), "{report}");
    let _ = seq;
}

#[test]
fn a_bundle_from_another_ledger_key() {
    let ours = Demo::new(7);
    let theirs = Demo::new(8);
    let (slug, _) = artifacts(&theirs).into_iter().next().expect("an artifact");
    let file = bundle(&theirs, &slug, "theirs.intoto.jsonl");
    assert_eq!(verify(&file, &theirs.ledger_vkey()).0, 0);
    let (code, report) = verify(&file, &ours.ledger_vkey());
    assert_eq!(code, 1, "{report}");
    assert!(
        report["reason"].as_str().unwrap_or_default().contains("does not verify under the ledger key"),
        "{report}"
    );
}

#[tokio::test]
async fn a_bundle_from_kept_projections_equals_one_from_a_replay() {
    use assay::export::bundle::{export_bundle, export_bundle_with};
    use assay::store::{Durability, Store};

    let demo = Demo::new(7);
    let (slug, _) = artifacts(&demo).into_iter().next().expect("an artifact");
    let store = Store::open(&demo.db(), Durability::Full, false).await.expect("the store");
    let key = assay::keyfile::read_signer(&demo.keys().join("ledger.key")).expect("the ledger key");
    let now = "2026-11-24T12:00:00Z";
    let replayed = demo.path("replayed.intoto.jsonl");
    export_bundle(&store, &slug, &key, &replayed, now).await.expect("the bundle, replayed");
    // What a server keeps: the fold of every record, here up to the latest checkpoint.
    let folded = assay::replay::replay(&store, None, |_, _| {}).await.expect("a fold");
    let mut asked = None;
    let kept = demo.path("kept.intoto.jsonl");
    export_bundle_with(&store, &slug, &key, &kept, now, |size| {
        asked = Some(size);
        Some(folded)
    })
    .await
    .expect("the bundle from kept projections");
    let head = store.head().await.expect("head").expect("a ledger");
    assert_eq!(asked, Some(head.checkpoint_size), "asked for the fold at the checkpoint");
    assert_eq!(std::fs::read(&kept).unwrap(), std::fs::read(&replayed).unwrap());
    let proof = |p: &Path| std::fs::read(assay::export::bundle::proof_path(p)).unwrap();
    assert_eq!(proof(&kept), proof(&replayed));
    let (code, report) = verify(&kept, &demo.ledger_vkey());
    assert_eq!(code, 0, "{report}");
}

#[test]
fn audit_is_a_gate() {
    let demo = Demo::new(7);
    let all = artifacts(&demo);
    let (passing, _) = all.iter().find(|(_, p)| *p).expect("a passing artifact");
    let (failing, _) = all.iter().find(|(_, p)| !*p).expect("a failing artifact");
    for json in [false, true] {
        let with = |extra: &[&str]| {
            let mut args = vec!["audit", "--db"];
            let db = demo.db();
            args.push(&db);
            args.extend_from_slice(extra);
            if json {
                args.push("--json");
            }
            assay(&args).code
        };
        assert_eq!(with(&["--artifact", passing]), 0, "a passing artifact");
        assert_eq!(with(&["--artifact", failing]), 1, "a failing artifact");
        assert_eq!(with(&[]), 0, "the report alone is no gate");
        assert_eq!(with(&["--require-all"]), 1, "the demo has failing canonical artifacts");
        assert_eq!(with(&["--artifact", "no/such-artifact"]), 2, "an unknown slug is bad input");
    }
    let text = assay(&["audit", "--db", &demo.db(), "--require-all"]);
    assert!(text.stderr.contains("canonical artifacts do not pass"), "{}", text.stderr);
}

#[test]
fn a_group_claims_bundle_holds_every_run_it_rests_on_and_recomputes() {
    let demo = Demo::new(11);
    let log = demo.log();
    let asserted = log
        .iter()
        .find(|r| r["type"] == "claim.asserted" && r["event"]["data"]["check"]["kind"] == "metric")
        .expect("a metric claim in the demo");
    let data = &asserted["event"]["data"];
    let slug = data["artifact"].as_str().expect("artifact");
    let metric = data["check"]["metric"].as_str().expect("metric");
    // Runs that recorded the metric: most rest on no claim of this artifact, so only the group
    // check brings their metrics into the bundle.
    let mut runs: Vec<String> = Vec::new();
    for r in log.iter().filter(|r| r["type"] == "metric.recorded" && r["event"]["data"]["name"] == metric) {
        let run = r["event"]["data"]["run"].as_str().expect("run").to_owned();
        if !runs.contains(&run) && runs.len() < 4 {
            runs.push(run);
        }
    }
    assert!(runs.len() >= 2, "{runs:?}");
    let check = serde_json::json!({"kind": "group", "metric": metric, "runs": runs, "agg": "last",
        "stat": "mean", "claimed": {"lo": "-1e9"}});
    let claim = serde_json::json!({"artifact": slug, "claim": "c-group", "statement": "The runs agree.",
        "check": check, "evidence": data["evidence"]});
    let key = asserted["source"].as_str().and_then(|s| s.strip_prefix("assay:key/")).expect("a key");
    demo.append(key, &[serde_json::json!({"type": "claim.asserted", "subject": format!("artifact/{slug}"), "data": claim})])
        .ok();

    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    let verdict = audit["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .find(|c| c["artifact"] == slug && c["claim"] == "c-group")
        .expect("the group claim is judged")
        .clone();
    assert_eq!(verdict["kind"], "group", "{verdict}");
    assert_eq!(verdict["registration"], "post_hoc", "{verdict}");
    let context: Vec<&str> =
        verdict["context"].as_array().expect("context").iter().filter_map(Value::as_str).collect();
    assert!(context.contains(&format!("n:{}", runs.len()).as_str()), "{verdict}");
    assert!(context.iter().any(|c| c.starts_with("observed_interval:")), "{verdict}");

    let file = bundle(&demo, slug, "group.intoto.jsonl");
    let (code, report) = verify(&file, &demo.ledger_vkey());
    assert_eq!(code, 0, "{report}");
    let payloads: Vec<Value> = lines(&file).iter().map(|l| payload(l)).collect();
    for run in &runs {
        assert!(
            payloads.iter().any(|p| p["type"] == "metric.recorded"
                && p["data"]["run"] == run.as_str()
                && p["data"]["name"] == metric),
            "the bundle holds {run}'s {metric}"
        );
    }
    let statement =
        payloads.iter().find(|p| p["predicate"]["claim"] == "c-group").expect("the group claim's statement");
    assert_eq!(statement["predicate"]["registration"], "post_hoc");
    assert_eq!(statement["predicate"]["verdict"], verdict["verdict"]);
}

/// Every statement of `file` with its subjects' digests changed by `f`, re-signed with the
/// ledger key, and the summary's `inputAttestations` following the changed lines.
fn resign_subjects(demo: &Demo, file: &Path, f: impl Fn(&mut serde_json::Map<String, Value>)) {
    use assay::export::intoto::{Statement, sha256_hex};
    let key = assay::keyfile::read_signer(&demo.keys().join("ledger.key")).expect("the ledger key");
    let mut ls = lines(file);
    let last = ls.len() - 1;
    let mut digests = Vec::new();
    for (i, line) in ls.iter_mut().enumerate() {
        let mut p = payload(line);
        if p["_type"] == "https://in-toto.io/Statement/v1" {
            for s in p["subject"].as_array_mut().expect("subjects") {
                f(s["digest"].as_object_mut().expect("digests"));
            }
            if i == last {
                for (input, digest) in p["predicate"]["inputAttestations"]
                    .as_array_mut()
                    .expect("inputs")
                    .iter_mut()
                    .zip(&digests)
                {
                    input["digest"]["sha256"] = Value::String(String::clone(digest));
                }
            }
            let statement: Statement = serde_json::from_value(p).expect("a statement");
            *line = String::from_utf8(statement.sign(&key).to_json()).expect("UTF-8");
        }
        digests.push(sha256_hex(line.as_bytes()));
    }
    write_lines(file, &ls);
}

/// Statement subjects carry `sha256` beside `blake3`: the SHA-256 of the same b3sum manifest,
/// rebuilt here from the submission's files. `verify-bundle` checks both; a bundle written
/// before subjects carried sha256 still verifies.
#[test]
fn subjects_carry_sha256_beside_blake3_and_older_bundles_verify() {
    use sha2::{Digest, Sha256};
    let demo = Demo::new(7);
    let (slug, _) = artifacts(&demo).into_iter().next().expect("an artifact");
    let file = bundle(&demo, &slug, "sha.intoto.jsonl");
    let ls = lines(&file);
    let vsa = payload(ls.last().expect("a summary"));
    let digest = &vsa["subject"][0]["digest"];
    let submitted: Vec<Value> = ls
        .iter()
        .map(|l| payload(l))
        .filter(|p| p["type"] == "artifact.submitted" && p["data"]["content_digest"] == digest["blake3"])
        .collect();
    let data = &submitted.last().expect("the submission is in the bundle")["data"];
    let manifest: String = data["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            format!("{}  {}\n", f["blake3"].as_str().expect("blake3"), f["path"].as_str().expect("path"))
        })
        .collect();
    assert_eq!(
        blake3::hash(manifest.as_bytes()).to_hex().as_str(),
        digest["blake3"].as_str().expect("blake3")
    );
    assert_eq!(digest["sha256"].as_str(), Some(hex::encode(Sha256::digest(manifest.as_bytes())).as_str()));
    for l in &ls {
        let p = payload(l);
        if p["predicateType"] == "https://assay.dev/claim/v1" {
            assert_eq!(&p["subject"][0]["digest"], digest);
        }
    }

    // A sha256 that is not the manifest's: refused.
    let wrong = demo.path("wrong.intoto.jsonl");
    std::fs::copy(&file, &wrong).expect("a copy");
    std::fs::copy(format!("{}.proof", file.display()), format!("{}.proof", wrong.display())).expect("a copy");
    resign_subjects(&demo, &wrong, |d| {
        d.insert("sha256".into(), Value::String("00".repeat(32)));
    });
    let (code, report) = verify(&wrong, &demo.ledger_vkey());
    assert_eq!(code, 1, "{report}");
    assert!(report.to_string().contains("subject is not the artifact's content digest"), "{report}");

    // As bundles were written before: blake3 alone.
    let older = demo.path("older.intoto.jsonl");
    std::fs::copy(&file, &older).expect("a copy");
    std::fs::copy(format!("{}.proof", file.display()), format!("{}.proof", older.display())).expect("a copy");
    resign_subjects(&demo, &older, |d| {
        d.remove("sha256");
    });
    assert!(
        payload(lines(&older).last().expect("a summary"))["subject"][0]["digest"].get("sha256").is_none()
    );
    let (code, report) = verify(&older, &demo.ledger_vkey());
    assert_eq!(code, 0, "{report}");
}

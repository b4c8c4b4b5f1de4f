//! The evidence store through a server, over real HTTP: `assay audit
//! --recompute-from-evidence --server` reads the log and the metrics files kept as evidence
//! through `GET /v1/events` and `GET /v1/blobs/{blake3}`, and agrees with the same audit over
//! `--db`. Its `put` and `capture` serve the other evidence tests of this binary.

use crate::support::http as app;

use app::{App, assay_cli, envelope, spawn_app};
use assay::blobs::{BlobName, signed};
use assay_events::keys::SignerKey;
use serde_json::{Value, json};

/// Stores `bytes` as a blob through `PUT /v1/blobs/{blake3}`, signed by `key`.
pub async fn put(app: &App, key: &SignerKey, bytes: &[u8]) {
    let name = BlobName::of(bytes);
    let r = app
        .http
        .put(app.url(&format!("/v1/blobs/{name}")))
        .header(signed::SIGNATURE_HEADER, signed::header_value(key, &name))
        .body(bytes.to_vec())
        .send()
        .await
        .expect("PUT");
    assert!(r.status().is_success(), "{}", r.status());
}

/// An `evidence.captured` of `run` listing `files` (path, contents); its (seq, digest).
pub async fn capture(app: &App, key: &SignerKey, run: &str, files: &[(&str, &[u8])]) -> (u64, String) {
    let listed: Vec<Value> = files
        .iter()
        .map(|(path, bytes)| json!({"path": path, "blake3": BlobName::of(bytes).to_hex(), "bytes": bytes.len()}))
        .collect();
    let manifest: String =
        files.iter().map(|(path, bytes)| format!("{}  {path}\n", BlobName::of(bytes))).collect();
    let data = json!({"run": run, "files": listed,
                      "bundle_digest": blake3::hash(manifest.as_bytes()).to_hex().to_string()});
    app.append_ok(&[envelope(key, "evidence.captured", &format!("run/{run}"), data)]).await.remove(0)
}

fn metric(key: &SignerKey, run: &str, step: u64, value: f64) -> Vec<u8> {
    let data = json!({"run": run, "name": "loss", "step": step, "value": value});
    envelope(key, "metric.recorded", &format!("run/{run}"), data)
}

// The CLI runs as a blocking child process: the server needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recompute_from_evidence_reads_the_log_and_blobs_through_the_server() {
    let app = spawn_app().await;
    let worker = app.key("w1", &["worker"]).await;
    let author = app.key("a1", &["author"]).await;
    let lines =
        b"{\"name\":\"loss\",\"step\":0,\"value\":3.5}\n{\"name\":\"loss\",\"step\":1,\"value\":1.25}\n";
    put(&app, &worker, lines).await;
    app.append_ok(&[metric(&worker, "r-1", 0, 3.5), metric(&worker, "r-1", 1, 1.25)]).await;
    let (_, evidence) = capture(&app, &worker, "r-1", &[("metrics.jsonl", lines)]).await;
    let check =
        json!({"kind": "metric", "run": "r-1", "metric": "loss", "agg": "last", "op": "le", "value": "2"});
    let claim = json!({"artifact": "paper", "claim": "last", "statement": "loss is low",
                       "check": check, "evidence": [evidence]});
    app.append_ok(&[envelope(&author, "claim.asserted", "artifact/paper", claim)]).await;
    let audit = |target: &[&str]| {
        let mut args = vec!["audit", "--recompute-from-evidence"];
        args.extend_from_slice(target);
        assay_cli(&args)
    };
    let (code, stdout, stderr) = audit(&["--server", &app.url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "paper#last  r-1 last(loss)  recorded 1.25  from evidence 1.25  agree\n");
    assert!(stderr.contains("1 claim value(s), 1 recomputed from evidence, every one agreeing"), "{stderr}");
    // A value recorded that the kept file does not hold: a finding, through the server too.
    app.append_ok(&[metric(&worker, "r-1", 9, 0.5)]).await;
    let (code, remote, stderr) = audit(&["--server", &app.url]);
    assert_eq!(code, 1, "{stderr}");
    assert!(remote.contains("recorded 0.5  from evidence 1.25  DISAGREE"), "{remote}");
    let (code, local, _) = audit(&["--db", &app.db]);
    assert_eq!((code, local), (1, remote), "the server and the ledger say the same");
    // The plain audit reads through the server as well.
    let (code, stdout, stderr) = assay_cli(&["audit", "--server", &app.url, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["claims"].as_array().map(Vec::len), Some(1), "{report}");
    // A server that is not there is an error naming it, not a silent empty audit.
    let gone = app.url.clone();
    app.stop().await;
    let (code, _, stderr) = audit(&["--server", &gone]);
    assert_ne!(code, 0);
    assert!(stderr.contains(&gone), "{stderr}");
}

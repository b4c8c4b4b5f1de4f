//! `POST /v1/evidence/{digest}/sync` on the real service, and `evidence.synced` after an
//! upload: evidence uploaded before it is cited gets the fact at once; evidence whose files
//! come later gets it when asked, once, and only when every file is stored; who may ask; and
//! what is not evidence. `assay evidence sync --server` goes through the same route.

use crate::support::http as app;

use crate::evidence_remote::{capture, put};
use app::{App, assay_cli, spawn_app};
use assay::blobs::signed;
use assay_events::keys::SignerKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn sync_as(app: &App, key: Option<&SignerKey>, digest: &str) -> (StatusCode, Value) {
    let mut req = app.http.post(app.url(&format!("/v1/evidence/{digest}/sync")));
    if let Some(key) = key {
        req = req.header(signed::SIGNATURE_HEADER, signed::sync_header_value(key, digest));
    }
    let r = req.send().await.expect("POST");
    let status = r.status();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
}

/// The `evidence.synced` records, as `GET /v1/events` lists them.
async fn synced(app: &App) -> Vec<Value> {
    let (status, body) = app.get("/v1/events?type=evidence.synced").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["records"].as_array().expect("records").clone()
}

#[tokio::test]
async fn uploaded_first_the_fact_follows_the_evidence_and_later_files_are_synced_when_asked() {
    let app = spawn_app().await;
    let worker = app.key("w1", &["worker"]).await;
    // Uploaded before the event that cites it: the ledger appends the fact right after it.
    put(&app, &worker, b"alpha").await;
    let (seq, first) = capture(&app, &worker, "r-1", &[("a.txt", b"alpha")]).await;
    let facts = synced(&app).await;
    assert_eq!(facts.len(), 1, "{facts:?}");
    assert_eq!(facts[0]["seq"], seq + 1);
    assert_eq!(facts[0]["event"]["data"], json!({"run": "r-1", "evidence": first, "files": 1}));
    // One of two files stored: no fact, and a sync names the missing one.
    put(&app, &worker, b"beta").await;
    let (_, second) = capture(&app, &worker, "r-2", &[("b.txt", b"beta"), ("c.txt", b"gamma")]).await;
    assert_eq!(synced(&app).await.len(), 1);
    let (status, body) = sync_as(&app, Some(&worker), &second).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "files_missing");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 of the 2 files") && detail.contains("c.txt") && !detail.contains("b.txt"),
        "{detail}"
    );
    assert_eq!(synced(&app).await.len(), 1, "a refused sync appends nothing");
    // The last file put, the fact is recorded once.
    put(&app, &worker, b"gamma").await;
    let (status, body) = sync_as(&app, Some(&worker), &second).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["evidence"].as_str(), body["files"].as_u64(), body["existed"].as_bool()),
        (Some(second.as_str()), Some(2), Some(false))
    );
    let (status, again) = sync_as(&app, Some(&worker), &second).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["seq"].clone(), again["digest"].clone(), again["existed"].clone()),
        (body["seq"].clone(), body["digest"].clone(), json!(true))
    );
    let (status, body) = sync_as(&app, Some(&worker), &first).await;
    assert_eq!(
        (status, body["seq"].as_u64(), body["existed"].as_bool()),
        (StatusCode::OK, Some(seq + 1), Some(true))
    );
    let facts = synced(&app).await;
    assert_eq!(facts.len(), 2);
    assert_eq!(facts[1]["event"]["source"], format!("assay:key/{}", app.ledger_key.name()));
    assert_eq!(facts[1]["digest"], body_digest(&app, &second).await);
    app.stop().await;
}

/// The digest of the `evidence.synced` recorded for `evidence`.
async fn body_digest(app: &App, evidence: &str) -> Value {
    synced(app)
        .await
        .into_iter()
        .find(|r| r["event"]["data"]["evidence"] == evidence)
        .map(|r| r["digest"].clone())
        .unwrap_or(Value::Null)
}

/// Multi-threaded: the server answers while this thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_evidence_recorders_may_ask_and_only_for_evidence() {
    let app = spawn_app().await;
    let worker = app.key("w1", &["worker"]).await;
    let author = app.key("author", &["author"]).await;
    let (_, evidence) = capture(&app, &worker, "r-1", &[("a.txt", b"alpha")]).await;
    put(&app, &worker, b"alpha").await;
    let (status, body) = sync_as(&app, None, &evidence).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("signature_required")),
        "{body}"
    );
    let stranger = assay::keyfile::generate("w1").unwrap();
    let (status, body) = sync_as(&app, Some(&stranger), &evidence).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A signature over another digest does not authorize this one.
    let r = app
        .http
        .post(app.url(&format!("/v1/evidence/{evidence}/sync")))
        .header(signed::SIGNATURE_HEADER, signed::sync_header_value(&worker, &"0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = sync_as(&app, Some(&author), &evidence).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("role_required")), "{body}");
    let (status, body) = sync_as(&app, Some(&worker), "ABC").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_digest")), "{body}");
    let (status, body) = sync_as(&app, Some(&worker), &"0".repeat(64)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, events) = app.get("/v1/events?type=key.registered").await;
    let key_event = events["records"][0]["digest"].as_str().unwrap().to_owned();
    let (status, body) = sync_as(&app, Some(&worker), &key_event).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_evidence")),
        "{body}"
    );
    assert!(synced(&app).await.is_empty(), "nothing was recorded");
    // The CLI through the server: the same route, the same fact.
    let (key_path, _) = assay::keyfile::write_pair(app.dir.path(), &worker).unwrap();
    let key_path = key_path.to_str().unwrap().to_owned();
    let (code, stdout, stderr) =
        assay_cli(&["evidence", "sync", &evidence, "--server", &app.url, "--key", &key_path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(&format!("{evidence}  synced  seq ")), "{stdout}");
    let (_, missing) = capture(&app, &worker, "r-2", &[("never.txt", b"never put")]).await;
    let (code, _, stderr) =
        assay_cli(&["evidence", "sync", &missing, "--server", &app.url, "--key", &key_path]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("never.txt"), "{stderr}");
    assert_eq!(synced(&app).await.len(), 1);
    app.stop().await;
}

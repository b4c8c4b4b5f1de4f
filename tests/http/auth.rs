//! Read authorization. On loopback reads are open. On a listener beyond loopback (0.0.0.0,
//! reached here through 127.0.0.1) every read needs a bearer token from `assay token create`
//! or from the operator's token file: no token 401, revoked token 401, valid token 200.
//! Writes stay authorized by signatures alone. Revoking a token also ends the live streams
//! opened with it, with a final `error` event.

use crate::support::http as app;

use std::net::SocketAddr;

use std::time::Duration;

use app::{Sse, assay_cli as assay, metric, spawn_app, spawn_app_with};
use assay::http::ServeOptions;
use reqwest::StatusCode;

async fn get(
    app: &app::App,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = app.http.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("GET");
    (r.status(), r.headers().clone(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_need_a_token_beyond_loopback() {
    let options = ServeOptions {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        read_tokens: vec!["operator-file-token-0123456789".to_owned()],
        ..ServeOptions::default()
    };
    let app = spawn_app_with(options).await;
    let db = app.db.as_str();

    // No token: 401 with a JSON error and a Bearer challenge, on every read route.
    for path in [
        "/v1/checkpoint",
        "/v1/events",
        "/v1/queue",
        "/v1/proof/inclusion?seq=0",
        "/metrics",
        "/v1/stream",
        "/tile/entries/000.p/1",
    ] {
        let (status, headers, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"), "{path}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["error"], "token_required");
    }
    let (status, _, _) = get(&app, "/v1/checkpoint", Some("assay_not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A token from `assay token create`: shown once, stored hashed.
    let (code, token, err) = assay(&["token", "create", "--db", db, "--name", "ci"]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("assay_") && token.len() > 40, "{token}");
    let (code, _, err) = assay(&["token", "create", "--db", db, "--name", "ci"]);
    assert_eq!(code, 2, "a second valid token of one name is refused");
    assert!(err.contains("revoke it first"), "{err}");
    let (status, _, note) = get(&app, "/v1/checkpoint", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(note.starts_with(app::ORIGIN), "{note}");
    let (status, _, _) = get(&app, "/v1/events?limit=1", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    // The operator's file token.
    let (status, _, _) = get(&app, "/v1/queue", Some("operator-file-token-0123456789")).await;
    assert_eq!(status, StatusCode::OK);

    // Revoked: refused at once.
    let (code, out, err) = assay(&["token", "revoke", "--db", db, "--name", "ci"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    let (status, _, body) = get(&app, "/v1/checkpoint", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (code, _, _) = assay(&["token", "revoke", "--db", db, "--name", "ci"]);
    assert_eq!(code, 2, "revoking twice is an error");
    // The name may be given a new token.
    let (code, fresh, _) = assay(&["token", "create", "--db", db, "--name", "ci"]);
    assert_eq!(code, 0);
    let (status, _, _) = get(&app, "/v1/checkpoint", Some(fresh.trim())).await;
    assert_eq!(status, StatusCode::OK);

    // Open without a token: health and the API description. Writes: signatures decide.
    let (status, _, _) = get(&app, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&app, "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let worker = app.key("worker-1", &["worker"]).await;
    app.append_ok(&[metric(&worker, "r1", 0)]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_reads_are_open_unless_required() {
    let app = spawn_app().await;
    let (status, _, _) = get(&app, "/v1/checkpoint", None).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;

    let app = spawn_app_with(ServeOptions { require_read_token: true, ..ServeOptions::default() }).await;
    let (status, _, _) = get(&app, "/v1/checkpoint", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// A live stream checks its token again while it lasts: revoking the token ends the stream with
/// a final `error` event (within a bounded wait), while a stream opened with another token, and
/// one with the operator's file token, go on receiving records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_open_streams() {
    let options = ServeOptions {
        require_read_token: true,
        read_tokens: vec!["operator-file-token-0123456789".to_owned()],
        stream_token_check: Duration::from_millis(200),
        heartbeat: Duration::from_millis(200),
        ..ServeOptions::default()
    };
    let app = spawn_app_with(options).await;
    let db = app.db.as_str();
    let create = |name: &str| {
        let (code, token, err) = assay(&["token", "create", "--db", db, "--name", name]);
        assert_eq!(code, 0, "{err}");
        token.trim().to_owned()
    };
    let (doomed, kept) = (create("doomed"), create("kept"));
    let head = app.size().await;
    let url = app.url(&format!("/v1/stream?from={}", head - 1));
    let stream = |token: &str| Sse::open(app.http.get(&url).bearer_auth(token));
    let mut doomed_sse = stream(&doomed).await;
    let mut kept_sse = stream(&kept).await;
    let mut file_sse = stream("operator-file-token-0123456789").await;
    for sse in [&mut doomed_sse, &mut kept_sse, &mut file_sse] {
        let ev = tokio::time::timeout(Duration::from_secs(10), sse.next())
            .await
            .expect("the last record")
            .expect("an event");
        assert_eq!((ev.event.as_str(), ev.id), ("record", Some((head - 1).to_string())));
    }

    let (code, _, err) = assay(&["token", "revoke", "--db", db, "--name", "doomed"]);
    assert_eq!(code, 0, "{err}");
    let last = tokio::time::timeout(Duration::from_secs(10), doomed_sse.next())
        .await
        .expect("the revoked stream ends within the bound")
        .expect("a final event");
    assert_eq!(last.event, "error", "{last:?}");
    let data: serde_json::Value = serde_json::from_str(&last.data).expect("JSON");
    assert_eq!(data["error"], "token_revoked");
    assert!(data["detail"].as_str().is_some_and(|d| d.contains("revoked")), "{data}");
    let end =
        tokio::time::timeout(Duration::from_secs(10), doomed_sse.next()).await.expect("the stream ends");
    assert!(end.is_none(), "nothing after the final event: {end:?}");
    // Reconnecting with it is refused.
    let (status, _, _) = get(&app, "/v1/stream", Some(&doomed)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The other streams go on: a record appended after the revocation reaches both.
    let worker = app.key("worker-1", &["worker"]).await;
    app.append_ok(&[metric(&worker, "r1", 0)]).await;
    for sse in [&mut kept_sse, &mut file_sse] {
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            let ev = tokio::time::timeout(Duration::from_secs(10), sse.next())
                .await
                .expect("live")
                .expect("an event");
            assert_eq!(ev.event, "record", "{ev:?}");
            seqs.push(ev.id.expect("an id"));
        }
        assert_eq!(seqs, [head.to_string(), (head + 1).to_string()]);
    }
    app.stop().await;
}

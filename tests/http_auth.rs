//! Read authorization. On loopback reads are open. On a listener beyond loopback (0.0.0.0,
//! reached here through 127.0.0.1) every read needs a bearer token from `assay token create`
//! or from the operator's token file: no token 401, revoked token 401, valid token 200.
//! Writes stay authorized by signatures alone.

#[path = "support/http.rs"]
mod app;

use std::net::SocketAddr;

use app::{assay_cli as assay, metric, spawn_app, spawn_app_with};
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
    for path in
        ["/v1/checkpoint", "/v1/events", "/v1/queue", "/v1/proof/inclusion?seq=0", "/metrics", "/v1/stream"]
    {
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

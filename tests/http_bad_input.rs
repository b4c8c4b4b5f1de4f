//! Bad input never stores anything and never gets a 5xx: every case is a 4xx with a JSON
//! `{"error","detail"}` that says what is wrong, and the record count does not move.

#[path = "support/http.rs"]
mod app;

use app::{batch, envelope, metric, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    error: Option<&'static str>,
}

fn post(name: &'static str, body: Vec<u8>, status: u16, error: &'static str) -> Case {
    Case {
        name,
        method: Method::POST,
        path: "/v1/events".into(),
        content_type: Some("application/json"),
        body,
        headers: vec![],
        status,
        error: Some(error),
    }
}

fn get(name: &'static str, path: &str, status: u16) -> Case {
    Case {
        name,
        method: Method::GET,
        path: path.into(),
        content_type: None,
        body: vec![],
        headers: vec![],
        status,
        error: None,
    }
}

/// `envelope` with one field of its JSON replaced.
fn with(envelope: &[u8], field: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(envelope).expect("JSON");
    v[field] = value;
    serde_json::to_vec(&v).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_matrix() {
    let app = spawn_app().await;
    let worker = app.key("worker-1", &["worker"]).await;
    let stranger = assay::keyfile::generate("stranger").expect("a key");
    let good = metric(&worker, "r1", 1);
    let other = metric(&worker, "r1", 2);
    app.append_ok(&[metric(&worker, "r1", 0)]).await;
    let size = app.size().await;

    let huge_unit = "x".repeat((1 << 20) + 10);
    let mut cases = vec![
        post("malformed JSON", b"{\"payloadType\":".to_vec(), 400, "malformed_json"),
        post("not an object", b"[1,2,3]".to_vec(), 400, "malformed_json"),
        post("not UTF-8", vec![0xff, 0xfe, 0x7b], 400, "malformed_json"),
        post("empty body", vec![], 400, "malformed_json"),
        post("envelopes not an array", br#"{"envelopes":{"a":1}}"#.to_vec(), 400, "malformed_json"),
        post(
            "batch with another field",
            format!(r#"{{"envelopes":[{}],"x":1}}"#, String::from_utf8_lossy(&good)).into_bytes(),
            400,
            "malformed_json",
        ),
        post("empty batch", br#"{"envelopes":[]}"#.to_vec(), 400, "empty_batch"),
        post("unknown envelope field", with(&good, "extra", json!(1)), 400, "bad_envelope"),
        post("bad base64 payload", with(&good, "payload", json!("!!!not base64!!!")), 400, "bad_envelope"),
        post(
            "bad base64 signature",
            with(&good, "signatures", json!([{"keyid": "worker-1+00000000", "sig": "%%%"}])),
            400,
            "bad_envelope",
        ),
        post("no signatures", with(&good, "signatures", json!([])), 400, "bad_envelope"),
        post("wrong payload type", with(&good, "payloadType", json!("text/plain")), 400, "bad_envelope"),
        post("payload not a CloudEvent", with(&good, "payload", json!("eyJhIjoxfQ==")), 400, "bad_event"),
        {
            let sigs: Value = serde_json::from_slice::<Value>(&other).expect("JSON")["signatures"].clone();
            post("bad signature", with(&good, "signatures", sigs), 401, "bad_signature")
        },
        post("unknown key", metric(&stranger, "r1", 1), 401, "unknown_key"),
        post(
            "role",
            envelope(
                &worker,
                "run.queued",
                "run/r9",
                json!({"run": "r9", "project": "p", "needs_gpu": false, "spec": {}}),
            ),
            403,
            "role_not_allowed",
        ),
        post(
            "ledger-only type",
            envelope(
                &worker,
                "dispatch.decided",
                "run/r9",
                json!({"run": "r9", "worker": "w", "gpu": null, "accepted": true, "reasons": [], "request": "0".repeat(64)}),
            ),
            403,
            "ledger_only",
        ),
        post(
            "source not the signer",
            {
                let mut event: Value = serde_json::from_slice(
                    &assay_events::b64::decode_any(
                        serde_json::from_slice::<Value>(&good).expect("JSON")["payload"]
                            .as_str()
                            .expect("payload"),
                    )
                    .expect("base64"),
                )
                .expect("JSON");
                event["source"] = json!("assay:key/someone-else");
                assay_events::dsse::DecodedEnvelope::sign(serde_json::to_vec(&event).expect("JSON"), &worker)
                    .to_json()
            },
            403,
            "source_not_signer",
        ),
        post(
            "schema",
            envelope(&worker, "metric.recorded", "run/r1", json!({"run": "r1", "name": "x", "step": 1})),
            422,
            "schema_violation",
        ),
        post(
            "unknown type",
            envelope(&worker, "metric.invented", "run/r1", json!({"run": "r1"})),
            422,
            "schema_violation",
        ),
        post(
            "wrong subject",
            envelope(
                &worker,
                "metric.recorded",
                "run/r2",
                json!({"run": "r1", "name": "x", "step": 1, "value": 1.0}),
            ),
            422,
            "bad_subject",
        ),
        post(
            "payload over 1 MiB",
            envelope(
                &worker,
                "metric.recorded",
                "run/r1",
                json!({"run": "r1", "name": "x", "step": 1, "value": 1.0, "unit": huge_unit}),
            ),
            413,
            "payload_too_large",
        ),
        post("batch over 1000", batch(&vec![good.clone(); 1001]), 413, "too_many_envelopes"),
        post(
            "one bad envelope in a batch",
            batch(&[metric(&worker, "r1", 7), metric(&worker, "r1", 8), metric(&stranger, "r1", 9)]),
            401,
            "unknown_key",
        ),
        Case {
            content_type: Some("text/plain"),
            ..post("wrong content type", good.clone(), 415, "unsupported_media_type")
        },
        Case { content_type: None, ..post("no content type", good.clone(), 415, "unsupported_media_type") },
        Case {
            path: "/v1/dispatch".into(),
            ..post("dispatch: not JSON", b"nope".to_vec(), 400, "bad_envelope")
        },
        Case {
            path: "/v1/dispatch".into(),
            ..post(
                "dispatch: unknown key",
                envelope(
                    &stranger,
                    "dispatch.requested",
                    "run/r1",
                    json!({"run": "r1", "worker": "w", "gpu": null}),
                ),
                401,
                "unknown_key",
            )
        },
        get("limit 0", "/v1/events?limit=0", 400),
        get("limit over 1000", "/v1/events?limit=1001", 400),
        get("limit not a number", "/v1/events?limit=ten", 400),
        get("negative from", "/v1/events?from=-1", 400),
        get("unknown parameter", "/v1/events?typ=metric.recorded", 400),
        get("digest not hex", "/v1/events/not-a-digest", 400),
        get("inclusion without seq", "/v1/proof/inclusion", 400),
        get("inclusion seq not a number", "/v1/proof/inclusion?seq=x", 400),
        get("inclusion seq past the tree", "/v1/proof/inclusion?seq=999999", 400),
        get("inclusion at an unsigned size", "/v1/proof/inclusion?seq=0&size=999999", 404),
        get("inclusion at size 0", "/v1/proof/inclusion?seq=0&size=0", 404),
        get("consistency old above new", &format!("/v1/proof/consistency?old={size}&new=1"), 400),
        get("consistency old 0", &format!("/v1/proof/consistency?old=0&new={size}"), 400),
        get("consistency missing new", "/v1/proof/consistency?old=1", 400),
        get("consistency past the largest seq", "/v1/proof/consistency?old=1&new=18446744073709551615", 400),
        get("at not a number", "/v1/queue?at=x", 400),
        get("at past the head", "/v1/projections/queue?at=999999", 400),
        get("unknown projection", "/v1/projections/nothing", 404),
        get("stream from not a number", "/v1/stream?from=x", 400),
        Case { headers: vec![("last-event-id", "abc")], ..get("bad Last-Event-ID", "/v1/stream", 400) },
        get("unknown route", "/v1/nothing", 404),
        // `/` and the other dashboard pages are HTML (tests/dashboard.rs); other paths are not routes.
        get("unknown page", "/nothing", 404),
        get("unversioned", "/checkpoint", 404),
        Case { method: Method::DELETE, ..get("DELETE events", "/v1/events", 405) },
        Case { method: Method::PUT, ..get("PUT checkpoint", "/v1/checkpoint", 405) },
        Case {
            method: Method::POST,
            content_type: Some("application/json"),
            ..get("POST queue", "/v1/queue", 405)
        },
    ];
    let mut failures = Vec::new();
    for case in cases.drain(..) {
        let mut req = app.http.request(case.method.clone(), app.url(&case.path)).body(case.body.clone());
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in &case.headers {
            req = req.header(*k, *v);
        }
        let response = req.send().await.expect("a response");
        let status = response.status();
        let ct =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = response.text().await.expect("a body");
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let problems = [
            (status.is_server_error(), format!("a server error {status}")),
            (status.as_u16() != case.status, format!("status {status}, expected {}", case.status)),
            (!ct.starts_with("application/json"), format!("content type {ct:?}")),
            (body["error"].as_str().is_none_or(str::is_empty), "no error code".to_owned()),
            (body["detail"].as_str().is_none_or(|d| d.len() < 8), "no clear detail".to_owned()),
            (
                case.error.is_some_and(|e| body["error"] != e),
                format!("error {}, expected {:?}", body["error"], case.error),
            ),
        ];
        for (bad, what) in problems {
            if bad {
                failures.push(format!("{}: {what}: {}", case.name, &text[..text.len().min(300)]));
            }
        }
    }
    // A body over 4 MiB is refused from its Content-Length, before it is read. (Sent as raw
    // HTTP: a client still writing a body the server will not read sees a broken pipe.)
    let head = "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                Content-Length: 5242880\r\nConnection: close\r\n\r\n";
    let (status, body) = raw(app.addr, head).await;
    if status != 413
        || body["error"] != "body_too_large"
        || !body["detail"].as_str().is_some_and(|d| d.contains("4 MiB"))
    {
        failures.push(format!("body over 4 MiB: {status} {body}"));
    }
    assert!(failures.is_empty(), "bad input handled badly:\n{}", failures.join("\n"));
    assert_eq!(app.size().await, size, "bad input stored nothing");

    // The server still serves.
    let (status, body) = app.get("/v1/events?from=0&limit=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

/// Sends `head` on a fresh connection; the status and the JSON body of the response.
async fn raw(addr: std::net::SocketAddr, head: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_key() {
    let options = assay::http::ServeOptions {
        rate_limit: Some(assay::http::RateLimit { per_second: 1.0, burst: 3.0 }),
        ..Default::default()
    };
    let app = app::spawn_app_with(options).await;
    let worker = app.key("worker-1", &["worker"]).await;
    let other = app.key("worker-2", &["worker"]).await;
    app.append_ok(&(0..3).map(|s| metric(&worker, "r1", s)).collect::<Vec<_>>()).await;
    let size = app.size().await;
    let response = app
        .http
        .post(app.url("/v1/events"))
        .header("content-type", "application/json")
        .body(metric(&worker, "r1", 3))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "retry after {retry}");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "rate_limited");
    assert!(body["detail"].as_str().expect("detail").contains("worker-1"), "{body}");
    assert_eq!(app.size().await, size, "nothing stored");
    // Another key has its own budget; a request over the burst is refused outright.
    app.append_ok(&[metric(&other, "r2", 0)]).await;
    let (status, body) = app.append(&(0..4).map(|s| metric(&other, "r2", 10 + s)).collect::<Vec<_>>()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // A second later the key may append again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.append_ok(&[metric(&worker, "r1", 4)]).await;
    app.stop().await;
}

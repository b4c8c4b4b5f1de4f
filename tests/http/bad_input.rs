//! Bad input never stores anything and never gets a 5xx: every case is a 4xx with a JSON
//! `{"error","detail"}` that says what is wrong, and the record count does not move.
//! Connections are bounded too: a client that dribbles its headers (slowloris) or says nothing
//! is closed after the header read timeout, an idle keep-alive connection after the idle
//! timeout, and past the connection cap one more connection is answered 503 with Retry-After.

use crate::support::http as app;

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
        // `/` and the other dashboard pages are HTML (tests/http/dashboard.rs); other paths are not routes.
        get("unknown page", "/nothing", 404),
        get("unversioned", "/v2/checkpoint", 404),
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

/// A CloudEvent (as JSON, to tamper with) by the key named `signer`.
fn event(signer: &str, id: &str, ty: &str, subject: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": format!("assay:key/{signer}"), "type": ty,
        "subject": subject, "time": "2025-06-01T12:00:00Z", "datacontenttype": "application/json",
        "data": data,
    })
}

/// `payload` signed by `key` (any bytes: the test decides what the signed bytes say).
fn signed(key: &assay_events::keys::SignerKey, payload: Vec<u8>) -> Vec<u8> {
    assay_events::dsse::DecodedEnvelope::sign(payload, key).to_json()
}

/// `payload` under one all-zero signature by `keyid` (a key the ledger never saw).
fn zero_signed(keyid: &str, payload: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "payloadType": assay_events::dsse::PAYLOAD_TYPE,
        "payload": assay_events::b64::encode_std(payload),
        "signatures": [{"keyid": keyid, "sig": assay_events::b64::encode_std(&[0u8; 64])}],
    }))
    .expect("JSON")
}

/// POSTs `body` to /v1/events on `url`: the status and the JSON body.
async fn post_events(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = http
        .post(format!("{url}/v1/events"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every string the store keeps as a column (the CloudEvents `id`, `source`, `type`,
/// `subject`, `time`, the signature keyids, and the `data` strings that a subject is made of),
/// and every query parameter that reaches SQL, with a control character in it, on the store
/// under test: a 4xx naming the field, nothing stored, `/healthz` healthy, and innocent
/// appends sent at the same time all succeed. (On PostgreSQL a NUL once failed the whole batch
/// with 503, and `?subject=%00` answered 500; SQLite stored the NUL.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_never_reach_the_store() {
    let app = spawn_app().await;
    let worker = app.key("worker-1", &["worker"]).await;
    let innocent = app.key("worker-2", &["worker"]).await;
    let stranger = assay::keyfile::generate("stranger").expect("a key");
    let before = app.size().await;

    let mut bad: Vec<(String, Vec<u8>)> = Vec::new();
    for c in ['\0', '\u{1}', '\n', '\u{1b}', '\u{7f}', '\u{85}'] {
        let run = json!({"run": "r1", "name": "x", "step": 1, "value": 1.0});
        let bad_run = json!({"run": format!("r{c}1"), "name": "x", "step": 1, "value": 1.0});
        let vkey = format!("ne{c}w+00000000+{}", "A".repeat(44));
        let events: Vec<(&str, Value)> = vec![
            ("id", event("NAME", &format!("id{c}x"), "metric.recorded", "run/r1", run.clone())),
            ("source", {
                let mut e = event("NAME", "id-src", "metric.recorded", "run/r1", run.clone());
                e["source"] = json!(format!("assay:key/NAME{c}"));
                e
            }),
            ("type", event("NAME", "id-type", &format!("metric.recorded{c}"), "run/r1", run.clone())),
            ("subject", event("NAME", "id-subj", "metric.recorded", &format!("run/r1{c}"), run.clone())),
            ("data.run", event("NAME", "id-run", "metric.recorded", &format!("run/r{c}1"), bad_run)),
            ("time", {
                let mut e = event("NAME", "id-time", "metric.recorded", "run/r1", run.clone());
                e["time"] = json!(format!("2025-06-01T12:00:00{c}Z"));
                e
            }),
            (
                "data.vkey",
                event(
                    "NAME",
                    "id-key",
                    "key.registered",
                    &format!("key/ne{c}w"),
                    json!({"vkey": vkey, "roles": ["worker"]}),
                ),
            ),
        ];
        for (field, e) in events {
            let text = serde_json::to_string(&e).expect("JSON");
            let by_worker = text.replace("NAME", "worker-1").into_bytes();
            let by_stranger = text.replace("NAME", "stranger").into_bytes();
            bad.push((format!("{field} {c:?} (registered key)"), signed(&worker, by_worker)));
            bad.push((format!("{field} {c:?} (unknown key)"), zero_signed(&stranger.keyid(), &by_stranger)));
        }
        // The signature's keyid.
        let payload =
            serde_json::to_vec(&event("worker-1", "id-kid", "metric.recorded", "run/r1", run)).expect("JSON");
        let mut env: Value = serde_json::from_slice(&signed(&worker, payload)).expect("JSON");
        env["signatures"][0]["keyid"] = json!(format!("worker-1{c}+{:08x}", worker.id()));
        bad.push((format!("keyid {c:?}"), serde_json::to_vec(&env).expect("JSON")));
    }

    // Every bad request at once, each beside an innocent append: none may fail another.
    let mut tasks = Vec::new();
    for (i, (name, body)) in bad.into_iter().enumerate() {
        let (http, url) = (app.http.clone(), app.url.clone());
        let good = metric(&innocent, "r-innocent", i as u64);
        tasks.push(tokio::spawn(async move {
            let (bad_status, bad_body) = post_events(&http, &url, body).await;
            let (good_status, good_body) = post_events(&http, &url, good).await;
            (name, bad_status, bad_body, good_status, good_body)
        }));
    }
    let mut failures = Vec::new();
    let mut innocents = 0;
    for t in tasks {
        let (name, bad_status, bad_body, good_status, good_body) = t.await.expect("a task");
        if !bad_status.is_client_error() || bad_body["error"].as_str().is_none() {
            failures.push(format!("{name}: {bad_status} {bad_body}"));
        }
        if good_status == StatusCode::CREATED {
            innocents += 1;
        } else {
            failures.push(format!("innocent beside {name}: {good_status} {good_body}"));
        }
    }
    assert!(failures.is_empty(), "control characters handled badly:\n{}", failures.join("\n"));
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "the store stays healthy: {health}");
    assert_eq!(app.size().await, before + innocents, "only the innocent appends were stored");

    // Named clearly: the field and the character.
    let payload = serde_json::to_vec(&event(
        "worker-1",
        "a\u{0}b",
        "metric.recorded",
        "run/r1",
        json!({"run": "r1", "name": "x", "step": 1, "value": 1.0}),
    ))
    .expect("JSON");
    let (status, body) = app.append(&[signed(&worker, payload)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_event");
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.contains("`id`") && detail.contains("U+0000"), "{detail}");

    // Query parameters and paths that reach SQL: 400, JSON for /v1, a page for the dashboard.
    let long = "a".repeat(300);
    let mut paths = vec![
        format!("/v1/events?subject={long}"),
        format!("/v1/events?type={long}"),
        format!("/events?subject={long}"),
    ];
    for c in ["%00", "%01", "%0A", "%1B", "%7F", "%C2%85"] {
        for p in [
            "/v1/events?subject=run%2Fr1",
            "/v1/events?type=metric.recorded",
            "/v1/events?from=0&limit=5&subject=x",
            "/events?subject=run%2Fr1",
            "/events?type=metric.recorded",
            "/runs/r1",
        ] {
            paths.push(format!("{p}{c}x"));
        }
        paths.push(format!("/runs/{c}"));
    }
    for path in &paths {
        let (status, text) = app.get_text(path).await;
        if status != StatusCode::BAD_REQUEST {
            failures.push(format!("GET {path}: {status} {}", &text[..text.len().min(200)]));
        } else if path.starts_with("/v1/") {
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if body["error"] != "bad_query"
                || !body["detail"].as_str().is_some_and(|d| d.contains("U+") || d.contains("limit"))
            {
                failures.push(format!("GET {path}: {text}"));
            }
        } else if !text.contains("control character") && !text.contains("limit is") {
            failures.push(format!("GET {path}: the page does not say what is wrong"));
        }
    }
    assert!(failures.is_empty(), "bad queries handled badly:\n{}", failures.join("\n"));
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    app.append_ok(&[metric(&innocent, "r-innocent", 10_000)]).await;
    app.stop().await;
}

/// Signed bytes mean one thing, and nothing stored is junk: duplicate JSON keys, signatures
/// the ledger cannot check, too many or repeated signatures, a resend whose signatures differ,
/// unbounded ids, implausible times and the wrong Content-Type are all refused with a 4xx
/// naming the problem, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_bytes_mean_one_thing() {
    let app = spawn_app().await;
    let worker = app.key("worker-1", &["worker"]).await;
    let cosigner = app.key("worker-2", &["worker"]).await;
    let dispatcher = app.key("disp", &["dispatcher"]).await;
    let stranger = assay::keyfile::generate("stranger").expect("a key");
    let data = json!({"run": "r1", "name": "x", "step": 1, "value": 1.0});
    let text = |id: &str| {
        serde_json::to_string(&event("worker-1", id, "metric.recorded", "run/r1", data.clone()))
            .expect("JSON")
    };
    let add_signature = |env: &[u8], keyid: &str, sig: &[u8]| {
        let mut v: Value = serde_json::from_slice(env).expect("JSON");
        v["signatures"]
            .as_array_mut()
            .expect("signatures")
            .push(json!({"keyid": keyid, "sig": assay_events::b64::encode_std(sig)}));
        serde_json::to_vec(&v).expect("JSON")
    };
    let cosign = |env: &[u8], key: &assay_events::keys::SignerKey| {
        let v: Value = serde_json::from_slice(env).expect("JSON");
        let payload = assay_events::b64::decode_any(v["payload"].as_str().expect("payload")).expect("base64");
        add_signature(
            env,
            &key.keyid(),
            &key.sign(&assay_events::dsse::pae(assay_events::dsse::PAYLOAD_TYPE, &payload)),
        )
    };
    let plain = signed(&worker, text("plain").into_bytes());
    let mut repeated: Value = serde_json::from_slice(&plain).expect("JSON");
    let one = repeated["signatures"][0].clone();
    repeated["signatures"] = Value::Array(vec![one; 5000]);
    let queued = serde_json::to_string(&event(
        "disp",
        "q1",
        "run.queued",
        "run/r9",
        json!({"run": "r9", "project": "p", "needs_gpu": false, "spec": {"a": {"b": 1}}}),
    ))
    .expect("JSON");
    let dated = |time: &str| {
        let mut e = event("worker-1", &format!("t-{time}"), "metric.recorded", "run/r1", data.clone());
        e["time"] = json!(time);
        signed(&worker, serde_json::to_vec(&e).expect("JSON"))
    };
    let size = app.size().await;

    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "a data key twice",
            signed(
                &worker,
                text("dup-1").replace(r#""value":1.0"#, r#""value":1.0,"value":2.0"#).into_bytes(),
            ),
            400,
            "bad_event",
            "duplicate key /data/value",
        ),
        (
            "a top-level key twice",
            signed(&worker, text("dup-2").replacen('{', r#"{"id":"other","#, 1).into_bytes()),
            400,
            "bad_event",
            "duplicate key /id",
        ),
        (
            "a nested key twice",
            signed(&dispatcher, queued.replace(r#""b":1"#, r#""b":1,"b":2"#).into_bytes()),
            400,
            "bad_event",
            "duplicate key /data/spec/a/b",
        ),
        (
            "envelopes twice in a batch",
            format!(
                r#"{{"envelopes":[{}],"envelopes":[{}]}}"#,
                String::from_utf8_lossy(&plain),
                String::from_utf8_lossy(&signed(&worker, text("dup-3").into_bytes()))
            )
            .into_bytes(),
            400,
            "malformed_json",
            "duplicate key /envelopes",
        ),
        (
            "a dataschema naming another type's schema",
            {
                let mut e = event("worker-1", "ds-1", "metric.recorded", "run/r1", data.clone());
                e["dataschema"] = json!("https://assay.dev/schemas/events/run.queued.json");
                signed(&worker, serde_json::to_vec(&e).expect("JSON"))
            },
            400,
            "bad_event",
            "https://assay.dev/schemas/events/metric.recorded.json",
        ),
        (
            "a garbage signature by an unknown key",
            add_signature(&plain, "nobody+00000000", &[0; 64]),
            401,
            "unknown_key",
            "nobody+00000000",
        ),
        (
            "a garbage signature by a registered key",
            add_signature(&plain, &cosigner.keyid(), &[0; 64]),
            401,
            "bad_signature",
            "worker-2",
        ),
        (
            "a valid signature by an unregistered key",
            cosign(&plain, &stranger),
            401,
            "unknown_key",
            "stranger",
        ),
        (
            "one signature 5000 times",
            serde_json::to_vec(&repeated).expect("JSON"),
            400,
            "bad_envelope",
            "5000 signatures; the limit is 8",
        ),
        (
            "one signature twice",
            {
                let mut v: Value = serde_json::from_slice(&plain).expect("JSON");
                let s = v["signatures"][0].clone();
                v["signatures"] = json!([s.clone(), s]);
                serde_json::to_vec(&v).expect("JSON")
            },
            400,
            "bad_envelope",
            "signs twice",
        ),
        (
            "an id of 10 000 characters",
            signed(&worker, text(&"i".repeat(10_000)).into_bytes()),
            400,
            "bad_event",
            "limit is 256",
        ),
        (
            "an id of 257 characters",
            signed(&worker, text(&"i".repeat(257)).into_bytes()),
            400,
            "bad_event",
            "limit is 256",
        ),
        ("the year 0000", dated("0000-01-01T00:00:00Z"), 400, "bad_event", "1970 to 2261"),
        ("the year 9999", dated("9999-12-31T23:59:59Z"), 400, "bad_event", "1970 to 2261"),
    ];
    let mut failures = Vec::new();
    for (name, body, status, error, needle) in cases {
        let (got, body) = app.post("/v1/events", body).await;
        let detail = body["detail"].as_str().unwrap_or("");
        if got.as_u16() != status || body["error"] != error || !detail.contains(needle) {
            failures.push(format!("{name}: {got} {body}, expected {status} {error} {needle:?}"));
        }
    }
    for (content_type, path) in [
        ("application/vnd.assay.event+json", "/v1/events"),
        ("application/problem+json", "/v1/events"),
        ("application/json; charset=latin1", "/v1/events"),
        ("application/jsonx", "/v1/events"),
        ("text/json", "/v1/events"),
        ("application/vnd.assay.event+json", "/v1/dispatch"),
    ] {
        let (got, body) = app.post_raw(path, content_type, plain.clone()).await;
        if got != StatusCode::UNSUPPORTED_MEDIA_TYPE || body["error"] != "unsupported_media_type" {
            failures.push(format!("{path} as {content_type}: {got} {body}"));
        }
    }
    assert!(failures.is_empty(), "refused badly:\n{}", failures.join("\n"));
    assert_eq!(app.size().await, size, "nothing stored");

    // What is fine: application/json with charset=utf-8, a co-signature by a registered key,
    // an id of 256 characters, the years 1970 and 2261.
    let (status, body) = app.post_raw("/v1/events", "Application/JSON; charset=UTF-8", plain.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cosigned = cosign(&signed(&worker, text("cosigned").into_bytes()), &cosigner);
    app.append_ok(std::slice::from_ref(&cosigned)).await;
    app.append_ok(&[signed(&worker, text(&"i".repeat(256)).into_bytes())]).await;
    app.append_ok(&[dated("1970-01-01T00:00:00Z"), dated("2261-12-31T23:59:59Z")]).await;

    // A resend is identical only with the same payload bytes and the same signatures.
    let (status, body) = app.append(std::slice::from_ref(&plain)).await;
    assert_eq!(status, StatusCode::OK, "identical resend: {body}");
    assert_eq!(body["records"][0]["existed"], true);
    let (status, body) = app.append(std::slice::from_ref(&cosigned)).await;
    assert_eq!(status, StatusCode::OK, "identical co-signed resend: {body}");
    let size = app.size().await;
    for (name, env) in [
        ("an extra valid co-signature", cosign(&plain, &cosigner)),
        ("a co-signature dropped", signed(&worker, text("cosigned").into_bytes())),
    ] {
        let (status, body) = app.append(&[env]).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {body}");
        assert_eq!(body["error"], "conflict", "{name}");
        assert!(body["detail"].as_str().unwrap_or("").contains("other bytes"), "{name}: {body}");
    }
    // Also inside one request: the same (source, id) with other signatures.
    let fresh = signed(&worker, text("twice").into_bytes());
    let (status, body) = app.append(&[fresh.clone(), cosign(&fresh, &cosigner)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["index"], 1);
    assert_eq!(app.size().await, size, "nothing stored");
    app.stop().await;
}

/// Reads from `s` until the server closes it (EOF or a reset); the bytes read. None when it is
/// still open after `bound`.
async fn closed_within(s: &mut tokio::net::TcpStream, bound: std::time::Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| out)
}

/// Reads one response from `s` (a head and a `content-length` body): its status and the head.
async fn one_response(s: &mut tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                return (status, head);
            }
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "the server closed before a whole response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_closed_after_the_header_timeout() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let options = assay::http::ServeOptions {
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_secs(60),
        ..assay::http::ServeOptions::default()
    };
    let app = app::spawn_app_with(options).await;
    // Slowloris: a header line every 50 ms, never the blank line. The bytes keep coming, so
    // only the header timeout can end it.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").await.expect("write");
    let dribble = async {
        for i in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if slow.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
                return true; // The server closed the connection.
            }
            let mut probe = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(1), slow.peek(&mut probe)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {
                    let rest = closed_within(&mut slow, Duration::from_secs(10)).await.expect("then closed");
                    let text = String::from_utf8_lossy(&rest).to_string();
                    assert!(!text.starts_with("HTTP/1.1 200"), "no answer to a head never finished: {text}");
                    return true;
                }
                Err(_) => {}
            }
        }
        false
    };
    assert!(dribble.await, "a slowloris connection is closed within 10 s (header timeout 400 ms)");

    // A connection that never says anything.
    let mut silent = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let got = closed_within(&mut silent, Duration::from_secs(10)).await;
    assert!(got.is_some(), "a silent connection is closed within 10 s (header timeout 400 ms)");

    // Requests that arrive whole are served.
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let options = assay::http::ServeOptions {
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_millis(400),
        ..assay::http::ServeOptions::default()
    };
    let app = app::spawn_app_with(options).await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    // Two requests on one keep-alive connection, then silence.
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
        let (status, head) = one_response(&mut s).await;
        assert_eq!(status, 200, "{head}");
        assert!(!head.contains("connection: close"), "kept alive: {head}");
    }
    let rest = closed_within(&mut s, Duration::from_secs(10)).await;
    let rest = rest.expect("an idle keep-alive connection is closed within 10 s (idle timeout 400 ms)");
    assert!(rest.is_empty(), "nothing more was sent: {}", String::from_utf8_lossy(&rest));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_503_with_retry_after() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    const CAP: usize = 3;
    let options = assay::http::ServeOptions {
        connections_max: CAP,
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..assay::http::ServeOptions::default()
    };
    let app = app::spawn_app_with(options).await;
    // CAP keep-alive connections, each served once (so the server holds all of them).
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
        assert_eq!(one_response(&mut s).await.0, 200);
        held.push(s);
    }
    // One more: 503, Retry-After, a JSON error; the connection is closed.
    let fresh = || reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client");
    let r = fresh().get(app.url("/healthz")).send().await.expect("an answer, not a reset");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(r.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json")));
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["error"], "too_many_connections", "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains(&CAP.to_string())), "{body}");
    // A raw client that sends its request gets the same answer.
    let (status, body) = raw(app.addr, "GET /v1/checkpoint HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("too_many_connections")));

    // Once connections close, the server takes new ones again.
    drop(held);
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = fresh().get(app.url("/healthz")).send().await
            && r.status() == StatusCode::OK
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "/healthz answers 200 again within 10 s of the connections closing");
    let (status, metrics) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("assay_http_connections_refused_total "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(refused.is_some_and(|n| n >= 2), "{metrics}");
    app.stop().await;
}

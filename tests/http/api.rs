//! Every endpoint of the HTTP service against the real server on a fresh ledger: appends
//! (single, batch, resend, conflict), reads, proofs verified with the `events` crate against
//! the served checkpoint, projections and their digests, the dispatch gate, operations; the
//! `/metrics` gauges on the demo ledger against `/v1`, its request counters by route template,
//! and its two text formats (checked line by line, and by Python's prometheus_client parsers
//! when installed: required under CI=true); and a full disk (a small tmpfs, where mounting one
//! is allowed): appends and /healthz answer 503 while it lasts, and once space returns appends
//! succeed again with nothing acknowledged lost.

use crate::support::demo;
use crate::support::http as app;

use app::{acks, envelope, metric, spawn_app};
use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use assay_events::dsse::Envelope;
use assay_events::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use assay_events::record::Record;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn b64(s: &str) -> Vec<u8> {
    assay_events::b64::decode_any(s).expect("base64")
}

fn hash(s: &str) -> Hash32 {
    Hash32::from_slice(&b64(s)).expect("32 bytes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_resend_conflict_and_read() {
    let app = spawn_app().await;
    let worker = app.key("worker-1", &["worker"]).await;
    let start = app.size().await;

    // One envelope, not in a batch.
    let one = metric(&worker, "r1", 0);
    let (status, body) = app.post("/v1/events", one.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(acks(&body), vec![(start, acks(&body)[0].1.clone())]);
    let cp = Checkpoint::open(body["checkpoint"].as_str().expect("checkpoint"), &app.ledger_key.verifier())
        .expect("the checkpoint is signed by the ledger");
    assert_eq!(cp.size, start + 1, "the checkpoint covers the record");

    // A batch: consecutive seqs, in order.
    let batch: Vec<Vec<u8>> = (1..=5).map(|s| metric(&worker, "r1", s)).collect();
    let first = app.append_ok(&batch).await;
    assert_eq!(first.iter().map(|a| a.0).collect::<Vec<_>>(), (start + 1..start + 6).collect::<Vec<_>>());

    // An identical resend: 200, the same records, nothing new.
    let (status, body) = app.append(&batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(acks(&body), first);
    assert!(body["records"].as_array().expect("records").iter().all(|r| r["existed"] == true));
    assert_eq!(app.size().await, start + 6);

    // (source, id) with other bytes: 409, nothing stored.
    let key = |v: f64| {
        assay::ledger::build_envelope(
            &worker,
            "metric.recorded",
            Some("run/r1"),
            json!({"run": "r1", "name": "x", "step": 1, "value": v}),
            Some("fixed-id".to_owned()),
            assay::clock::now_ns(),
        )
        .to_json()
    };
    app.append_ok(&[key(1.0)]).await;
    let (status, body) = app.append(&[key(2.0)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");
    assert_eq!(app.size().await, start + 7);

    // Pages follow `next` to the end and cover every seq once.
    let size = app.size().await;
    let mut seen = Vec::new();
    let mut from = Some(0u64);
    while let Some(f) = from {
        let (status, page) = app.get(&format!("/v1/events?from={f}&limit=3")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let records = page["records"].as_array().expect("records");
        assert!(records.len() <= 3);
        seen.extend(records.iter().map(|r| r["seq"].as_u64().expect("seq")));
        from = page["next"].as_u64();
    }
    assert_eq!(seen, (0..size).collect::<Vec<_>>());

    // Filters.
    let (_, page) = app.get("/v1/events?type=metric.recorded&limit=1000").await;
    let metrics = page["records"].as_array().expect("records");
    assert_eq!(metrics.len(), 7);
    assert!(metrics.iter().all(|r| r["type"] == "metric.recorded" && r["subject"] == "run/r1"));
    assert!(page["next"].is_null());
    let (_, page) = app.get("/v1/events?subject=key/worker-1").await;
    assert_eq!(page["records"].as_array().expect("records").len(), 1);

    // By digest: the record fields, the event and the envelope as posted.
    let (seq, digest) = first[2].clone();
    let (status, record) = app.get(&format!("/v1/events/{digest}")).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["seq"], seq);
    assert_eq!(record["digest"], digest.as_str());
    let posted: Value = serde_json::from_slice(&batch[2]).expect("JSON");
    assert_eq!(record["envelope"], posted, "the envelope comes back verbatim");
    assert_eq!(record["event"]["data"]["step"], 3);
    let (status, body) = app.get(&format!("/v1/events/{}", "0".repeat(64))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_verify_against_served_checkpoints() {
    let app = spawn_app().await;
    let worker = app.key("worker-1", &["worker"]).await;
    for b in 0..3 {
        let batch: Vec<Vec<u8>> = (0..7).map(|s| metric(&worker, "r1", b * 10 + s)).collect();
        app.append_ok(&batch).await;
    }
    let vkey = app.ledger_key.verifier();
    let (status, note_a) = app.get_text("/v1/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let a = Checkpoint::open(&note_a, &vkey).expect("checkpoint A opens with the ledger key");
    assert_eq!(a.size, app.size().await);

    // Every record: the leaf rebuilt from the served record JSON is the proven leaf, and the
    // proof leads to A's root.
    let (_, page) = app.get("/v1/events?limit=1000").await;
    let records = page["records"].as_array().expect("records");
    let mut prev = Hash32::ZERO;
    for (seq, r) in records.iter().enumerate() {
        let seq = seq as u64;
        let (status, p) = app.get(&format!("/v1/proof/inclusion?seq={seq}&size={}", a.size)).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert_eq!(p["checkpoint"], note_a.as_str());
        let leaf = b64(p["leaf"].as_str().expect("leaf"));
        assert_eq!(leaf_hash(&leaf), hash(p["leaf_hash"].as_str().expect("leaf_hash")));
        let proof: Vec<Hash32> =
            p["proof"].as_array().expect("proof").iter().map(|h| hash(h.as_str().expect("hash"))).collect();
        verify_inclusion(seq, a.size, &leaf_hash(&leaf), &proof, &a.root).expect("inclusion verifies");

        let env = Envelope::parse(r["envelope"].to_string().as_bytes()).expect("envelope");
        let received = chrono::DateTime::parse_from_rfc3339(r["received_at"].as_str().expect("received_at"))
            .expect("RFC 3339")
            .timestamp_nanos_opt()
            .expect("in range");
        let rebuilt = Record::new(seq, received, env.payload, env.signatures, prev).expect("record");
        assert_eq!(rebuilt.leaf().to_vec(), leaf, "the served record is the proven leaf (seq {seq})");
        prev = rebuilt.record_hash;
    }
    // The default size is the latest checkpoint.
    let (_, p) = app.get("/v1/proof/inclusion?seq=0").await;
    assert_eq!(p["tree_size"], a.size);

    // The log grows; the later checkpoint is consistent with the earlier one.
    app.append_ok(&(0..5).map(|s| metric(&worker, "r2", s)).collect::<Vec<_>>()).await;
    app.append_ok(&[metric(&worker, "r2", 9)]).await;
    let (_, note_b) = app.get_text("/v1/checkpoint").await;
    let b = Checkpoint::open(&note_b, &vkey).expect("checkpoint B opens");
    assert!(b.size > a.size);
    let (status, c) = app.get(&format!("/v1/proof/consistency?old={}&new={}", a.size, b.size)).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["checkpoint"], note_b.as_str());
    assert_eq!(hash(c["old_root"].as_str().expect("old_root")), a.root);
    assert_eq!(hash(c["new_root"].as_str().expect("new_root")), b.root);
    let proof: Vec<Hash32> =
        c["proof"].as_array().expect("proof").iter().map(|h| hash(h.as_str().expect("hash"))).collect();
    verify_consistency(a.size, b.size, &a.root, &b.root, &proof).expect("consistency verifies");
    // A root the server did not sign does not verify.
    assert!(verify_consistency(a.size, b.size, &Hash32::ZERO, &b.root, &proof).is_err());
    app.stop().await;
}

/// Polls until the live projections have folded everything stored.
async fn settled(app: &app::App, path: &str) -> Value {
    let want = app.size().await - 1;
    for _ in 0..200 {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if body["seq"].as_u64() == Some(want) {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{path} never reached seq {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_dispatch_and_operations() {
    let app = spawn_app().await;
    let dispatcher = app.key("dispatcher-1", &["dispatcher"]).await;
    let worker = app.key("node-1", &["worker"]).await;
    let queued = |run: &str| {
        envelope(
            &dispatcher,
            "run.queued",
            &format!("run/{run}"),
            json!({"run": run, "project": "p", "needs_gpu": true, "spec": {"command": ["true"]}}),
        )
    };
    app.append_ok(&[queued("r-1"), queued("r-2")]).await;
    let preflight = envelope(
        &worker,
        "worker.preflight",
        "worker/node-1",
        json!({"worker": "node-1", "healthy": true, "checks": [{"name": "nvml", "ok": true}], "gpus": ["0000:01:00.0"]}),
    );
    app.append_ok(&[preflight]).await;

    // The gate: the first request takes the lane, the second is refused with reasons.
    let request = |run: &str| {
        envelope(
            &dispatcher,
            "dispatch.requested",
            &format!("run/{run}"),
            json!({"run": run, "worker": "node-1", "gpu": "0000:01:00.0"}),
        )
    };
    let first = request("r-1");
    let (status, d) = app.post("/v1/dispatch", first.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(d["accepted"], true, "{d}");
    assert_eq!(d["decision"]["type"], "dispatch.decided");
    assert_eq!(d["decision"]["seq"].as_u64(), d["request"]["seq"].as_u64().map(|s| s + 1));
    assert_eq!(d["decision"]["event"]["data"]["request"], d["request"]["digest"]);
    let (status, d2) = app.post("/v1/dispatch", request("r-2")).await;
    assert_eq!(status, StatusCode::CREATED, "{d2}");
    assert_eq!(d2["accepted"], false, "{d2}");
    assert!(!d2["reasons"].as_array().expect("reasons").is_empty());
    let (status, again) = app.post("/v1/dispatch", first).await;
    assert_eq!(status, StatusCode::OK, "an identical resend: {again}");
    assert_eq!(
        again["request"],
        d["request"]
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.insert("existed".into(), json!(true));
                Value::Object(o)
            })
            .expect("request")
    );
    assert_eq!(again["decision"]["seq"], d["decision"]["seq"]);
    let size = app.size().await;
    let (status, body) = app.post("/v1/dispatch", metric(&worker, "r-1", 1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "not_a_dispatch_request");
    assert_eq!(app.size().await, size, "nothing stored");

    // Projections: live, with digests that are blake3 of the canonical state served, and the
    // same as a replay of the store.
    let replayed = assay::replay::replay(&app.store, None, |_, _| {}).await.expect("replay");
    for (path, name) in [
        ("/v1/queue", "queue"),
        ("/v1/gpus", "gpus"),
        ("/v1/audit", "verdicts"),
        ("/v1/projections/keys", "keys"),
        ("/v1/projections/corpus", "corpus"),
        ("/v1/projections/kernels", "kernels"),
        ("/v1/projections/audit", "audit"),
    ] {
        let body = settled(&app, path).await;
        let canonical = assay_projections::canon::canonical_string(&body["state"]);
        assert_eq!(
            body["digest"],
            Hash32::blake3(canonical.as_bytes()).to_hex(),
            "{path}: digest of the state"
        );
        assert_eq!(
            body["digest"],
            replayed.digest(name.parse().expect("a projection")).to_hex(),
            "{path}: same as a replay"
        );
    }
    let queue = settled(&app, "/v1/queue").await;
    assert!(queue["state"].to_string().contains("r-1"), "{queue}");
    let audit = settled(&app, "/v1/audit").await;
    assert!(audit["state"]["headline"].as_str().is_some(), "{audit}");

    // ?at=SEQ replays: the keys projection at genesis has the ledger and admin keys only.
    let (status, at0) = app.get("/v1/projections/keys?at=0").await;
    assert_eq!(status, StatusCode::OK, "{at0}");
    assert_eq!(at0["seq"], 0);
    let (_, now) = app.get("/v1/projections/keys").await;
    assert_ne!(at0["digest"], now["digest"]);
    let (status, at_head) = app.get(&format!("/v1/queue?at={}", app.size().await - 1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(at_head["digest"], queue["digest"]);
    let (status, body) = app.get("/v1/projections/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app.get("/v1/audit/no-such-artifact").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Operations.
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["origin"], app::ORIGIN);
    let bad = {
        let mut e: Value = serde_json::from_slice(&metric(&worker, "r-1", 2)).expect("JSON");
        let other: Value = serde_json::from_slice(&metric(&worker, "r-1", 3)).expect("JSON");
        e["signatures"] = other["signatures"].clone();
        serde_json::to_vec(&e).expect("JSON")
    };
    let (status, _) = app.post("/v1/events", bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "assay_appended_records_total",
        "assay_batch_records_bucket",
        "assay_batch_commit_seconds_bucket",
        "assay_rejections_total{reason=\"bad_signature\"} 1",
        "assay_append_requests_total{result=\"committed\"}",
        "assay_stream_subscribers",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }

    // The OpenAPI document names every route.
    let (status, doc) = app.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for (path, method) in [
        ("/v1/events", "post"),
        ("/v1/events", "get"),
        ("/v1/events/{digest}", "get"),
        ("/v1/stream", "get"),
        ("/v1/checkpoint", "get"),
        ("/checkpoint", "get"),
        ("/v1/proof/inclusion", "get"),
        ("/v1/proof/consistency", "get"),
        ("/v1/projections/{name}", "get"),
        ("/v1/audit", "get"),
        ("/v1/audit/{slug}", "get"),
        ("/v1/queue", "get"),
        ("/v1/gpus", "get"),
        ("/v1/campaigns/{run}", "get"),
        ("/v1/campaigns/{run}/diff", "get"),
        ("/v1/dispatch", "post"),
        ("/v1/blobs/{blake3}", "put"),
        ("/v1/blobs/{blake3}", "get"),
        ("/v1/blobs/{blake3}", "head"),
        ("/v1/blobs/gc", "post"),
        ("/v1/audit/{slug}/bundle", "get"),
        ("/v1/openapi.json", "get"),
        ("/metrics", "get"),
        ("/healthz", "get"),
    ] {
        assert!(doc["paths"][path][method]["responses"].is_object(), "openapi lacks {method} {path}");
        // Any route may meet the connection cap.
        let unavailable = &doc["paths"][path][method]["responses"]["503"];
        assert!(
            unavailable["description"].as_str().is_some_and(|d| d.contains("too_many_connections")),
            "openapi: {method} {path} does not say it may answer 503 too_many_connections: {unavailable}"
        );
    }
    for schema in [
        "ErrorBody",
        "Envelope",
        "AppendResponse",
        "Record",
        "EventsPage",
        "InclusionProof",
        "ConsistencyProof",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "openapi lacks schema {schema}");
    }
    let bundle = doc["paths"]["/v1/audit/{slug}/bundle"]["get"]["parameters"].as_array().expect("parameters");
    assert!(bundle.iter().any(|p| p["name"] == "with_evidence" && p["in"] == "query"), "{bundle:?}");
    // The bounds the ledger enforces are the documented ones.
    let envelope = &doc["components"]["schemas"]["Envelope"]["properties"];
    assert_eq!(envelope["signatures"]["maxItems"], assay_events::dsse::SIGNATURES_MAX, "{envelope}");
    let keyid = &doc["components"]["schemas"]["Signature"]["properties"]["keyid"];
    assert_eq!(keyid["maxLength"], assay_events::text::KEYID_CHARS_MAX, "{keyid}");
    let params = doc["paths"]["/v1/events"]["get"]["parameters"].as_array().expect("parameters");
    for (name, max) in
        [("type", assay_events::text::TYPE_CHARS_MAX), ("subject", assay_events::text::SUBJECT_CHARS_MAX)]
    {
        let p = params.iter().find(|p| p["name"] == name).expect("the parameter");
        assert_eq!(p["schema"]["maxLength"], max, "{p}");
        assert_eq!(p["schema"]["pattern"], "^[^\\x00-\\x1f\\x7f-\\x9f]*$", "{p}");
    }
    app.stop().await;
}

/// The content type, the body, and the status of `GET /metrics` with `accept` (none: no header).
async fn scrape(http: &reqwest::Client, base: &str, accept: Option<&str>) -> (String, String) {
    let mut request = http.get(format!("{base}/metrics"));
    if let Some(a) = accept {
        request = request.header("accept", a);
    }
    let r = request.send().await.expect("GET /metrics");
    assert_eq!(r.status(), StatusCode::OK);
    let ty = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (ty, r.text().await.expect("a body"))
}

/// The value of the sample `name{labels}` (labels exactly as written, `""` for none).
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() { format!("{name} ") } else { format!("{name}{{{labels}}} ") };
    text.lines().find_map(|l| l.strip_prefix(&key)).map(|v| v.trim().parse::<f64>().expect("a number"))
}

/// Checks the Prometheus text format 0.0.4 (`openmetrics: false`) or OpenMetrics 1.0 line by
/// line: every sample belongs to the family its `# TYPE` line names (0.0.4: a counter's TYPE
/// names its `_total` samples; OpenMetrics: the family without `_total`), names and label
/// sets are well formed, values are numbers, and only OpenMetrics ends with `# EOF`.
fn check_format(text: &str, openmetrics: bool) {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            && !n.as_bytes()[0].is_ascii_digit()
    };
    let mut family: Option<(String, String)> = None;
    let mut types = std::collections::BTreeSet::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last() == Some(&"# EOF"), openmetrics, "# EOF ends OpenMetrics only:\n{text}");
    for line in &lines {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(name_ok(name), "{line}");
            let kinds: &[&str] = if openmetrics {
                &["counter", "gauge", "histogram", "unknown"]
            } else {
                &["counter", "gauge", "histogram", "untyped"]
            };
            assert!(kinds.contains(&kind), "{line}");
            if kind == "counter" {
                assert_eq!(name.ends_with("_total"), !openmetrics, "a counter's TYPE name: {line}");
            }
            assert!(types.insert(name.to_owned()), "one TYPE line per family: {line}");
            family = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        if *line == "# EOF" {
            continue;
        }
        assert!(!line.starts_with('#'), "0.0.4 has no {line}");
        assert!(openmetrics || !line.starts_with("# UNIT"), "{line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample: name value");
        assert!(
            value == "+Inf" || value == "-Inf" || value == "NaN" || value.parse::<f64>().is_ok(),
            "{line}"
        );
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "{line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}')).expect("{labels}");
            for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("label k=\"v\": {line}"));
                assert!(name_ok(k) && !v.contains('\n'), "{line}");
            }
        }
        let (fam, kind) = family.as_ref().unwrap_or_else(|| panic!("a sample before any TYPE: {line}"));
        let suffixes: &[&str] = match (kind.as_str(), openmetrics) {
            ("histogram", _) => &["_bucket", "_sum", "_count"],
            ("counter", true) => &["_total", "_created"],
            _ => &[""],
        };
        assert!(
            suffixes.iter().any(|s| name == format!("{fam}{s}")),
            "{name} is not a sample of the family {fam} ({kind}) its TYPE line names"
        );
    }
}

/// Parses both formats with Python's prometheus_client (its 0.0.4 and its strict OpenMetrics
/// parser); skipped without it, except under CI=true.
fn python_parses(text: &str, openmetrics: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("metrics.txt"), dir.path().join("metrics.om"));
    std::fs::write(&a, text).unwrap();
    std::fs::write(&b, openmetrics).unwrap();
    let script = r#"
import sys
try:
    from prometheus_client.parser import text_string_to_metric_families as text
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
except ImportError as e:
    print("missing:", e); sys.exit(3)
a = list(text(open(sys.argv[1]).read()))
b = list(om(open(sys.argv[2]).read()))
assert {f.name for f in a} == {f.name for f in b}, (sorted(f.name for f in a), sorted(f.name for f in b))
assert all(f.type != "unknown" for f in a), [f.name for f in a if f.type == "unknown"]
print(len(a), "families")
"#;
    let run = std::process::Command::new("python3").arg("-c").arg(script).arg(&a).arg(&b).output();
    match run {
        Ok(o)
            if o.status.code() == Some(3)
                || !o.status.success() && o.stdout.is_empty() && o.stderr.is_empty() =>
        {
            assert!(!ci, "CI=true: python3 -m pip install prometheus_client");
            eprintln!("skipped the Python parse: {}", String::from_utf8_lossy(&o.stdout));
        }
        Ok(o) => assert!(
            o.status.success(),
            "prometheus_client refused /metrics:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            assert!(!ci, "CI=true: python3 cannot be run: {e}");
            eprintln!("skipped the Python parse: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_in_the_format_asked_for() {
    let app = spawn_app().await;
    let worker = app.key("worker-1", &["worker"]).await;
    let acked = app.append_ok(&[metric(&worker, "r-m", 0), metric(&worker, "r-m", 1)]).await;
    let (_, before) = scrape(&app.http, &app.url, None).await;
    let route = r#"route="/v1/events/{digest}",method="GET",status="200""#;
    let count = |text: &str, labels: &str| sample(text, "assay_http_requests_total", labels).unwrap_or(0.0);
    for (_, digest) in &acked {
        let (status, _) = app.get(&format!("/v1/events/{digest}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app.get("/no/such/path").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get_text("/runs/no-such-run").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (ty, after) = scrape(&app.http, &app.url, None).await;
    assert_eq!(ty, "text/plain; version=0.0.4; charset=utf-8", "no Accept: the text format");
    assert_eq!(
        count(&after, route) - count(&before, route),
        2.0,
        "two reads of one route template:\n{after}"
    );
    let unmatched = r#"route="unmatched",method="GET",status="404""#;
    assert_eq!(count(&after, unmatched) - count(&before, unmatched), 1.0, "{after}");
    assert_eq!(count(&after, r#"route="/runs/{*id}",method="GET",status="404""#), 1.0, "{after}");
    assert!(
        sample(&after, "assay_http_request_duration_seconds_count", route).is_some_and(|n| n >= 2.0),
        "the latency histogram by the same labels:\n{after}"
    );
    // Label values are route templates, never raw paths.
    for (_, digest) in &acked {
        assert!(!after.contains(digest.as_str()), "a raw path became a label:\n{after}");
    }
    assert!(!after.contains("/no/such/path") && !after.contains("no-such-run"), "{after}");

    // The format follows Accept.
    let (ty, text) = scrape(&app.http, &app.url, Some("text/plain;version=0.0.4")).await;
    assert_eq!(ty, "text/plain; version=0.0.4; charset=utf-8");
    check_format(&text, false);
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (ty, om) = scrape(&app.http, &app.url, Some(prometheus)).await;
    assert_eq!(ty, "application/openmetrics-text; version=1.0.0; charset=utf-8", "what Prometheus asks for");
    check_format(&om, true);
    assert!(text.contains("# TYPE assay_http_requests_total counter\n"), "{text}");
    assert!(om.contains("# TYPE assay_http_requests counter\n"), "{om}");
    let (ty, _) = scrape(&app.http, &app.url, Some("*/*")).await;
    assert_eq!(ty, "text/plain; version=0.0.4; charset=utf-8");
    python_parses(&text, &om);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_gauges_of_the_demo_are_what_v1_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, printed) = demo::serve_copy(&dir.path().join("lab"));
    let url = demo::url(&printed).to_owned();
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(format!("{url}{path}")).send().await.expect("GET");
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            r.json::<Value>().await.expect("JSON")
        }
    };
    let audit = get("/v1/audit").await["state"].clone();
    let gpus = get("/v1/gpus").await["state"]["devices"].clone();
    let size = get("/healthz").await["size"].as_f64().unwrap();
    let (_, text) = scrape(&http, &url, None).await;
    check_format(&text, false);

    assert_eq!(sample(&text, "assay_tree_size_records", ""), Some(size), "{text}");
    let resets = gpus.as_object().unwrap().values().filter(|d| d["needs_reset"] == true).count();
    assert!(resets > 0, "the demo has a GPU that needs a reset");
    assert_eq!(sample(&text, "assay_gpus_needing_reset", ""), Some(resets as f64), "{text}");
    let artifacts = audit["artifacts"].as_array().unwrap();
    let failing = artifacts.iter().filter(|a| a["passes"] == false).count();
    assert_eq!(
        sample(&text, "assay_artifacts", r#"audit="pass""#),
        audit["artifacts_passing"].as_f64(),
        "{text}"
    );
    assert_eq!(sample(&text, "assay_artifacts", r#"audit="fail""#), Some(failing as f64), "{text}");
    assert!(failing > 0 && audit["artifacts_passing"].as_u64() > Some(0), "the demo has both");
    // The demo's last checkpoint was signed as it finished building, a moment ago.
    let age = sample(&text, "assay_checkpoint_age_seconds", "").expect("the checkpoint age");
    assert!((0.0..600.0).contains(&age), "checkpoint age {age} s");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, later) = scrape(&http, &url, None).await;
    let older = sample(&later, "assay_checkpoint_age_seconds", "").unwrap();
    assert!(older >= age + 1.0, "the age grows while nothing is appended: {age} then {older}");

    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success(), "graceful stop");
}

/// A tmpfs of a few MiB mounted on a temporary folder, unmounted on drop (whatever the test
/// did). Mounting needs root (CI runs as root); elsewhere the test is skipped, saying so,
/// except under `CI=true`, where it must run.
struct Tmpfs {
    dir: std::path::PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().expect("a temporary folder");
        let dir = parent.path().join("tmpfs");
        std::fs::create_dir(&dir).expect("a mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .output();
        let why = match mounted {
            Ok(out) if out.status.success() => return Some(Tmpfs { dir, _parent: parent }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the full-disk test must run, but mount failed: {why}"
        );
        eprintln!("skipped: cannot mount a tmpfs here ({why}); run as root to test a full disk");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount").arg(&self.dir).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Still busy (a test that failed midway): detach it now, freed once unused.
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Fills the file system holding `dir` to its last byte; the filler's path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("the filler");
    for chunk in [64 * 1024, 512, 1] {
        let bytes = vec![0xa5u8; chunk];
        loop {
            match file.write(&bytes) {
                Ok(n) if n == chunk => {}
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling: {e}"),
            }
        }
    }
    path
}

/// POST /v1/events: the status, Retry-After, and the JSON body.
async fn append_raw(app: &app::App, envelopes: &[Vec<u8>]) -> (StatusCode, Option<String>, Value) {
    let r = app
        .http
        .post(app.url("/v1/events"))
        .header("content-type", "application/json")
        .body(app::batch(envelopes))
        .send()
        .await
        .expect("POST");
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (r.status(), retry, r.json().await.unwrap_or(Value::Null))
}

/// /healthz: the status and Retry-After.
async fn health(app: &app::App) -> (StatusCode, Option<String>) {
    let r = app.http.get(app.url("/healthz")).send().await.expect("GET /healthz");
    (r.status(), r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// A full disk: appends fail with 503 and /healthz says 503 for as long as it lasts (reading
/// still works, so a rebuild from the store does not make the server look healthy); once space
/// returns, /healthz is 200 again without any append, appends succeed, every acknowledged
/// record is in the log and `assay verify` passes. Before the fix, a commit that failed on the
/// full disk left its connection counted inside a transaction and every later batch failed,
/// for good, while /healthz said 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_appends_until_space_returns() {
    use std::time::Duration;
    let Some(tmpfs) = Tmpfs::mount(8 << 20) else { return };
    let path = tmpfs.dir.join("ledger.db");
    let ledger_options = assay::ledger::LedgerOptions {
        // As `assay serve` runs: following the store, which is also what rebuilds after a
        // failed batch and probes whether writes work again.
        follow_poll_ms: Some(100),
        keep_opened_state: true,
        ..assay::ledger::LedgerOptions::default()
    };
    let app = app::spawn_app_on(
        tempfile::tempdir().expect("a folder"),
        app::store::TestDb::sqlite_at(&path),
        ledger_options,
        assay::http::ServeOptions::default(),
    )
    .await;
    let worker = app.key("worker-1", &["worker"]).await;
    let mut step = 0;
    let mut batch_of = |n: u64| {
        let envelopes: Vec<Vec<u8>> = (step..step + n).map(|i| metric(&worker, "r-full", i)).collect();
        step += n;
        envelopes
    };
    let mut acked: Vec<String> = app.append_ok(&batch_of(20)).await.into_iter().map(|(_, d)| d).collect();
    let size_before = app.size().await;

    let filler = fill(&tmpfs.dir);
    // More failed batches than the store has connections: each one's connection must be reset.
    for attempt in 0..12 {
        let (status, retry, body) = append_raw(&app, &batch_of(200)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "append {attempt} on a full disk: {body}");
        assert_eq!(retry.as_deref(), Some("1"), "append {attempt}: Retry-After");
        assert!(body["error"].is_string() && body["detail"].is_string(), "{body}");
    }
    // For as long as appends fail, /healthz says so (the follower rebuilds and probes meanwhile).
    for _ in 0..10 {
        let (status, retry) = health(&app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/healthz while the disk is full");
        assert_eq!(retry.as_deref(), Some("1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, _) = append_raw(&app, &batch_of(200)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "still full");
    assert_eq!(app.size().await, size_before, "nothing of a failed batch is stored");

    // Space returns: health comes back by itself, then appends succeed.
    std::fs::remove_file(&filler).expect("freeing the space");
    let mut healthy = false;
    for _ in 0..100 {
        if health(&app).await.0 == StatusCode::OK {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "/healthz is 200 within 10 s of the space returning");
    for _ in 0..12 {
        acked.extend(app.append_ok(&batch_of(50)).await.into_iter().map(|(_, d)| d));
    }
    // Nothing acknowledged is lost.
    for digest in &acked {
        let (status, body) = app.get(&format!("/v1/events/{digest}")).await;
        assert_eq!(status, StatusCode::OK, "acknowledged {digest} is in the log: {body}");
    }
    assert_eq!(app.size().await, size_before + 12 * 50);
    let db = app.db.clone();
    app.stop().await;
    let (code, out, err) = app::assay_cli(&["verify", "--db", &db]);
    assert_eq!(code, 0, "assay verify after the full disk: {out}{err}");
    drop(tmpfs);
}

//! `GET /v1/campaigns/{run}` and `GET /v1/campaigns/{run}/diff?base=RUN` on the real server:
//! a run's cells, the diff's classes and counts, run ids holding `/`, 404 for unknown runs,
//! 400 for bad ids and a missing `base`, 401 without a token beyond loopback, and both routes
//! in the API description.

use crate::support::http as app;

use std::net::SocketAddr;

use app::{envelope, metric, spawn_app, spawn_app_with};
use assay::http::ServeOptions;
use assay_events::keys::SignerKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn completed(key: &SignerKey, run: &str, kernel: &str, n: u64, passed: bool) -> Vec<u8> {
    let digest = "ab".repeat(32);
    envelope(
        key,
        "kernel.launch.completed",
        &format!("run/{run}"),
        json!({"run": run, "kernel": kernel, "variant": {"n": n, "dtype": "f32"}, "backend": "cpu",
               "device": "cpu", "grid": [1, 1, 1], "block": [1, 1, 1], "duration_us": 40 + n,
               "input_digest": digest, "output_digest": digest, "reference_digest": digest,
               "max_abs_err": if passed { 0.0 } else { 0.5 }, "tolerance": 1e-3, "passed": passed}),
    )
}

fn faulted(key: &SignerKey, run: &str, kernel: &str, n: u64, error: &str) -> Vec<u8> {
    envelope(
        key,
        "kernel.launch.faulted",
        &format!("run/{run}"),
        json!({"run": run, "kernel": kernel, "variant": {"dtype": "f32", "n": n}, "backend": "cpu",
               "error": error, "sticky": false}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_diffs_and_errors() {
    let app = spawn_app().await;
    let runner = app.key("runner", &["runner"]).await;
    let worker = app.key("worker-1", &["worker"]).await;
    app.append_ok(&[
        completed(&runner, "r1", "saxpy", 1, true),
        completed(&runner, "r1", "saxpy", 2, true),
        completed(&runner, "r1", "saxpy", 3, false),
        completed(&runner, "r1", "gemm", 1, true),
        completed(&runner, "r2", "saxpy", 1, true),
        completed(&runner, "r2", "saxpy", 2, false),
        completed(&runner, "r2", "saxpy", 3, true),
        faulted(&runner, "r2", "gemm", 1, "CUDA_ERROR_ILLEGAL_ADDRESS"),
        completed(&runner, "lab/r3", "saxpy", 9, true),
        metric(&worker, "m1", 0),
    ])
    .await;

    let (status, body) = app.get("/v1/campaigns/r2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run"], "r2");
    let cells = body["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 4, "{body}");
    // Sorted by kernel, then variant; the variant's keys sorted.
    assert_eq!(cells[0]["kernel"], "gemm");
    assert_eq!(cells[0]["outcome"], "faulted");
    assert_eq!(cells[0]["error"], "CUDA_ERROR_ILLEGAL_ADDRESS");
    assert_eq!(serde_json::to_string(&cells[0]["variant"]).expect("JSON"), r#"{"dtype":"f32","n":1}"#);
    assert_eq!(cells[1]["outcome"], "passed");
    assert_eq!(cells[1]["duration_us"], 41);
    assert_eq!(cells[2]["outcome"], "failed");

    let (status, d) = app.get("/v1/campaigns/r2/diff?base=r1").await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!((d["base"].as_str(), d["new"].as_str()), (Some("r1"), Some("r2")));
    assert_eq!(
        d["counts"],
        json!({"unchanged": 1, "fixed": 1, "regressed": 1, "newly_faulted": 1, "gone": 0, "new": 0}),
        "{d}"
    );
    let classes: Vec<(&str, u64, &str)> = d["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            (
                c["kernel"].as_str().unwrap_or(""),
                c["variant"]["n"].as_u64().unwrap_or(0),
                c["class"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        classes,
        vec![
            ("gemm", 1, "newly_faulted"),
            ("saxpy", 1, "unchanged"),
            ("saxpy", 2, "regressed"),
            ("saxpy", 3, "fixed")
        ]
    );
    assert_eq!(
        d["cells"][1]["timing"],
        json!({"change": "no_spread", "ratio": 1.0, "base_us": 41, "new_us": 41})
    );

    // A run id holding `/`, as itself or as %2F.
    let (status, body) = app.get("/v1/campaigns/lab/r3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run"], "lab/r3");
    let (status, d) = app.get("/v1/campaigns/lab%2Fr3/diff?base=r1").await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["new"], "lab/r3");
    assert_eq!(d["counts"]["gone"], 4, "{d}");
    assert_eq!(d["counts"]["new"], 1, "{d}");

    // Unknown runs: 404, the base too; a run with records but no launch is unknown.
    for path in [
        "/v1/campaigns/nope",
        "/v1/campaigns/r2/diff?base=nope",
        "/v1/campaigns/nope/diff?base=r1",
        "/v1/campaigns/m1",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"], "not_found", "{path}");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("no run")), "{path}: {body}");
    }
    // Bad ids, a missing or misplaced `base`, unknown parameters: 400.
    for (path, needle) in [
        ("/v1/campaigns/a%20b", "bad run id"),
        ("/v1/campaigns/_x", "bad run id"),
        ("/v1/campaigns/r2/diff?base=a%20b", "base: bad run id"),
        ("/v1/campaigns/r2/diff", "needs the base run"),
        ("/v1/campaigns/r2?base=r1", "applies only to"),
        ("/v1/campaigns/r2/diff?base=r1&at=3", "at"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains(needle)), "{path}: {body}");
    }

    // Both routes are described.
    let (_, doc) = app.get("/v1/openapi.json").await;
    for path in ["/v1/campaigns/{run}", "/v1/campaigns/{run}/diff"] {
        for status in ["200", "400", "404"] {
            assert!(
                doc["paths"][path]["get"]["responses"][status].is_object(),
                "openapi lacks {path} {status}"
            );
        }
    }
    let params: Vec<&Value> = doc["paths"]["/v1/campaigns/{run}/diff"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["name"] == "base")
        .collect();
    assert_eq!(params.len(), 1);
    assert_eq!(params[0]["required"], true);
    assert!(doc["components"]["schemas"]["CampaignDiffBody"].is_object());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_need_a_token_beyond_loopback() {
    let options = ServeOptions { listen: SocketAddr::from(([0, 0, 0, 0], 0)), ..ServeOptions::default() };
    let app = spawn_app_with(options).await;
    for path in ["/v1/campaigns/r1", "/v1/campaigns/r1/diff?base=r0"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(body["error"], "token_required", "{path}");
    }
    app.stop().await;
}

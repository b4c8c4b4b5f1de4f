//! Over HTTP, an integer field holding what JSON Schema's `integer` takes but its column cannot
//! (`100.0`, `1e2`, `1e30`) is a 422 naming the field and its range, and nothing is stored.

use crate::support::http as app;

use app::{batch, envelope, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_integer_in_an_integer_field_is_a_422_naming_it() {
    let app = spawn_app().await;
    let worker = app.key("worker-1", &["worker"]).await;
    let size = app.size().await;
    let mut bodies = vec![envelope(
        &worker,
        "metric.recorded",
        "run/r1",
        json!({"run": "r1", "name": "x", "step": 100.0, "value": 1.0}),
    )];
    // Number texts as a producer wrote them (the signed payload is kept verbatim).
    for step in ["1e2", "1e30", "18446744073709551616"] {
        let mut event: serde_json::Value = serde_json::from_slice(
            &assay::ledger::build_envelope(&worker, "metric.recorded", Some("run/r1"), json!({}), None, 0)
                .payload,
        )
        .expect("JSON");
        event["data"] = json!("DATA");
        let text = event
            .to_string()
            .replace(r#""DATA""#, &format!(r#"{{"run":"r1","name":"x","step":{step},"value":1.0}}"#));
        bodies.push(assay_events::dsse::DecodedEnvelope::sign(text.into_bytes(), &worker).to_json());
    }
    for body in bodies {
        let (status, reply) = app.post("/v1/events", batch(&[body])).await;
        assert_eq!(status.as_u16(), 422, "{reply}");
        assert_eq!(reply["error"], "schema_violation", "{reply}");
        let detail = reply["detail"].as_str().expect("detail");
        assert!(
            detail.contains("metric.recorded: data/step: ")
                && detail.contains("is not an integer from 0 to 18446744073709551615"),
            "{detail}"
        );
    }
    assert_eq!(app.size().await, size, "nothing stored");
    app.stop().await;
}

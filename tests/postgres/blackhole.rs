//! A server whose network to PostgreSQL silently drops every byte (connections stay open,
//! nothing answers) must not hang: within the store call timeout it answers appends with 503
//! and Retry-After and reports unhealthy, and once the network heals it recovers without
//! losing anything acknowledged. Needs `ASSAY_TEST_DATABASE_URL`; under `CI=true` a missing or
//! unreachable database fails the test instead of skipping it.

use crate::support::cluster;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cluster::http::store::fresh_pg;
use cluster::{
    Ledger, Relay, Seen, Server, WAIT, appenders_on, client, envelope, every_ack_is_in_the_log, health,
    pg_addr, post, recovers, via, wait_for, workers,
};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_behind_a_black_holed_network_answers_503_and_recovers() {
    let Some(db) = fresh_pg("srvhole") else { return };
    let ledger = Ledger::init(&db, "pg.test/srvhole");
    let relay = Relay::start(pg_addr(&db)).await;
    let server = Server::start(&via(&db, relay.addr), ledger.dir.path(), "hole");
    // Requests give up after WAIT, well above the server's 10 s store call timeout (and its
    // 30 s request timeout): a server that hangs fails the test instead of answering late.
    let http = client();
    assert!(WAIT > assay::store::CALL_TIMEOUT * 3, "the client outwaits the server's timeouts");
    let keys = workers(&http, &server.url, &ledger.admin, 4).await;
    let seen = Arc::new(Seen::default());
    let tasks = appenders_on(&http, &server.url, &keys, "h", &seen);
    wait_for("300 acknowledged appends", || async { seen.acked.load(Ordering::Relaxed) >= 300 }).await;

    // The hole opens as a batch sends its COMMIT: the sequencer is caught inside a transaction,
    // holding the writer lock, where only its own commit timeout can free it (between calls,
    // the pool's acquire timeout would). The held COMMIT reaches the database once the network
    // heals, so that batch may commit after its requests were refused: their resends must be
    // acknowledged with the same records.
    relay.black_hole_at(b"COMMIT");
    wait_for("a batch to send its COMMIT into the black hole", || async { relay.is_black_hole() }).await;
    // The appenders keep posting; the next append answers 503 with Retry-After instead of
    // waiting for the database (an appender treats any other status as a failure).
    let probe = envelope(
        &keys[0],
        "metric.recorded",
        "run/probe",
        json!({"run": "probe", "name": "x", "step": 0, "value": 1}),
    );
    let r = post(&http, &format!("{}/v1/events", server.url), probe.clone())
        .await
        .unwrap_or_else(|e| panic!("an append behind the black hole got no answer within {WAIT:?}: {e}"));
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(
        r.retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok()),
        "503 carries a Retry-After of seconds: {:?}",
        r.retry_after
    );
    wait_for("/healthz to say 503 with Retry-After", || async {
        health(&http, &server.url)
            .await
            .is_some_and(|(s, _, retry)| s == StatusCode::SERVICE_UNAVAILABLE && retry.is_some())
    })
    .await;
    let log = server.log_text();
    assert!(log.contains("timed out"), "the server names the timeout it met:\n{log}");

    relay.restore();
    recovers(&http, &server.url, &seen, 300).await;
    seen.stop_all(tasks).await;
    assert!(seen.unavailable.load(Ordering::Relaxed) > 0, "the appenders met 503s behind the black hole");
    let r = post(&http, &format!("{}/v1/events", server.url), probe).await.expect("the server answers");
    assert!(r.status.is_success(), "the refused probe goes in once the network healed: {}", r.body);

    // Nothing acknowledged lost, nothing half-written, no seq gaps.
    every_ack_is_in_the_log(&ledger, &seen);
}

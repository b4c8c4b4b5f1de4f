//! A real restart of the PostgreSQL server under load (`pg_ctlcluster … restart`), then a
//! longer outage (`stop`, a 12 s pause, `start`): nothing acknowledged is lost, nothing is
//! half-written, the writing server recovers by itself and a second server following the same
//! database catches up. During a quick restart an append either waits for a connection
//! (bounded) or gets 503: which depends on whether a call was in flight when the connections
//! were cut. During the long outage it must be refused with 503 and Retry-After (once the store
//! is known to fail, a batch asks it one question bounded by 2 s before anything else, so the
//! refusal comes well inside the outage whether a batch or the listener noticed first), and
//! `/healthz` must say 503 (with Retry-After) meanwhile.
//!
//! It restarts the database everyone shares, so it runs only when `ASSAY_TEST_PG_RESTART=1`
//! (CI sets it for this binary alone, run before every other test; `cargo test --workspace`
//! runs test binaries one after another, and under cargo-nextest `.config/nextest.toml` gives it
//! every test thread, so no other test is using the database meanwhile).

#[path = "support/mod.rs"]
mod support;

use support::{cluster, skip};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cluster::http::store;
use cluster::{
    Ledger, Seen, Server, appenders_on, client, every_ack_is_in_the_log, health, recovers, wait_for, workers,
};
use reqwest::StatusCode;

/// `pg_ctlcluster --skip-systemctl-redirect VERSION main ACTION` for the one installed version.
fn pg_ctlcluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql (a Debian PostgreSQL cluster)")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .min()
        .expect("an installed PostgreSQL version");
    let out = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .output()
        .expect("running pg_ctlcluster");
    assert!(out.status.success(), "pg_ctlcluster {action}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Starts the database again even when the test fails while it is stopped.
struct StartOnDrop;

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        pg_ctlcluster("start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_loses_nothing_and_servers_recover() {
    if std::env::var("ASSAY_TEST_PG_RESTART").as_deref() != Ok("1") {
        // Not a CI failure: CI sets it; a developer's shared database is left alone by default.
        skip::say(
            "a_database_restart_under_load",
            "restarting the shared database needs ASSAY_TEST_PG_RESTART=1",
        );
        return;
    }
    let Some(db) = store::fresh_pg("restart") else { return };
    let ledger = Ledger::init(&db, "pg.test/restart");
    let writer = Server::start(&db, ledger.dir.path(), "writer");
    let follower = Server::start(&db, ledger.dir.path(), "follower");
    let http = client();
    let keys = workers(&http, &writer.url, &ledger.admin, 4).await;
    let seen = Arc::new(Seen::default());
    let tasks = appenders_on(&http, &writer.url, &keys, "r", &seen);
    wait_for("500 acknowledged appends", || async { seen.acked.load(Ordering::Relaxed) >= 500 }).await;

    // Watch /healthz through the restart.
    let unhealthy_seen = Arc::new(AtomicBool::new(false));
    let retry_after_missing = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (http, url) = (http.clone(), writer.url.clone());
        let (seen_503, missing) = (unhealthy_seen.clone(), retry_after_missing.clone());
        tokio::spawn(async move {
            loop {
                if let Some((StatusCode::SERVICE_UNAVAILABLE, _, retry)) = health(&http, &url).await {
                    seen_503.store(true, Ordering::Relaxed);
                    missing.fetch_or(retry.is_none(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::task::spawn_blocking(|| pg_ctlcluster("restart")).await.expect("the restart");
    recovers(&http, &writer.url, &seen, 500).await;
    eprintln!(
        "quick restart: {} appends refused with 503, /healthz said 503: {}",
        seen.unavailable.load(Ordering::Relaxed),
        unhealthy_seen.load(Ordering::Relaxed)
    );

    // A longer outage: calls waiting for a connection reach their bound, so appends are refused.
    let refused_before = seen.unavailable.load(Ordering::Relaxed);
    unhealthy_seen.store(false, Ordering::Relaxed);
    tokio::task::spawn_blocking(|| {
        pg_ctlcluster("stop");
        let _start = StartOnDrop;
        std::thread::sleep(Duration::from_secs(12));
    })
    .await
    .expect("the outage");
    recovers(&http, &writer.url, &seen, 500).await;
    eprintln!(
        "long outage: {} appends refused with 503",
        seen.unavailable.load(Ordering::Relaxed) - refused_before
    );
    seen.stop_all(tasks).await;
    watcher.abort();
    assert!(
        seen.unavailable.load(Ordering::Relaxed) > refused_before,
        "appends were refused with 503 while the database was down"
    );
    assert!(unhealthy_seen.load(Ordering::Relaxed), "/healthz said 503 while the database was down");
    assert!(!retry_after_missing.load(Ordering::Relaxed), "every unhealthy /healthz carried Retry-After");

    let size = every_ack_is_in_the_log(&ledger, &seen);
    wait_for(&format!("the follower to reach size {size}"), || async {
        health(&http, &follower.url).await.is_some_and(|(s, n, _)| s == StatusCode::OK && n == size)
    })
    .await;
}

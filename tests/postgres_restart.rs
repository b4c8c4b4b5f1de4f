//! A real restart of the PostgreSQL server under load (`pg_ctlcluster … restart`): the writing
//! server refuses appends with 503 and Retry-After and reports unhealthy while the database is
//! gone, then recovers by itself; nothing acknowledged is lost, nothing is half-written, and a
//! second server following the same database catches up. It restarts the database everyone
//! shares, so it runs only when `ASSAY_TEST_PG_RESTART=1` (CI sets it; cargo runs test
//! binaries one after another, so no other test is using the database meanwhile).

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cluster::http::store;
use cluster::{Ledger, Seen, Server, appenders_on, client, health, wait_for, workers};
use reqwest::StatusCode;

/// `pg_ctlcluster --skip-systemctl-redirect VERSION main restart` for the one installed version.
fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql (a Debian PostgreSQL cluster)")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .min()
        .expect("an installed PostgreSQL version");
    let out = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .output()
        .expect("running pg_ctlcluster");
    assert!(out.status.success(), "pg_ctlcluster restart: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_loses_nothing_and_servers_recover() {
    if std::env::var("ASSAY_TEST_PG_RESTART").as_deref() != Ok("1") {
        eprintln!("skipping: restarting the shared database needs ASSAY_TEST_PG_RESTART=1");
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
    tokio::task::spawn_blocking(restart_postgres).await.expect("the restart");
    let after_restart = seen.acked.load(Ordering::Relaxed);
    wait_for("/healthz to say 200 after the restart", || async {
        health(&http, &writer.url).await.is_some_and(|(s, ..)| s == StatusCode::OK)
    })
    .await;
    wait_for("500 more acknowledged appends after the restart", || async {
        seen.acked.load(Ordering::Relaxed) >= after_restart + 500
    })
    .await;
    seen.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("an appender");
    }
    watcher.abort();
    assert!(seen.unavailable.load(Ordering::Relaxed) > 0, "appends were refused with 503 during the restart");
    assert!(unhealthy_seen.load(Ordering::Relaxed), "/healthz said 503 during the restart");
    assert!(!retry_after_missing.load(Ordering::Relaxed), "every unhealthy /healthz carried Retry-After");

    let size = ledger.verify();
    let log: HashMap<u64, String> = ledger.log().into_iter().collect();
    assert_eq!(log.len() as u64, size);
    for (seq, digest) in seen.acks.lock().expect("acks").iter() {
        assert_eq!(log.get(seq), Some(digest), "acknowledged seq {seq} is in the log with its digest");
    }
    wait_for(&format!("the follower to reach size {size}"), || async {
        health(&http, &follower.url).await.is_some_and(|(s, n, _)| s == StatusCode::OK && n == size)
    })
    .await;
}

//! Two `assay serve` processes on one PostgreSQL database, as a deployment runs them: appends
//! through both give one gap-free log, every subscriber of either server sees every record once
//! and in order, both serve the same projections, the dispatch gate holds across them, a
//! `kill -9` of one loses nothing acknowledged, and a server cut off from the database answers
//! 503 with Retry-After until it is back. Needs `ASSAY_TEST_DATABASE_URL`; under `CI=true` a
//! missing or unreachable database fails these tests instead of skipping them.

use crate::support::cluster;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::http;
use cluster::http::Sse;
use cluster::http::store::fresh_pg;
use cluster::{
    Ledger, Relay, Seen, Server, WAIT, appender, appenders_on, client, envelope, every_ack_is_in_the_log,
    health, pg_addr, post, recovers, register, via, wait_for, workers,
};
use reqwest::StatusCode;
use serde_json::json;

/// Subscribes to `server`'s stream from seq 0 and records every record seq it delivers.
fn subscriber(
    http: reqwest::Client,
    server: String,
    seqs: Arc<Mutex<Vec<u64>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sse = Sse::connect(&http, &format!("{server}/v1/stream?from=0"), None).await;
        while let Some(ev) = sse.next().await {
            assert_ne!(ev.event, "overflow", "a subscriber of {server} overflowed: {}", ev.data);
            if ev.event == "record" {
                let seq: u64 = ev.id.as_deref().and_then(|s| s.parse().ok()).expect("a numeric id");
                seqs.lock().expect("seqs").push(seq);
            }
        }
    })
}

/// The body of a live projection once it has applied `seq` (waits up to [`WAIT`]).
async fn projection_at(http: &reqwest::Client, path: &str, seq: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = cluster::get(http, path).await.expect("a reply");
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        if r.body["seq"].as_u64() == Some(seq) {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} stayed at {} (waited for {seq})",
            r.body["seq"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_share_one_gap_free_log_streams_and_projections() {
    let Some(db) = fresh_pg("servers") else { return };
    let ledger = Ledger::init(&db, "pg.test/servers");
    let servers = [Server::start(&db, ledger.dir.path(), "a"), Server::start(&db, ledger.dir.path(), "b")];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let http = client();

    // Two subscribers per server, from the start of the log, before any load.
    let streams: Vec<(String, Arc<Mutex<Vec<u64>>>)> =
        (0..4).map(|i| (urls[i % 2].clone(), Arc::new(Mutex::new(Vec::new())))).collect();
    let subs: Vec<_> =
        streams.iter().map(|(url, seqs)| subscriber(http.clone(), url.clone(), seqs.clone())).collect();

    // Eight producers, each registered through one server and appending through the other half
    // of the time; a few runs queued too, so more than one projection moves.
    let (appenders, batches, batch_size) = (8, 30, 20);
    let mut keys = Vec::new();
    for i in 0..appenders {
        keys.push(
            register(&http, &urls[i % 2], &ledger.admin, &format!("p{i}"), &["worker", "dispatcher"]).await,
        );
    }
    for (i, key) in keys.iter().enumerate() {
        let queued = envelope(
            key,
            "run.queued",
            &format!("run/q{i}"),
            json!({"run": format!("q{i}"), "project": "p", "needs_gpu": false, "spec": {}}),
        );
        let r = post(&http, &format!("{}/v1/events", urls[(i + 1) % 2]), queued).await.expect("a reply");
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let (before, ..) = health(&http, &urls[0]).await.expect("a is up");
    assert_eq!(before, StatusCode::OK);
    let base = ledger.verify();

    let seen = Arc::new(Seen::default());
    let tasks: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            tokio::spawn(appender(
                http.clone(),
                vec![urls[i % 2].clone()],
                key.clone(),
                format!("m{i}"),
                batch_size,
                Some(batches),
                seen.clone(),
            ))
        })
        .collect();
    for t in tasks {
        t.await.expect("an appender");
    }
    assert_eq!(seen.unavailable.load(Ordering::Relaxed), 0, "no 503 with a healthy database");

    // One gap-free sequence: the acknowledged seqs are exactly base..size, each once.
    let size = base + (appenders * batches * batch_size) as u64;
    let mut acked = seen.acks.lock().expect("acks").clone();
    acked.sort_unstable();
    let seqs: Vec<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(seqs, (base..size).collect::<Vec<_>>(), "every seq acknowledged once, no gaps");
    assert_eq!(ledger.verify(), size);
    let log = ledger.log();
    assert_eq!(log.len() as u64, size);
    for (seq, digest) in &acked {
        assert_eq!(&log[*seq as usize].1, digest, "the acknowledged digest is the record at seq {seq}");
    }

    // Both servers reach the head and serve the same projections, live and as of a past seq.
    for url in &urls {
        wait_for(&format!("{url} to report size {size}"), || async {
            health(&http, url).await.is_some_and(|(s, n, _)| s == StatusCode::OK && n == size)
        })
        .await;
    }
    for name in assay_projections::Projections::names() {
        let mut bodies = Vec::new();
        for url in &urls {
            bodies.push(projection_at(&http, &format!("{url}/v1/projections/{name}"), size - 1).await);
        }
        assert_eq!(bodies[0]["digest"], bodies[1]["digest"], "projection {name} at the head differs");
        let at = base + (size - base) / 2;
        let a = cluster::get(&http, &format!("{}/v1/projections/{name}?at={at}", urls[0])).await.expect("a");
        let b = cluster::get(&http, &format!("{}/v1/projections/{name}?at={at}", urls[1])).await.expect("b");
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(
            (&a.body["seq"], &a.body["digest"]),
            (&b.body["seq"], &b.body["digest"]),
            "{name} at {at}"
        );
    }

    // Every subscriber of either server saw every record exactly once, in seq order.
    for (url, seqs) in &streams {
        wait_for(&format!("a subscriber of {url} to reach seq {}", size - 1), || async {
            seqs.lock().expect("seqs").last() == Some(&(size - 1))
        })
        .await;
        let got = seqs.lock().expect("seqs").clone();
        assert_eq!(got, (0..size).collect::<Vec<_>>(), "a subscriber of {url}: every record once, in order");
    }
    for s in subs {
        s.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dispatch_gate_holds_across_two_server_processes() {
    let Some(db) = fresh_pg("srvgate") else { return };
    let ledger = Ledger::init(&db, "pg.test/srvgate");
    let servers = [Server::start(&db, ledger.dir.path(), "a"), Server::start(&db, ledger.dir.path(), "b")];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let http = client();
    let dispatcher = register(&http, &urls[0], &ledger.admin, "dispatcher", &["dispatcher"]).await;
    let worker = register(&http, &urls[1], &ledger.admin, "worker", &["worker"]).await;
    let gpu = "0000:01:00.0";
    let preflight = envelope(
        &worker,
        "worker.preflight",
        "worker/n1",
        json!({"worker": "n1", "healthy": true, "checks": [], "gpus": [gpu]}),
    );
    let r = post(&http, &format!("{}/v1/events", urls[0]), preflight).await.expect("a reply");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let runs: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    let queued: Vec<Vec<u8>> = runs
        .iter()
        .map(|run| {
            envelope(
                &dispatcher,
                "run.queued",
                &format!("run/{run}"),
                json!({"run": run, "project": "p", "needs_gpu": true, "spec": {}}),
            )
        })
        .collect();
    let r = post(&http, &format!("{}/v1/events", urls[1]), cluster::batch(&queued)).await.expect("a reply");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Every run asks for the one GPU lane at once, half through each server.
    let tasks: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let request = envelope(
                &dispatcher,
                "dispatch.requested",
                &format!("run/{run}"),
                json!({"run": run, "worker": "n1", "gpu": gpu}),
            );
            let (http, url) = (http.clone(), format!("{}/v1/dispatch", urls[i % 2]));
            tokio::spawn(async move { post(&http, &url, request).await.expect("a reply") })
        })
        .collect();
    let mut accepted = Vec::new();
    for (t, run) in tasks.into_iter().zip(&runs) {
        let r = t.await.expect("a request");
        assert_eq!(r.status, StatusCode::CREATED, "{run}: {}", r.body);
        if r.body["accepted"] == true {
            accepted.push(run.clone());
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one acceptance across both servers: {accepted:?}");

    // The log agrees: one accepted decision among as many decisions as requests.
    let out = cluster::assay(&["log", "--db", &db, "--json", "--type", "dispatch.decided"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decided: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(decided.len(), runs.len());
    let accepted_in_log = decided.iter().filter(|d| d["event"]["data"]["accepted"] == true).count();
    assert_eq!(accepted_in_log, 1, "exactly one accepted decision in the log");
    ledger.verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_server_under_load_loses_nothing_acknowledged() {
    let Some(db) = fresh_pg("srvkill") else { return };
    let ledger = Ledger::init(&db, "pg.test/srvkill");
    let mut victim = Server::start(&db, ledger.dir.path(), "victim");
    let survivor = Server::start(&db, ledger.dir.path(), "survivor");
    let http = client();
    let mut keys = Vec::new();
    for i in 0..8 {
        keys.push(register(&http, &survivor.url, &ledger.admin, &format!("p{i}"), &["worker"]).await);
    }

    // Half the appenders use the victim first and move to the survivor when it is gone.
    let seen = Arc::new(Seen::default());
    let tasks: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let targets = if i % 2 == 0 {
                vec![victim.url.clone(), survivor.url.clone()]
            } else {
                vec![survivor.url.clone()]
            };
            tokio::spawn(appender(
                http.clone(),
                targets,
                key.clone(),
                format!("k{i}"),
                10,
                None,
                seen.clone(),
            ))
        })
        .collect();
    wait_for("2000 acknowledged appends before the kill", || async {
        seen.acked.load(Ordering::Relaxed) >= 2000
    })
    .await;
    victim.kill();
    let at_kill = seen.acked.load(Ordering::Relaxed);
    wait_for("2000 more acknowledged appends after the kill", || async {
        seen.acked.load(Ordering::Relaxed) >= at_kill + 2000
    })
    .await;
    seen.stop_all(tasks).await;
    assert!(seen.unreachable.load(Ordering::Relaxed) > 0, "some appender found the victim gone");
    let size = every_ack_is_in_the_log(&ledger, &seen);

    // The survivor still takes appends, and reports the head everyone sees.
    let r = post(
        &http,
        &format!("{}/v1/events", survivor.url),
        envelope(
            &keys[1],
            "metric.recorded",
            "run/after",
            json!({"run": "after", "name": "x", "step": 0, "value": 1}),
        ),
    )
    .await
    .expect("the survivor answers");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(ledger.verify(), size + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_cut_off_from_the_database_answers_503_and_recovers() {
    let Some(db) = fresh_pg("srvcut") else { return };
    let ledger = Ledger::init(&db, "pg.test/srvcut");
    let relay = Relay::start(pg_addr(&db)).await;
    let server = Server::start(&via(&db, relay.addr), ledger.dir.path(), "cut");
    let http = client();
    let keys = workers(&http, &server.url, &ledger.admin, 4).await;
    let seen = Arc::new(Seen::default());
    let tasks = appenders_on(&http, &server.url, &keys, "c", &seen);
    wait_for("500 acknowledged appends", || async { seen.acked.load(Ordering::Relaxed) >= 500 }).await;

    relay.cut();
    wait_for("/healthz to say 503 with Retry-After", || async {
        health(&http, &server.url)
            .await
            .is_some_and(|(s, _, retry)| s == StatusCode::SERVICE_UNAVAILABLE && retry.is_some())
    })
    .await;
    // While cut off, an append is refused with 503 and told when to retry.
    let probe = envelope(
        &keys[0],
        "metric.recorded",
        "run/probe",
        json!({"run": "probe", "name": "x", "step": 0, "value": 1}),
    );
    let r =
        post(&http, &format!("{}/v1/events", server.url), probe.clone()).await.expect("the server answers");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.retry_after.is_some(), "503 carries Retry-After");

    relay.restore();
    recovers(&http, &server.url, &seen, 500).await;
    seen.stop_all(tasks).await;
    assert!(seen.unavailable.load(Ordering::Relaxed) > 0, "the appenders met 503s while cut off");
    let r = post(&http, &format!("{}/v1/events", server.url), probe).await.expect("the server answers");
    assert!(r.status.is_success(), "the refused probe goes in once the database is back: {}", r.body);

    // Nothing acknowledged lost, nothing half-written: the log verifies and holds every ack.
    every_ack_is_in_the_log(&ledger, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_database_sessions_are_replaced_without_losing_acknowledged_appends() {
    let Some(db) = fresh_pg("srvterm") else { return };
    let ledger = Ledger::init(&db, "pg.test/srvterm");
    // The application name picks out this server's sessions among everyone else's.
    let app = format!("assay_srvterm_{}", std::process::id());
    let server = Server::start(&format!("{db}&application_name={app}"), ledger.dir.path(), "term");
    let http = client();
    let keys = workers(&http, &server.url, &ledger.admin, 4).await;
    let seen = Arc::new(Seen::default());
    let tasks = appenders_on(&http, &server.url, &keys, "t", &seen);
    let base = std::env::var("ASSAY_TEST_DATABASE_URL").expect("set, since fresh_pg returned a URL");
    let mut terminated = 0;
    for round in 1..=3u64 {
        wait_for(&format!("{} acknowledged appends", round * 400), || async {
            seen.acked.load(Ordering::Relaxed) >= round * 400
        })
        .await;
        let sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'"
        );
        http::store::run_sql(&base, &sql).expect("terminating the server's sessions");
        terminated += 1;
    }
    recovers(&http, &server.url, &seen, 400).await;
    seen.stop_all(tasks).await;
    assert_eq!(terminated, 3);
    every_ack_is_in_the_log(&ledger, &seen);
}

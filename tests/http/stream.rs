//! `GET /v1/stream`: three subscribers — one plain, one that reconnects mid-stream with
//! Last-Event-ID, one deliberately slow — against eight concurrent appenders. Every
//! subscriber sees every seq exactly once, in order; the slow one is disconnected and resumes
//! from the seq it was told. Heartbeats flow on an idle stream, and shutdown ends streams.

use crate::support::http as app;

use std::time::Duration;

use app::{Sse, SseEvent, metric, spawn_app_with};
use assay::http::ServeOptions;
use reqwest::StatusCode;
use serde_json::Value;

const APPENDERS: u64 = 8;
const BATCHES: u64 = 40;
const PER_BATCH: u64 = 25;

/// What one subscriber saw: the seqs of its `record` events, and how often it was told to
/// resume (and did).
#[derive(Debug, Default)]
struct Seen {
    seqs: Vec<u64>,
    overflows: u64,
    reconnects: u64,
}

impl Seen {
    /// Takes one event; returns the seq to resume from on `overflow`.
    fn take(&mut self, ev: &SseEvent) -> Option<u64> {
        match ev.event.as_str() {
            "record" => {
                let id: u64 =
                    ev.id.as_deref().and_then(|i| i.parse().ok()).expect("record events have a seq id");
                let data: Value = serde_json::from_str(&ev.data).expect("record data is JSON");
                assert_eq!(data["seq"], id, "id is the record's seq");
                self.seqs.push(id);
                None
            }
            "overflow" => {
                let data: Value = serde_json::from_str(&ev.data).expect("overflow data is JSON");
                let resume = data["resume_from"].as_u64().expect("resume_from");
                assert_eq!(
                    Some(resume),
                    self.seqs.last().map(|s| s + 1),
                    "resume right after the last event sent"
                );
                self.overflows += 1;
                Some(resume)
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// Follows from seq 0 until `total` records; after `drop_after` records it drops its
/// connection once and reconnects with Last-Event-ID.
async fn subscriber(http: reqwest::Client, base: String, total: u64, drop_after: Option<usize>) -> Seen {
    let mut seen = Seen::default();
    let mut sse = Sse::connect(&http, &format!("{base}/v1/stream?from=0"), None).await;
    let mut dropped = false;
    while (seen.seqs.len() as u64) < total {
        let Some(ev) = sse.next().await else { panic!("the stream ended after {} records", seen.seqs.len()) };
        let resume = seen.take(&ev);
        if let Some(from) = resume {
            sse = Sse::connect(&http, &format!("{base}/v1/stream?from={from}"), None).await;
        } else if drop_after.is_some_and(|n| seen.seqs.len() == n) && !dropped {
            dropped = true;
            seen.reconnects += 1;
            let last = *seen.seqs.last().expect("a record");
            // Different URL `from` on purpose: Last-Event-ID wins, as EventSource expects.
            sse = Sse::connect(&http, &format!("{base}/v1/stream?from=0"), Some(last)).await;
        }
    }
    seen
}

/// A subscriber on a tiny socket buffer that stops reading until every append is done (more
/// bytes than any socket buffer holds): the server drops it with an `overflow` event; it
/// resumes from the seq given, and then keeps up.
async fn slow_subscriber(
    http: reqwest::Client,
    base: String,
    addr: std::net::SocketAddr,
    total: u64,
    mut appended: tokio::sync::watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut sse = Sse::connect_raw(addr, "/v1/stream?from=0", 4096).await;
    let first = sse.next().await.expect("a first event");
    seen.take(&first);
    let _ = appended.wait_for(|done| *done).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    while (seen.seqs.len() as u64) < total {
        match sse.next().await {
            Some(ev) => {
                if let Some(from) = seen.take(&ev) {
                    // The stream ends right after the overflow event.
                    assert!(sse.next().await.is_none(), "nothing follows an overflow event");
                    sse = Sse::connect(&http, &format!("{base}/v1/stream?from={from}"), None).await;
                }
            }
            None => {
                panic!("the slow stream ended without an overflow event after {} records", seen.seqs.len())
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_sees_every_seq_once_in_order() {
    let options = ServeOptions {
        stream_buffer_events: 16,
        stream_stall: Duration::from_millis(300),
        heartbeat: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    let app = spawn_app_with(options).await;
    let mut workers = Vec::new();
    for i in 0..APPENDERS {
        workers.push(app.key(&format!("worker-{i}"), &["worker"]).await);
    }
    let total = app.size().await + APPENDERS * BATCHES * PER_BATCH;

    let plain = tokio::spawn(subscriber(app.http.clone(), app.url.clone(), total, None));
    let reconnecting = tokio::spawn(subscriber(app.http.clone(), app.url.clone(), total, Some(1500)));
    let (appended, appended_rx) = tokio::sync::watch::channel(false);
    let slow = tokio::spawn(slow_subscriber(app.http.clone(), app.url.clone(), app.addr, total, appended_rx));
    // Let the subscribers connect (they catch up from the store either way).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut appenders = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        let (http, url) = (app.http.clone(), app.url("/v1/events"));
        appenders.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let envelopes: Vec<Vec<u8>> =
                    (0..PER_BATCH).map(|s| metric(&w, &format!("r{i}"), b * PER_BATCH + s)).collect();
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(app::batch(&envelopes))
                    .send()
                    .await
                    .expect("append");
                assert_eq!(r.status(), StatusCode::CREATED);
            }
        }));
    }
    for a in appenders {
        a.await.expect("appender");
    }
    assert_eq!(app.size().await, total);
    appended.send_replace(true);

    let all: Vec<u64> = (0..total).collect();
    let deadline = Duration::from_secs(120);
    let plain =
        tokio::time::timeout(deadline, plain).await.expect("plain subscriber in time").expect("plain");
    assert_eq!(plain.seqs, all, "plain subscriber: every seq once, in order");
    let reconnecting = tokio::time::timeout(deadline, reconnecting)
        .await
        .expect("reconnecting subscriber in time")
        .expect("reconnecting");
    assert_eq!(reconnecting.reconnects, 1);
    assert_eq!(reconnecting.seqs, all, "reconnecting subscriber: every seq once, in order");
    let slow = tokio::time::timeout(deadline, slow).await.expect("slow subscriber in time").expect("slow");
    assert_eq!(slow.seqs, all, "slow subscriber: every seq once, in order");
    assert!(slow.overflows >= 1, "the slow subscriber was dropped and resumed: {slow:?}");

    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("assay_stream_subscribers_dropped_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_live_events_and_shutdown() {
    let options = ServeOptions { heartbeat: Duration::from_millis(200), ..ServeOptions::default() };
    let app = spawn_app_with(options).await;
    let worker = app.key("worker-1", &["worker"]).await;
    // No `from`: live from the head on.
    let mut sse = Sse::connect(&app.http, &app.url("/v1/stream"), None).await;
    let idle = tokio::time::timeout(Duration::from_millis(900), sse.next()).await;
    assert!(idle.is_err(), "no record events on an idle stream");
    assert!(sse.comments >= 2, "heartbeats on an idle stream: {}", sse.comments);
    let acks = app.append_ok(&[metric(&worker, "r1", 0), metric(&worker, "r1", 1)]).await;
    for (seq, digest) in acks {
        let ev = tokio::time::timeout(Duration::from_secs(10), sse.next())
            .await
            .expect("live event")
            .expect("event");
        assert_eq!(ev.event, "record");
        assert_eq!(ev.id, Some(seq.to_string()));
        let data: Value = serde_json::from_str(&ev.data).expect("JSON");
        assert_eq!(data["digest"], digest.as_str());
        assert_eq!(data["envelope"]["payloadType"], "application/vnd.assay.event+json");
    }
    let (status, metrics) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("assay_stream_subscribers 1"), "{metrics}");
    // Shutdown ends open streams instead of waiting for them.
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.expect("shutdown with an open stream");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), sse.next()).await.expect("the stream ends").is_none()
    );
}

/// The idle timeout never cuts a stream that is being read: heartbeats (at least twice per
/// idle timeout) keep it moving, and records still arrive after many idle timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_does_not_cut_a_live_stream() {
    let options = ServeOptions {
        idle_timeout: Duration::from_millis(300),
        heartbeat: Duration::from_secs(15),
        ..ServeOptions::default()
    };
    let app = spawn_app_with(options).await;
    let worker = app.key("worker-1", &["worker"]).await;
    let mut sse = Sse::connect(&app.http, &app.url("/v1/stream"), None).await;
    let quiet = tokio::time::timeout(Duration::from_millis(1500), sse.next()).await;
    assert!(quiet.is_err(), "the stream stays open (and sends no record) through five idle timeouts");
    assert!(sse.comments >= 2, "heartbeats come at least twice per idle timeout: {}", sse.comments);
    let acks = app.append_ok(&[metric(&worker, "r1", 0)]).await;
    let ev =
        tokio::time::timeout(Duration::from_secs(10), sse.next()).await.expect("live").expect("an event");
    assert_eq!((ev.event.as_str(), ev.id), ("record", Some(acks[0].0.to_string())));
    app.stop().await;
}

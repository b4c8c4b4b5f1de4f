//! `GET /v1/stream?from=SEQ`: Server-Sent Events, one `record` event per record (`id:` = seq),
//! catch-up from the store, then live from the ledger's committed batches.
//!
//! Each subscriber has a feeder task and a bounded buffer. The sequencer never waits for a
//! subscriber: the broadcast it publishes on drops batches for a receiver that falls behind,
//! and the feeder then reads them from the store. A subscriber that leaves its buffer full for
//! longer than the stall limit is disconnected after a final `overflow` event naming the seq to
//! resume from (`?from=` it, or `Last-Event-ID:` one less, as EventSource does by itself).
//!
//! When reads need a token, the stream's credential (bearer header or sign-in cookie) is
//! checked again every [`ServeOptions::stream_token_check`](super::ServeOptions): once it is
//! revoked the stream ends with a final `error` event (`{"error": "token_revoked", "detail"}`),
//! so a revocation cuts open streams too, not only new requests.

use std::convert::Infallible;
use std::sync::Arc;

use assay_events::record::Record;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, oneshot, watch};
use utoipa::IntoParams;

use super::auth::{Access, ReadAuth};
use super::error::ApiError;
use super::extract::{Query, Seq, seq};
use super::metrics::HttpMetrics;
use super::state::AppState;
use super::wire::ErrorBody;
use crate::ledger::Ledger;
use crate::view::RecordView;

/// Records read per store query while catching up.
const CATCH_UP_PAGE_RECORDS: u32 = 512;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// First seq to send (default: the next record appended). `Last-Event-ID` wins over it.
    #[param(value_type = Option<u64>, minimum = 0)]
    from: Option<Seq>,
}

/// Follow the log: catch-up then live, resumable.
///
/// Each record is an event `record` whose `id` is its seq and whose data is the record JSON
/// (as `GET /v1/events/{digest}` returns it). Comment lines are heartbeats. A subscriber that
/// cannot keep up receives a final event `overflow` with data `{"resume_from": SEQ, "detail"}`
/// and is disconnected. On a server that requires read tokens the token is checked again every
/// few seconds; once it is revoked the stream ends with a final event `error` with data
/// `{"error": "token_revoked", "detail"}`.
#[utoipa::path(
    get,
    path = "/v1/stream",
    tag = "events",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq (sent by EventSource on reconnect)"),
    ),
    responses(
        (status = 200, description = "An endless text/event-stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad `from` or Last-Event-ID", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let from = match headers.get("last-event-id") {
        Some(v) => {
            let id =
                v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).filter(|id| *id < i64::MAX as u64);
            let id = id.ok_or_else(|| {
                ApiError::bad_request("bad_last_event_id", "Last-Event-ID must be the seq of a record")
            })?;
            id + 1
        }
        None => match seq(q.from) {
            Some(from) => from,
            None => state.ledger.head().borrow().size,
        },
    };
    let (tx, rx) = mpsc::channel(state.options.stream_buffer_events.max(1));
    let (final_tx, final_rx) = oneshot::channel();
    // The credential this stream was authorized with, checked again while it lasts.
    let credential = state.read_auth.required.then(|| Credential {
        auth: state.read_auth.clone(),
        headers: credential_headers(&headers),
        every: state.options.stream_token_check,
    });
    let feeder = Feeder {
        ledger: state.ledger.clone(),
        tx,
        next: from,
        stall: state.options.stream_stall,
        shutdown: state.shutdown.clone(),
        credential,
    };
    tokio::spawn(feeder.run(final_tx));
    let guard = Subscribed::new(state.metrics.clone());
    let events =
        futures_util::stream::unfold((rx, Some(final_rx), guard), |(mut rx, final_rx, guard)| async move {
            if let Some(event) = rx.recv().await {
                return Some((Ok(event), (rx, final_rx, guard)));
            }
            // The feeder is done: a last event if it dropped this subscriber, then the end.
            let last = final_rx?.await.ok()?;
            if last.overflow {
                guard.metrics.subscribers_dropped.inc();
            }
            Some((Ok(last.event), (rx, None, guard)))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(state.options.heartbeat).text("heartbeat")))
}

/// Counts open subscriptions.
struct Subscribed {
    metrics: Arc<HttpMetrics>,
}

impl Subscribed {
    fn new(metrics: Arc<HttpMetrics>) -> Subscribed {
        metrics.subscribers.inc();
        Subscribed { metrics }
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.metrics.subscribers.dec();
    }
}

/// Why the feeder stopped.
enum Stop {
    /// The subscriber went away, or the server is shutting down.
    Gone,
    /// The subscriber's buffer stayed full: resume from this seq.
    Overflow(u64),
    /// The read token the stream was opened with is no longer accepted.
    Revoked { by_cookie: bool },
}

/// The last event of a stream the server ended.
struct Final {
    event: Event,
    /// The subscriber fell behind (counted as dropped).
    overflow: bool,
}

/// A stream's credential, checked again every `every`.
struct Credential {
    auth: Arc<ReadAuth>,
    /// The request's `Authorization` and `Cookie` headers.
    headers: HeaderMap,
    every: std::time::Duration,
}

impl Credential {
    /// Returns once the credential is refused. A check that cannot reach the store keeps the
    /// stream (the store is where revocations are kept, so they apply at the next check that
    /// reaches it); refusing would end every stream on a database blip, and EventSource does
    /// not come back from a 5xx.
    async fn revoked(self) -> Stop {
        let mut ticks = tokio::time::interval(self.every.max(std::time::Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // The first tick is now: the request was just authorized.
        loop {
            ticks.tick().await;
            match self.auth.authorize(&self.headers).await {
                Ok(Access::Granted { .. }) => {}
                Ok(Access::Refused { by_cookie }) => return Stop::Revoked { by_cookie },
                Ok(Access::Missing) => return Stop::Revoked { by_cookie: false },
                Err(e) => tracing::warn!(error = ?e, "stream: checking the read token failed; will retry"),
            }
        }
    }
}

/// The headers that carry a read credential.
fn credential_headers(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in [axum::http::header::AUTHORIZATION, axum::http::header::COOKIE] {
        for value in headers.get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

struct Feeder {
    ledger: Ledger,
    tx: mpsc::Sender<Event>,
    /// The next seq the subscriber needs.
    next: u64,
    stall: std::time::Duration,
    shutdown: watch::Receiver<bool>,
    /// None: reads are open.
    credential: Option<Credential>,
}

impl Feeder {
    async fn run(mut self, final_tx: oneshot::Sender<Final>) {
        let mut shutdown = self.shutdown.clone();
        let credential = self.credential.take();
        let revoked = async move {
            match credential {
                Some(c) => c.revoked().await,
                None => std::future::pending().await,
            }
        };
        let stop = tokio::select! {
            stop = self.feed() => stop,
            _ = shutdown.wait_for(|s| *s) => Stop::Gone,
            stop = revoked => stop,
        };
        let last = match stop {
            Stop::Gone => return,
            Stop::Overflow(resume_from) => {
                let data = serde_json::json!({
                    "resume_from": resume_from,
                    "detail": format!(
                        "this subscriber fell behind and was disconnected; reconnect with ?from={resume_from}"
                    ),
                });
                Final { event: Event::default().event("overflow").data(data.to_string()), overflow: true }
            }
            Stop::Revoked { by_cookie } => {
                let detail = if by_cookie {
                    "the token of the assay_read cookie was revoked; this stream is closed (sign in again at /login)"
                } else {
                    "the bearer token was revoked; this stream is closed"
                };
                let data = serde_json::json!({"error": "token_revoked", "detail": detail});
                Final { event: Event::default().event("error").data(data.to_string()), overflow: false }
            }
        };
        let _ = final_tx.send(last);
    }

    async fn feed(&mut self) -> Stop {
        // Subscribe before reading the store, so nothing committed in between is missed.
        let mut live = self.ledger.subscribe();
        loop {
            if let Err(stop) = self.catch_up().await {
                return stop;
            }
            loop {
                match live.recv().await {
                    Ok(batch) => {
                        if batch.records.first().is_some_and(|r| r.seq > self.next) {
                            break; // A gap: read it from the store.
                        }
                        for r in &batch.records {
                            if r.seq < self.next {
                                continue;
                            }
                            if let Err(stop) = self.send(r).await {
                                return stop;
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return Stop::Gone,
                }
            }
        }
    }

    /// Sends every stored record from `next` on.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        loop {
            let page = match self.ledger.store().records(self.next, CATCH_UP_PAGE_RECORDS).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "stream: reading the store failed");
                    return Err(Stop::Overflow(self.next));
                }
            };
            let full = page.len() == CATCH_UP_PAGE_RECORDS as usize;
            for stored in &page {
                match crate::replay::trusted(stored) {
                    Ok(r) => self.send(&r).await?,
                    Err(e) => {
                        tracing::warn!(error = %e, "stream: a stored record does not decode");
                        return Err(Stop::Overflow(self.next));
                    }
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn send(&mut self, record: &Record) -> Result<(), Stop> {
        let event = record_event(record);
        match self.tx.send_timeout(event, self.stall).await {
            Ok(()) => {
                self.next = record.seq + 1;
                Ok(())
            }
            Err(SendTimeoutError::Timeout(_)) => Err(Stop::Overflow(self.next)),
            Err(SendTimeoutError::Closed(_)) => Err(Stop::Gone),
        }
    }
}

/// The SSE event of one record. JSON's insignificant whitespace may include raw newlines
/// (a producer's pretty-printed payload); they become spaces, so the data is one line.
fn record_event(record: &Record) -> Event {
    let data = match RecordView::of(record).map(|v| serde_json::to_string(&v)) {
        Ok(Ok(json)) => json.replace(['\r', '\n'], " "),
        _ => serde_json::json!({"seq": record.seq, "digest": record.digest.to_hex()}).to_string(),
    };
    Event::default().id(record.seq.to_string()).event("record").data(data)
}

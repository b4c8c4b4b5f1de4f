//! Connections: accepting, bounding and closing them. Every connection is held to three limits
//! ([`ConnLimits`]):
//!
//! - **Header read timeout**: a request's head must arrive complete within this long of the
//!   server starting to wait for it (a new connection, or the previous response sent), so a
//!   client dribbling header bytes (slowloris) or saying nothing at all is closed (hyper's
//!   `header_read_timeout`). A keep-alive connection waiting for its next request is waiting
//!   for a head too, so it is closed after this long as well.
//! - **Idle timeout**: a connection on which no byte moves either way for this long, while no
//!   request is being handled, is closed: an idle keep-alive connection, or a client that
//!   stopped reading its response (a live stream whose socket buffer stays full). A live
//!   stream that is being read is never idle: it writes a heartbeat at least every half idle
//!   timeout.
//! - **Connection cap**: at most `connections_max` connections are served at once (and never
//!   more than the process's descriptor limit leaves room for). One more is answered `503`
//!   with `Retry-After` and a JSON `{error: "too_many_connections", detail}` at once, and
//!   closed.
//!
//! Shutdown: stop accepting, ask every connection to finish its request in flight and close,
//! then wait for them (the caller bounds the wait; dropping the future closes what is left).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::error::RETRY_AFTER_UNAVAILABLE_S;
use super::metrics::HttpMetrics;

/// Refused connections answered after their request head at once; beyond these a refused
/// connection is answered without waiting and closed, so a flood cannot use up the
/// descriptors.
pub const REFUSALS_AT_ONCE: usize = 32;
/// Longest wait for a refused connection's request head, and then for it to close.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// The most read (and dropped) from a refused connection, before and after the answer.
const REFUSAL_READ_BYTES_MAX: usize = 16 * 1024;
/// Descriptors kept for everything but client connections (the database pool, the listener,
/// files the service reads, refusals being answered) when the cap is fitted to the process's
/// descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 64 + REFUSALS_AT_ONCE as u64;
/// Pause after an accept error that is not about one connection (e.g. out of descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The limits every connection is held to (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub connections_max: usize,
}

impl ConnLimits {
    /// `connections_max` lowered to what the process's descriptor limit leaves room for
    /// (Linux: `/proc/self/limits`; elsewhere as given), and at least 1.
    pub fn fitted_to_descriptors(mut self) -> ConnLimits {
        if let Some(limit) = descriptor_limit() {
            let room =
                usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS).max(1)).unwrap_or(usize::MAX);
            if room < self.connections_max {
                tracing::warn!(
                    descriptors = limit,
                    connections_max = room,
                    "the descriptor limit (ulimit -n) leaves room for fewer connections than asked"
                );
                self.connections_max = room;
            }
        }
        self.connections_max = self.connections_max.max(1);
        self
    }
}

/// The soft limit on open descriptors, if known.
fn descriptor_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `router` on `listener` until `stopping` turns true, then lets every connection
/// finish its request in flight and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    metrics: Arc<HttpMetrics>,
    mut stopping: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|s| *s) => break,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let connection = Connection {
                    router: router.clone(),
                    limits,
                    metrics: metrics.clone(),
                    stopping: stopping.clone(),
                    _slot: slot,
                };
                connections.spawn(connection.run(stream));
            }
            Err(_) => {
                metrics.connections_refused.inc();
                let draining = refusals.clone().try_acquire_owned().ok();
                if let Some(drain) = refuse(stream, limits.connections_max, draining) {
                    connections.spawn(drain);
                }
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Errors of one connection that leave the listener fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// One served connection; it holds a slot of the cap until it ends.
struct Connection {
    router: Router,
    limits: ConnLimits,
    metrics: Arc<HttpMetrics>,
    stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let _open = Open::new(self.metrics.clone());
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked { inner: stream, activity: activity.clone() });
        let service =
            Counted { inner: TowerToHyperService::new(self.router.clone()), activity: activity.clone() };
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.limits.header_read_timeout);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let mut draining = false;
        loop {
            // While a request is handled the connection is not idle: look again later.
            let check_at = if activity.busy() { Instant::now() + idle } else { activity.last() + idle };
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    return;
                }
                _ = self.stopping.wait_for(|s| *s), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep_until(check_at.into()) => {
                    if !activity.busy() && activity.last() + idle <= Instant::now() {
                        tracing::debug!("closing a connection idle for {idle:?}");
                        return; // Dropping the connection closes the socket.
                    }
                }
            }
        }
    }
}

/// Counts open connections.
struct Open(Arc<HttpMetrics>);

impl Open {
    fn new(metrics: Arc<HttpMetrics>) -> Open {
        metrics.connections.inc();
        Open(metrics)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// When bytes last moved on a connection, and how many of its requests are being handled.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last_ms: AtomicU64,
    handling: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: Instant::now(), last_ms: AtomicU64::new(0), handling: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn busy(&self) -> bool {
        self.handling.load(Ordering::Relaxed) > 0
    }
}

/// The socket, noting every byte read or written.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as a hyper service, counting the requests being handled (from a complete head
/// to the response's head; the body's bytes then count as activity).
#[derive(Clone)]
struct Counted {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<axum::http::Request<Incoming>> for Counted {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: axum::http::Request<Incoming>) -> Self::Future {
        let handling = Handling::new(self.activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(handling);
            response
        })
    }
}

/// One request being handled.
struct Handling(Arc<Activity>);

impl Handling {
    fn new(activity: Arc<Activity>) -> Handling {
        activity.handling.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Handling(activity)
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers a connection over the cap `503`, and closes it. With a slot (`answering`) the
/// returned future first reads the client's request head (bounded in time and bytes: clients
/// such as hyper take an answer that comes before their request for a protocol error), then
/// answers, and reads what the client still sends until it closes, so closing does not reset
/// the connection before the answer is read. Without one (a flood of refused connections) the
/// answer is written at once into the fresh socket's empty send buffer (HTTP/1.1 lets a server
/// answer early) and the socket closed.
fn refuse(
    stream: TcpStream,
    connections_max: usize,
    answering: Option<OwnedSemaphorePermit>,
) -> Option<impl Future<Output = ()> + use<>> {
    let body = serde_json::json!({
        "error": "too_many_connections",
        "detail": format!(
            "this server is serving its limit of {connections_max} connections; retry after \
             {RETRY_AFTER_UNAVAILABLE_S} s"
        ),
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: \
         {RETRY_AFTER_UNAVAILABLE_S}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let Some(slot) = answering else {
        use std::io::Write;
        // A direct, non-blocking write: tokio's readiness of a socket just accepted is not
        // known yet, and this path must not wait.
        let mut socket = stream.into_std().ok()?;
        let _ = socket.write(response.as_bytes());
        let _ = socket.shutdown(std::net::Shutdown::Write);
        return None;
    };
    let mut stream = stream;
    Some(async move {
        let _slot = slot;
        let deadline = tokio::time::Instant::now() + REFUSAL_TIME;
        let mut chunk = [0u8; 4096];
        let mut seen = Vec::new();
        let _ = tokio::time::timeout_at(deadline, async {
            while seen.len() < REFUSAL_READ_BYTES_MAX {
                match stream.read(&mut chunk).await {
                    Ok(n) if n > 0 => {
                        seen.extend_from_slice(&chunk[..n]);
                        let from = seen.len().saturating_sub(n + 3);
                        if seen[from..].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        })
        .await;
        let _ = tokio::time::timeout_at(deadline + REFUSAL_TIME, async {
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await?;
            let mut read = 0;
            while read < REFUSAL_READ_BYTES_MAX {
                match stream.read(&mut chunk).await? {
                    0 => break,
                    n => read += n,
                }
            }
            io::Result::Ok(())
        })
        .await;
    })
}

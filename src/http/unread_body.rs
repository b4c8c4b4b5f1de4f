//! `Connection: close` on any answer given before the request's body was read to its end.
//!
//! A handler may answer without reading the whole body: a blob that is already stored, a
//! refused signature, a declared length over a limit. The rest of the body is then still on
//! the connection, and the server closes it after answering rather than read what nobody
//! wants. Said in the answer, a client does not send its next request on that connection
//! (it would fail with an incomplete message). One layer for every route, so no handler
//! tracks this itself.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// The request body, marking `ended` once its last frame has been read.
struct Tracked {
    inner: Body,
    ended: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.ended.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The middleware: wraps a body that has anything left to read, and adds `Connection: close`
/// to the answer when the handler left some of it unread.
pub async fn close_when_unread(request: Request, next: Next) -> Response {
    use http_body::Body as _;
    if request.body().is_end_stream() {
        // No body (a GET, `Content-Length: 0`): nothing can be left on the connection.
        return next.run(request).await;
    }
    let ended = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| Body::new(Tracked { inner, ended: ended.clone() }));
    let mut response = next.run(request).await;
    if !ended.load(Ordering::Relaxed) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

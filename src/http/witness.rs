//! `assay witness serve`: the C2SP tlog-witness HTTP interface over a [`Witness`]. One route,
//! `POST /add-checkpoint`; answers are plain text as the spec has them (cosignature lines; a
//! 409 about the old size is `text/x.tlog.size` with the recorded size; other refusals a
//! sentence saying what was wrong). Connections are bounded as the ledger's are (`conn.rs`),
//! and so is the body ([`BODY_BYTES_MAX`], else 413).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::conn::{self, ConnLimits};
use super::metrics::HttpMetrics;
use super::server::ServeError;
use crate::witness::judge::Refused;
use crate::witness::request::{BODY_BYTES_MAX, TLOG_SIZE};
use crate::witness::{AddError, Witness};

/// A bound witness server, not yet serving.
pub struct WitnessServer {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl WitnessServer {
    pub async fn bind(listen: SocketAddr, witness: Arc<Witness>) -> Result<WitnessServer, ServeError> {
        let listener =
            TcpListener::bind(listen).await.map_err(|source| ServeError::Bind { addr: listen, source })?;
        let addr = listener.local_addr()?;
        let router = Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
            .layer(DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(BODY_BYTES_MAX))
            .layer(axum::middleware::from_fn(super::unread_body::close_when_unread))
            .with_state(witness);
        Ok(WitnessServer { listener, addr, router })
    }

    /// `http://ADDR:PORT` as bound.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until `signal` resolves; requests in flight finish (within 30 s).
    pub async fn run(self, signal: impl Future<Output = ()> + Send + 'static) {
        let limits = ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            connections_max: 1024,
        }
        .fitted_to_descriptors();
        let (stop, stopping) = watch::channel(false);
        let serve =
            conn::serve(self.listener, self.router, limits, Arc::new(HttpMetrics::default()), stopping);
        tokio::pin!(serve);
        tokio::select! {
            () = &mut serve => {}
            () = signal => {
                stop.send_replace(true);
                let _ = tokio::time::timeout(Duration::from_secs(30), &mut serve).await;
            }
        }
    }
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match witness.add_checkpoint(&body, crate::clock::now_ns()).await {
        Ok(lines) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], lines).into_response(),
        Err(AddError::Refused(Refused::OldMismatch { recorded, .. })) => {
            (StatusCode::CONFLICT, [(header::CONTENT_TYPE, TLOG_SIZE)], format!("{recorded}\n"))
                .into_response()
        }
        Err(AddError::Refused(r)) => {
            let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{r}\n")).into_response()
        }
        Err(AddError::Store(e)) => {
            tracing::error!("witness state: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("the witness cannot write its state: {e}\n"),
            )
                .into_response()
        }
    }
}

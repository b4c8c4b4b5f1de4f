//! Binding, the router with its limits, and graceful shutdown: stop accepting, end live
//! streams, let requests in flight finish, then drain the sequencer (everything acknowledged
//! is committed). Connections and their limits (header read and idle timeouts, the connection
//! cap) are in `conn.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::auth::{ReadAuth, require_read_token};
use super::conn::{self, ConnLimits};
use super::error::{json_errors, not_found};
use super::options::ServeOptions;
use super::state::AppState;
use super::{
    BODY_BYTES_MAX, blobs, blobs_gc, campaigns, dispatch, events, evidence, openapi, ops, projections,
    proofs, stream, tiles, unread_body,
};
use crate::cosigning::Cosigning;
use crate::ledger::Ledger;
use crate::live::LiveProjections;
use crate::store::StoreError;

/// The least header read or idle timeout taken (zero would close every connection at once).
const MIN_TIMEOUT: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Witnesses(#[from] crate::cosigning::ConfigError),
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    state: AppState,
    shutdown: watch::Sender<bool>,
    limits: ConnLimits,
}

impl Server {
    /// Binds `options.listen` and brings the live projections up to the head.
    pub async fn bind(ledger: Ledger, mut options: ServeOptions) -> Result<Server, ServeError> {
        let limits = ConnLimits {
            header_read_timeout: options.header_read_timeout.max(MIN_TIMEOUT),
            idle_timeout: options.idle_timeout.max(MIN_TIMEOUT),
            connections_max: options.connections_max,
        }
        .fitted_to_descriptors();
        // A live stream that is read is never idle: it writes at least twice per idle timeout.
        options.heartbeat = options.heartbeat.min(limits.idle_timeout / 2).max(MIN_TIMEOUT / 2);
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Bind { addr: options.listen, source })?;
        let addr = listener.local_addr()?;
        let cosigning = Cosigning::new(options.witnesses.clone(), options.witness_quorum)?;
        let live = LiveProjections::start(&ledger).await?;
        let read_auth = ReadAuth {
            required: options.require_read_token || !addr.ip().is_loopback(),
            file_tokens: options.read_tokens.iter().map(|t| crate::tokens::hash(t)).collect(),
            store: ledger.store().clone(),
        };
        let (shutdown, stopping) = watch::channel(false);
        let state = AppState::new(ledger, live, options, read_auth, stopping.clone(), cosigning);
        // Witnesses are asked from now on; they stop with the server.
        state.cosigning.start(&state.ledger, stopping);
        let router = router(state.clone());
        Ok(Server { listener, addr, router, state, shutdown, limits })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR:PORT` as bound.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The connection limits as applied (the cap fitted to the descriptor limit).
    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    /// Whether reads need a bearer token.
    pub fn reads_need_token(&self) -> bool {
        self.state.read_auth.required
    }

    /// Serves until `signal` resolves, then shuts down gracefully and drains the ledger.
    pub async fn run(self, signal: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let Server { listener, router, state, shutdown, limits, .. } = self;
        let serve = conn::serve(listener, router, limits, state.metrics.clone(), state.shutdown.clone());
        tokio::pin!(serve);
        tokio::select! {
            () = &mut serve => {}
            () = signal => {
                shutdown.send_replace(true);
                if tokio::time::timeout(state.options.shutdown_grace, &mut serve).await.is_err() {
                    tracing::warn!("connections still open after the shutdown grace period; closing them");
                }
            }
        }
        // Whatever was acknowledged is committed; whatever is queued is sequenced now.
        state.ledger.shutdown().await;
        Ok(())
    }
}

fn router(state: AppState) -> Router {
    let auth = from_fn_with_state(state.read_auth.clone(), require_read_token);
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.options.request_timeout);
    Router::new()
        .route("/v1/events", get(events::list).route_layer(auth.clone()).post(events::append))
        .route("/v1/events/{digest}", get(events::by_digest).route_layer(auth.clone()))
        .route("/v1/checkpoint", get(proofs::checkpoint).route_layer(auth.clone()))
        .route("/checkpoint", get(proofs::cosigned_checkpoint).route_layer(auth.clone()))
        .route("/v1/proof/inclusion", get(proofs::inclusion).route_layer(auth.clone()))
        .route("/v1/proof/consistency", get(proofs::consistency).route_layer(auth.clone()))
        // C2SP tlog-tiles: the tree for any tlog client, and for copying to static storage.
        .route("/tile/{*path}", get(tiles::tile).route_layer(auth.clone()))
        .route("/v1/projections/{name}", get(projections::projection).route_layer(auth.clone()))
        .route("/v1/audit", get(projections::audit).route_layer(auth.clone()))
        // Slugs may hold `/`: one wildcard route for `{slug}` and `{slug}/bundle`.
        .route("/v1/audit/{*path}", get(projections::audit_path).route_layer(auth.clone()))
        .route("/v1/checkpoints", get(proofs::checkpoints).route_layer(auth.clone()))
        // Run ids may hold `/`: one wildcard route for `{run}` and `{run}/diff`.
        .route("/v1/campaigns/{*path}", get(campaigns::campaign_path).route_layer(auth.clone()))
        .route("/v1/queue", get(projections::queue).route_layer(auth.clone()))
        .route("/v1/gpus", get(projections::gpus).route_layer(auth.clone()))
        .route("/v1/dispatch", post(dispatch::dispatch))
        .route("/v1/evidence/{digest}/sync", post(evidence::sync))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(ops::metrics).route_layer(auth.clone()))
        .route("/healthz", get(ops::healthz))
        // The dashboard: HTML pages over the same read model, behind the same read auth.
        .merge(crate::web::router(state.clone()))
        .layer(timeout)
        // Live streams last as long as the subscriber stays.
        .route("/v1/stream", get(stream::stream).route_layer(auth.clone()))
        // A collection walks the whole store: it may take longer than a request may.
        .route("/v1/blobs/gc", post(blobs_gc::gc))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(BODY_BYTES_MAX))
        // Blobs stream up to the evidence store's own limit (4 GiB by default), for as long as
        // bytes keep moving (the connection's idle timeout ends a stalled one): outside the
        // body limit and the request timeout above.
        .route("/v1/blobs/{blake3}", get(blobs::get).head(blobs::head).route_layer(auth).put(blobs::put))
        .layer(map_response(json_errors))
        .layer(from_fn_with_state(state.clone(), ops::track_requests))
        // Any answer given before the body was read to its end says `Connection: close`.
        .layer(from_fn(unread_body::close_when_unread))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

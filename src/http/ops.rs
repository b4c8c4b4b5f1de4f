//! Operations: `GET /healthz` and `GET /metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, RETRY_AFTER_UNAVAILABLE_S};
use super::state::AppState;
use super::wire::{ErrorBody, Health};

/// Health: the server answers, and its ledger reaches its store.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "The store is failing: appends are refused until it recovers", body = Health,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let size = state.ledger.head().borrow().size;
    let health =
        |word: &str| Json(Health { status: word.to_owned(), size, origin: state.ledger.origin().to_owned() });
    if state.ledger.healthy() {
        (StatusCode::OK, health("ok")).into_response()
    } else {
        // Load balancers and clients back off for as long as appends would be refused.
        let retry = [(header::RETRY_AFTER, RETRY_AFTER_UNAVAILABLE_S.to_string())];
        (StatusCode::SERVICE_UNAVAILABLE, retry, health("store_failing")).into_response()
    }
}

/// Prometheus metrics: appends, batch sizes, commit latency, rejections by reason, subscribers.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.registry)
        .map_err(|e| ApiError::internal("metrics", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text))
}

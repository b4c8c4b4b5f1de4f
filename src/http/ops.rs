//! Operations: `GET /healthz` and `GET /metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::error::ApiError;
use super::state::AppState;
use super::wire::{ErrorBody, Health};

/// Health: the server answers, and its ledger reaches its store.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "The store is failing: appends are refused until it recovers", body = Health),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let size = state.ledger.head().borrow().size;
    let (status, word) = if state.ledger.healthy() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store_failing")
    };
    (status, Json(Health { status: word.to_owned(), size, origin: state.ledger.origin().to_owned() }))
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

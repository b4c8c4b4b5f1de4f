//! `GET /v1/checkpoint`, `GET /v1/proof/inclusion`, `GET /v1/proof/consistency`: what a
//! client needs to check, without trusting the server, that a record is in the log and that
//! the log only grew.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{Query, Seq, seq};
use super::state::AppState;
use super::wire::{ConsistencyProofSchema, ErrorBody, InclusionProofSchema};
use crate::proof::{ConsistencyProof, InclusionProof};

/// The latest signed checkpoint.
///
/// A C2SP tlog-checkpoint signed note: origin, tree size and base64 root, a blank line, and
/// the ledger's signature line. Check it with the ledger's verifier key.
#[utoipa::path(
    get,
    path = "/v1/checkpoint",
    tag = "proofs",
    responses(
        (status = 200, description = "The signed note", content_type = "text/plain", body = String),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn checkpoint(State(state): State<AppState>) -> impl IntoResponse {
    let note = state.ledger.head().borrow().checkpoint.to_string();
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    /// The record's seq.
    #[param(value_type = u64, minimum = 0)]
    seq: Seq,
    /// The tree size of a signed checkpoint (default: the latest).
    #[param(value_type = Option<u64>, minimum = 0)]
    size: Option<Seq>,
}

/// Inclusion of record `seq` in the tree of the checkpoint signed at `size`.
#[utoipa::path(
    get,
    path = "/v1/proof/inclusion",
    tag = "proofs",
    params(InclusionParams),
    responses(
        (status = 200, description = "The proof and the checkpoint it verifies against", body = InclusionProofSchema),
        (status = 400, description = "Bad parameters, or seq not below size", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No checkpoint was signed at that size", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn inclusion(
    State(state): State<AppState>,
    Query(q): Query<InclusionParams>,
) -> Result<Json<InclusionProof>, ApiError> {
    Ok(Json(crate::proof::inclusion(state.ledger.store(), q.seq.0, seq(q.size)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older tree size.
    #[param(value_type = u64, minimum = 0)]
    old: Seq,
    /// The tree size of a signed checkpoint, not below `old`.
    #[param(value_type = u64, minimum = 0)]
    new: Seq,
}

/// Consistency of the tree of size `old` with the checkpoint signed at `new`.
#[utoipa::path(
    get,
    path = "/v1/proof/consistency",
    tag = "proofs",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The proof, both roots, and the checkpoint signed at `new`", body = ConsistencyProofSchema),
        (status = 400, description = "Bad parameters, or old above new", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No checkpoint was signed at `new`", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn consistency(
    State(state): State<AppState>,
    Query(q): Query<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    Ok(Json(crate::proof::consistency(state.ledger.store(), q.old.0, q.new.0).await?))
}

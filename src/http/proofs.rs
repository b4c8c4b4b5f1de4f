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
use super::wire::{
    CHECKPOINTS_PAGE_MAX, CheckpointEntry, CheckpointList, ConsistencyProofSchema, ErrorBody,
    InclusionProofSchema,
};
use crate::proof::{ConsistencyProof, InclusionProof};

/// The latest signed checkpoint.
///
/// A C2SP tlog-checkpoint signed note: origin, tree size and base64 root, a blank line, and
/// the ledger's signature line. Check it with the ledger's verifier key. When the server asks
/// witnesses (`--witness`), the note also carries the `cosignature/v1` lines of those that
/// have cosigned this checkpoint yet (possibly none: the head is served as soon as it is signed).
#[utoipa::path(
    get,
    path = "/v1/checkpoint",
    tag = "proofs",
    responses(
        (status = 200, description = "The signed note", content_type = "text/plain", body = String),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn checkpoint(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (size, note) = {
        let head = state.ledger.head();
        let head = head.borrow();
        (head.size, head.checkpoint.to_string())
    };
    let (note, _) = state.cosigning.cosigned_note(state.ledger.store(), size, &note).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

/// The latest checkpoint cosigned by the witness quorum (C2SP tlog-tiles' `/checkpoint`).
///
/// The latest signed checkpoint that carries valid `cosignature/v1` lines from at least
/// `--witness-quorum` of the server's witnesses, with those lines: what a C2SP client that
/// requires witnesses accepts. It may be older than `/v1/checkpoint`'s while witnesses catch
/// up. A server without witnesses serves its latest checkpoint.
#[utoipa::path(
    get,
    path = "/checkpoint",
    tag = "proofs",
    responses(
        (status = 200, description = "The signed, cosigned note", content_type = "text/plain", body = String),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 503, description = "No checkpoint has the quorum's cosignatures yet", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = []))
)]
pub async fn cosigned_checkpoint(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let cosigning = &state.cosigning;
    let note = if cosigning.quorum() == 0 {
        let (size, note) = {
            let head = state.ledger.head();
            let head = head.borrow();
            (head.size, head.checkpoint.to_string())
        };
        cosigning.cosigned_note(state.ledger.store(), size, &note).await?.0
    } else {
        cosigning.latest_with_quorum(state.ledger.store()).await?.ok_or_else(|| {
            ApiError::unavailable(format!(
                "no checkpoint is cosigned by {} of the {} witnesses yet",
                cosigning.quorum(),
                cosigning.witnesses().len()
            ))
        })?
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsParams {
    /// The smallest tree size to list (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    from: Option<Seq>,
    /// Most checkpoints in the page (default and maximum 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The signed checkpoints, ascending by tree size: the sizes a consistency or inclusion proof
/// can be asked against.
#[utoipa::path(
    get,
    path = "/v1/checkpoints",
    tag = "proofs",
    params(CheckpointsParams),
    responses(
        (status = 200, description = "A page of signed checkpoints", body = CheckpointList),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn checkpoints(
    State(state): State<AppState>,
    Query(q): Query<CheckpointsParams>,
) -> Result<Json<CheckpointList>, ApiError> {
    let limit = q.limit.unwrap_or(CHECKPOINTS_PAGE_MAX);
    if !(1..=CHECKPOINTS_PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!("limit {limit}: must be from 1 to {CHECKPOINTS_PAGE_MAX}"),
        ));
    }
    let from = seq(q.from).unwrap_or(0);
    // One more than asked says whether another page follows.
    let mut rows = state.ledger.store().checkpoints(from, limit + 1).await?;
    let next = (rows.len() > limit as usize).then(|| rows[limit as usize].size);
    rows.truncate(limit as usize);
    Ok(Json(CheckpointList { checkpoints: rows.iter().map(CheckpointEntry::from_row).collect(), next }))
}

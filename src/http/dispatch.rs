//! `POST /v1/dispatch`: a signed `dispatch.requested` in, the gate's `dispatch.decided` out.
//! The sequencer decides inside the batch and appends the decision right after the request
//! (the record at the request's seq + 1), and hands it back in the request's ack; a resend's
//! decision is read from the store.

use assay_events::EventType;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::events::{ack_body, append_items};
use super::extract::JsonBytes;
use super::state::AppState;
use super::wire::{DispatchResponse, EnvelopeSchema, ErrorBody};
use crate::ledger::Incoming;
use crate::view::RecordView;

/// Ask the dispatch gate.
///
/// The body is one DSSE envelope of type `dispatch.requested` signed by a dispatcher. The
/// ledger appends it and its decision (`dispatch.decided`, accepted or refused with reasons)
/// and returns both. 201 for a new request; 200 for an identical resend.
#[utoipa::path(
    post,
    path = "/v1/dispatch",
    tag = "dispatch",
    request_body(content = EnvelopeSchema, content_type = "application/json"),
    responses(
        (status = 201, description = "Decided", body = DispatchResponse),
        (status = 200, description = "Identical resend: the stored request and decision", body = DispatchResponse),
        (status = 400, description = "Malformed JSON (a key twice included), envelope (over 8 signatures, a keyid twice) or event (a control character or over-long identifier, a time outside 1970–2261)", body = ErrorBody),
        (status = 401, description = "A signature by an unknown or revoked key, or one that does not verify (every signature is checked)", body = ErrorBody),
        (status = 403, description = "The key is not a dispatcher", body = ErrorBody),
        (status = 409, description = "(source, id) already names other payload bytes or other signatures", body = ErrorBody),
        (status = 413, description = "Body over 4 MiB", body = ErrorBody),
        (status = 408, description = "Over the request time limit; the append may still commit: resend it (identical resends are idempotent)", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json (`; charset=utf-8` may follow)", body = ErrorBody),
        (status = 422, description = "Not a dispatch.requested, schema violation or wrong subject", body = ErrorBody),
        (status = 429, description = "The signing key's rate limit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Shutting down, or the store failed: nothing was acknowledged; resend after Retry-After (identical resends are idempotent)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn dispatch(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<DispatchResponse>), ApiError> {
    let outcome = append_items(&state, vec![Incoming::Json(body.to_vec())], |prepared| {
        match prepared.first().map(|p| (p.event.event_type(), p.event.ty.as_str())) {
            Some((Some(EventType::DispatchRequested), _)) => Ok(()),
            other => Err(ApiError {
                index: Some(0),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not_a_dispatch_request",
                    format!(
                        "POST /v1/dispatch takes a dispatch.requested event, got {}",
                        other.map_or("none", |(_, ty)| ty)
                    ),
                )
            }),
        }
    })
    .await?;
    let ack = outcome
        .acks
        .first()
        .ok_or_else(|| ApiError::internal("no_ack", "the ledger acknowledged nothing"))?;
    let digest = ack.digest.to_hex();
    let no_decision = || {
        ApiError::internal("no_decision", format!("the ledger recorded no decision after seq {}", ack.seq))
    };
    // The ack carries the decision the sequencer appended in the same batch; only a resend's
    // decision, committed earlier, is read back from the store.
    let view = match &ack.decision {
        Some(decided) => {
            if decided.seq != ack.seq + 1 || decided.event_type() != Some(EventType::DispatchDecided) {
                return Err(no_decision());
            }
            RecordView::of(decided)?
        }
        None => {
            let stored = state.ledger.store().records(ack.seq + 1, 1).await?;
            let stored = stored
                .first()
                .filter(|r| r.seq == ack.seq + 1 && r.event_type() == Some(EventType::DispatchDecided))
                .ok_or_else(no_decision)?;
            RecordView::of_stored(stored)?
        }
    };
    let event: serde_json::Value = serde_json::from_str(view.event.get()).unwrap_or_default();
    let data = &event["data"];
    if data["request"].as_str() != Some(digest.as_str()) {
        return Err(no_decision());
    }
    let accepted = data["accepted"].as_bool().unwrap_or(false);
    let reasons = data["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let status = if ack.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(DispatchResponse {
            request: ack_body(ack),
            accepted,
            reasons,
            decision: view,
            checkpoint: outcome.checkpoint.to_string(),
        }),
    ))
}

//! `POST /v1/events`, `GET /v1/events`, `GET /v1/events/{digest}`.

use std::collections::BTreeMap;

use assay_events::Hash32;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{JsonBytes, Path, Query, Seq, seq};
use super::state::AppState;
use super::wire::{AckBody, AppendRequest, AppendResponse, ErrorBody, EventsPage};
use crate::ledger::{AppendOutcome, Incoming, Prepared};
use crate::view::RecordView;

/// Envelopes in one request at most.
pub const ENVELOPES_MAX: usize = 1000;
/// Records per page at most.
pub const PAGE_MAX: u32 = 1000;
const PAGE_DEFAULT: u32 = 100;

/// The envelopes of a request body: one envelope, or `{"envelopes":[…]}`, as raw JSON.
pub fn envelopes_of(body: &[u8]) -> Result<Vec<Incoming>, ApiError> {
    let malformed =
        |e: serde_json::Error| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"));
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(body).map_err(malformed)?;
    // Strict JSON: a key twice (`{"envelopes":[A],"envelopes":[B]}`) would mean two things.
    assay_events::json::check_unique_keys(body).map_err(malformed)?;
    let Some(list) = top.get("envelopes") else {
        return Ok(vec![Incoming::Json(body.to_vec())]);
    };
    if top.len() != 1 {
        return Err(ApiError::bad_request(
            "malformed_json",
            "a batch is {\"envelopes\":[…]} with no other field",
        ));
    }
    let list: Vec<&RawValue> = serde_json::from_str(list.get()).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("envelopes must be an array of envelopes: {e}"))
    })?;
    if list.is_empty() {
        return Err(ApiError::bad_request("empty_batch", "envelopes is empty"));
    }
    if list.len() > ENVELOPES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_envelopes",
            format!("a request holds {} envelopes; the limit is {ENVELOPES_MAX}", list.len()),
        ));
    }
    Ok(list.into_iter().map(|raw| Incoming::Json(raw.get().as_bytes().to_vec())).collect())
}

/// Checks, runs `check` on the checked envelopes, rate-limits and appends; the outcome once
/// committed.
pub async fn append_items(
    state: &AppState,
    items: Vec<Incoming>,
    check: impl FnOnce(&[Prepared]) -> Result<(), ApiError>,
) -> Result<AppendOutcome, ApiError> {
    let prepared = state.ledger.prepare(items).await?;
    check(&prepared)?;
    if let Some(limiter) = &state.limiter
        && let Err(e) = limiter.charge(&prepared)
    {
        state.metrics.rate_limited.inc();
        return Err(e);
    }
    let rx = state.ledger.submit(prepared).await?;
    Ok(rx.await.map_err(|_| ApiError::unavailable("the ledger is shutting down"))??)
}

pub fn ack_body(ack: &crate::ledger::Ack) -> AckBody {
    AckBody { seq: ack.seq, digest: ack.digest.to_hex(), existed: ack.existed }
}

/// Append signed events.
///
/// One DSSE envelope, or `{"envelopes":[…]}` with up to 1000, appended all-or-nothing: one bad
/// envelope refuses the request and stores none of it. 201 once committed and covered by the
/// returned checkpoint; 200 when every envelope was already stored with identical bytes
/// and signatures (the same records come back).
///
/// JSON is strict: no object may hold a key twice, in the body or in the signed payload at
/// any depth. An envelope has 1 to 8 signatures by distinct keys, each verifying under a
/// registered key. CloudEvents `id`, `source`, `type` and `subject` hold no control
/// characters and are at most 256, 256, 128 and 256 characters; `time` is RFC 3339 in the
/// years 1970 to 2261.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    request_body(content = AppendRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Appended", body = AppendResponse),
        (status = 200, description = "Identical resend: the records already stored", body = AppendResponse),
        (status = 400, description = "Malformed JSON (a key twice included), envelope (over 8 signatures, a keyid twice) or event (a control character or over-long identifier, a time outside 1970–2261)", body = ErrorBody),
        (status = 401, description = "A signature by an unknown or revoked key, or one that does not verify (every signature is checked)", body = ErrorBody),
        (status = 403, description = "The key lacks the role for this event type", body = ErrorBody),
        (status = 409, description = "(source, id) already names other payload bytes or other signatures", body = ErrorBody),
        (status = 413, description = "Body over 4 MiB, more than 1000 envelopes, or a payload over 1 MiB", body = ErrorBody),
        (status = 408, description = "Over the request time limit; the append may still commit: resend it (identical resends are idempotent)", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json (`; charset=utf-8` may follow)", body = ErrorBody),
        (status = 422, description = "Schema violation, wrong subject, or key state", body = ErrorBody),
        (status = 429, description = "The signing key's rate limit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Shutting down, or the store failed: nothing was acknowledged; resend after Retry-After (identical resends are idempotent)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn append(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendResponse>), ApiError> {
    let items = envelopes_of(&body)?;
    let outcome = append_items(&state, items, |_| Ok(())).await?;
    let status = if outcome.acks.iter().all(|a| a.existed) { StatusCode::OK } else { StatusCode::CREATED };
    let records = outcome.acks.iter().map(ack_body).collect();
    Ok((status, Json(AppendResponse { records, checkpoint: outcome.checkpoint.to_string() })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// First seq (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    from: Option<Seq>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only this event type (no control characters, at most 128 characters).
    #[serde(rename = "type")]
    #[param(rename = "type", max_length = 128, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    ty: Option<String>,
    /// Only this subject, e.g. `run/r1` (no control characters, at most 256 characters).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    subject: Option<String>,
}

/// Records in seq order, filtered by type and subject, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(ListParams),
    responses(
        (status = 200, description = "A page; follow `next` for the rest", body = EventsPage),
        (status = 400, description = "Bad query parameters (a `type` or `subject` with a control character, or too long)", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<Json<EventsPage>, ApiError> {
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be 1 to {PAGE_MAX}, got {limit}"),
        ));
    }
    let from = seq(q.from).unwrap_or(0);
    let page =
        state.ledger.store().records_filtered(from, limit, q.ty.as_deref(), q.subject.as_deref()).await?;
    let next = match page.last() {
        Some(last) if page.len() == limit as usize => Some(last.seq + 1),
        _ => None,
    };
    let records = page.iter().map(RecordView::of_stored).collect::<Result<_, _>>()?;
    Ok(Json(EventsPage { records, next }))
}

/// One record by its event digest, with the verbatim envelope.
#[utoipa::path(
    get,
    path = "/v1/events/{digest}",
    tag = "events",
    params(("digest" = String, Path, description = "blake3 of the payload, 64 hex characters", pattern = "^[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The record", body = crate::view::RecordView),
        (status = 400, description = "Not a 64-character hex digest", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No record with this digest", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn by_digest(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Json<RecordView>, ApiError> {
    let hash = Hash32::from_hex(&digest)
        .map_err(|e| ApiError::bad_request("bad_digest", format!("digest {digest:?}: {e}")))?;
    let record = state
        .ledger
        .store()
        .record_by_digest(&hash)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no record with digest {digest}")))?;
    Ok(Json(RecordView::of_stored(&record)?))
}

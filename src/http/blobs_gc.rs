//! `POST /v1/blobs/gc`: retention through the server (`crate::blobs::gc`), for a lab whose
//! ledger only the server opens. An admin's request: signed like an upload
//! (`crate::blobs::signed::gc_message`, over the body, which names the time it was signed), by
//! a registered, live key holding the admin role. Cited blobs are never removed.

use assay_events::roles::Role;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::blobs::authorize_signed;
use super::error::ApiError;
use super::extract::JsonBytes;
use super::state::AppState;
use super::wire::{BlobGcBody, BlobGcItem, BlobGcRequest, ErrorBody};
use crate::blobs::gc::{self, Removal};
use crate::blobs::{BlobName, cited};

/// Items listed in a response at most (the counts cover every one).
const LISTED_MAX: usize = 10_000;
/// How far the request's `at_s` may be from the server's clock.
const SKEW_S: i64 = 300;

/// Collect the evidence blobs no event cites.
///
/// Removes (with `dry_run`, only lists) every stored blob that no event of the log cites and
/// that was stored more than `older_than_s` seconds ago, and upload files a crash left as old.
/// Authorized by `Assay-Signature: <keyid> <base64>`, the Ed25519 signature of
/// `assay blob gc v1\n` followed by the request body's bytes, by a registered, unrevoked key
/// holding the admin role; `at_s` must be within 5 minutes of the server's clock.
#[utoipa::path(
    post,
    path = "/v1/blobs/gc",
    tag = "evidence",
    params(
        ("Assay-Signature" = String, Header, description = "<keyid> <base64 Ed25519 signature of \"assay blob gc v1\\n\" + the body>"),
    ),
    request_body(content = BlobGcRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What was removed (or would be, with dry_run)", body = BlobGcBody),
        (status = 400, description = "A bad body, or older_than_s under 60", body = ErrorBody),
        (status = 401, description = "No signature, an unknown or revoked key, a signature that does not verify, or an at_s too far from the server's clock", body = ErrorBody),
        (status = 403, description = "The key does not hold the admin role", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The store failed, or the server keeps no evidence store", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn gc(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<Json<BlobGcBody>, ApiError> {
    let needs = "a collection needs Assay-Signature: <keyid> <base64 signature of \"assay blob gc v1\\n\" + the body>";
    let message = crate::blobs::signed::gc_message(&body);
    authorize_signed(&state, &headers, &message, needs, "a blob collection", &[Role::Admin])?;
    let request: BlobGcRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("bad_request", e.to_string()))?;
    let now_ns = crate::clock::now_ns();
    if request.at_s.abs_diff(now_ns / 1_000_000_000) > SKEW_S as u64 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_request",
            format!(
                "at_s {} is more than {SKEW_S} s from the server's clock: sign the request anew",
                request.at_s
            ),
        ));
    }
    let min_s = gc::OLDER_THAN_MIN.as_secs();
    if request.older_than_s < min_s {
        return Err(ApiError::bad_request(
            "bad_request",
            format!(
                "older_than_s {} is under {min_s}: an upload whose event is not appended yet would be removed",
                request.older_than_s
            ),
        ));
    }
    let blobs = state
        .options
        .blobs
        .clone()
        .ok_or_else(|| ApiError::unavailable("this server keeps no evidence store"))?;
    // The cutoff is fixed before the cited names are read (see `crate::blobs::gc`).
    let older_than_ns = i64::try_from(request.older_than_s.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
    let cutoff_ns = now_ns.saturating_sub(older_than_ns);
    let cited: std::collections::BTreeSet<BlobName> =
        cited::cited(state.ledger.store()).await?.into_keys().collect();
    let listed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = listed.clone();
    let total = gc::collect(&blobs, cited, cutoff_ns, request.dry_run, move |removal| {
        let mut list = into.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() < LISTED_MAX {
            list.push(item(removal));
        }
        Ok(())
    })
    .await?;
    let removed = std::mem::take(&mut *listed.lock().unwrap_or_else(|p| p.into_inner()));
    if !request.dry_run {
        tracing::info!(files = total.files, bytes = total.bytes, "evidence blobs collected");
    }
    Ok(Json(BlobGcBody { dry_run: request.dry_run, removed, files: total.files, bytes: total.bytes }))
}

/// The response's line for one removal (a leftover file by its name only: the server's
/// folders are not the client's business).
fn item(removal: &Removal) -> BlobGcItem {
    match removal {
        Removal::Blob { name, bytes } => {
            BlobGcItem { name: name.to_hex(), bytes: *bytes, kind: "blob".into() }
        }
        Removal::Part { path, bytes } => BlobGcItem {
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            bytes: *bytes,
            kind: "part".into(),
        },
    }
}

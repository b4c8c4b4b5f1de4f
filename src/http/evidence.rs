//! `POST /v1/evidence/{digest}/sync`: asks the ledger to check the evidence store again for the
//! files of one `evidence.captured` and, when every one is there, to record `evidence.synced`
//! (`crate::ledger::evidence_sync`), which the evidence gate reads. For files put after the
//! event was appended; an `evidence.captured` whose files were uploaded first gets the fact
//! when it is appended.

use assay_events::Hash32;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::blobs::authorize_signed;
use super::error::ApiError;
use super::extract::Path;
use super::state::AppState;
use super::wire::{ErrorBody, EvidenceSyncBody};
use crate::blobs::signed;
use crate::ledger::SyncError;

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> ApiError {
        match e {
            SyncError::NotFound(_) => ApiError::not_found(e.to_string()),
            SyncError::NotEvidence { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_evidence", e.to_string())
            }
            SyncError::FilesMissing { .. } => {
                ApiError::new(StatusCode::CONFLICT, "files_missing", e.to_string())
            }
            SyncError::Append(a) => ApiError::from(a),
            SyncError::NoEvidenceStore => ApiError::unavailable(e.to_string()),
            other => ApiError::unavailable(other.to_string()),
        }
    }
}

/// Record that an evidence's files are stored.
///
/// Looks up every file the `evidence.captured` with this event digest lists in the evidence
/// store (each under its blake3, with its recorded size) and, when all are there, has the ledger
/// append `evidence.synced` for it. Idempotent: a fact already recorded is returned (200).
/// Authorized like an upload: `Assay-Signature: <keyid> <base64>`, the Ed25519 signature of
/// `assay evidence sync v1\n<digest>\n` by a registered, unrevoked key holding the worker or
/// runner role.
#[utoipa::path(
    post,
    path = "/v1/evidence/{digest}/sync",
    tag = "evidence",
    params(
        ("digest" = String, Path, description = "Event digest of an evidence.captured, 64 lower-case hex characters", pattern = "^[0-9a-f]{64}$"),
        ("Assay-Signature" = String, Header, description = "<keyid> <base64 Ed25519 signature of \"assay evidence sync v1\\n<digest>\\n\">"),
    ),
    responses(
        (status = 201, description = "evidence.synced appended", body = EvidenceSyncBody),
        (status = 200, description = "Already recorded; nothing was appended", body = EvidenceSyncBody),
        (status = 400, description = "Not an event digest", body = ErrorBody),
        (status = 401, description = "No signature, an unknown or revoked key, or a signature that does not verify", body = ErrorBody),
        (status = 403, description = "The key holds neither the worker nor the runner role", body = ErrorBody),
        (status = 404, description = "No event with this digest", body = ErrorBody),
        (status = 409, description = "Files it lists are not in the evidence store (named, with the count); nothing was appended", body = ErrorBody),
        (status = 422, description = "The event is not an evidence.captured", body = ErrorBody),
        (status = 503, description = "The store failed, or the server keeps no evidence store; nothing was appended", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<EvidenceSyncBody>), ApiError> {
    let evidence = Hash32::from_hex(&digest).ok().filter(|h| h.to_hex() == digest).ok_or_else(|| {
        ApiError::bad_request("bad_digest", format!("{digest:?} is not 64 lower-case hex characters"))
    })?;
    let needs = "a sync needs Assay-Signature: <keyid> <base64 signature of \"assay evidence sync v1\\n<digest>\\n\">";
    authorize_signed(
        &state,
        &headers,
        &signed::sync_message(&digest),
        needs,
        &format!("the sync of {digest}"),
        assay_events::EventType::EvidenceCaptured.allowed_roles(),
    )?;
    let synced = state.ledger.sync_evidence(evidence).await?;
    let status = if synced.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(EvidenceSyncBody {
            evidence: digest,
            seq: synced.seq,
            digest: synced.digest.to_hex(),
            files: synced.files,
            existed: synced.existed,
        }),
    ))
}

//! `PUT|GET|HEAD /v1/blobs/{blake3}`: the evidence store (`crate::blobs`) over HTTP.
//!
//! An upload is authorized by a producer's signature over the blob's name
//! (`crate::blobs::signed`; the server has no write tokens: every write it takes is signed by a
//! registered key), streamed into a [`BlobWriter`](crate::blobs::BlobWriter) a frame at a time
//! and kept only if the bytes hash to the name. Reads sit behind the read-token middleware like
//! every other read and stream a chunk at a time, with `ETag` (the name), `Content-Length` and
//! one `Range`. A whole-blob download is hashed as it is sent: bytes that no longer hash to the
//! name (a damaged disk) end the transfer with an error rather than arriving as the blob.

use assay_events::roles::Role;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::ApiError;
use super::extract::Path;
use super::state::AppState;
use super::wire::{BlobPutBody, ErrorBody};
use crate::blobs::{BlobError, BlobName, BlobReader, BlobState, BlobStore, Check, signed};

fn name_of(text: &str) -> Result<BlobName, ApiError> {
    BlobName::parse(text).map_err(|e| ApiError::bad_request("bad_blob_name", e.to_string()))
}

fn store(state: &AppState) -> Result<&BlobStore, ApiError> {
    state.options.blobs.as_ref().ok_or_else(|| ApiError::unavailable("this server keeps no evidence store"))
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> ApiError {
        match e {
            BlobError::BadName { .. } => ApiError::bad_request("bad_blob_name", e.to_string()),
            BlobError::Mismatch { .. } => ApiError::bad_request("blob_mismatch", e.to_string()),
            BlobError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "blob_too_large", e.to_string())
            }
            BlobError::Store(s) => ApiError::from(s),
            other => ApiError::internal("blob_store", other.to_string()),
        }
    }
}

/// The signer of an upload of `name`, checked against the live key registry.
fn authorize_upload(state: &AppState, headers: &HeaderMap, name: &BlobName) -> Result<(), ApiError> {
    let needs =
        "an upload needs Assay-Signature: <keyid> <base64 signature of \"assay blob v1\\n<blake3>\\n\">";
    let roles = assay_events::EventType::EvidenceCaptured.allowed_roles();
    authorize_signed(state, headers, &signed::message(name), needs, &format!("blob {name}"), roles)
}

/// The signer of `message` in `Assay-Signature`: a registered, live key holding one of `roles`
/// (for uploads and syncs, those that record evidence). `needs` says what a request without the
/// header lacks; `what` names what the signature is for.
pub(super) fn authorize_signed(
    state: &AppState,
    headers: &HeaderMap,
    message: &[u8],
    needs: &str,
    what: &str,
    roles: &[Role],
) -> Result<(), ApiError> {
    let unauthorized = |detail: String| ApiError::new(StatusCode::UNAUTHORIZED, "signature_required", detail);
    let value = headers
        .get(signed::SIGNATURE_HEADER)
        .ok_or_else(|| unauthorized(needs.to_owned()))?
        .to_str()
        .map_err(|_| unauthorized("Assay-Signature is not text".to_owned()))?;
    let (keyid, signature) = signed::parse_header(value)
        .ok_or_else(|| unauthorized("Assay-Signature is not <keyid> <base64 of 64 bytes>".to_owned()))?;
    let keys = state.ledger.keys();
    let entry = keys.live(keyid).map_err(|e| unauthorized(e.to_string()))?;
    if !entry.verifier.verify(message, &signature) {
        return Err(unauthorized(format!("the signature by {keyid} does not verify for {what}")));
    }
    if !keys.may_emit(keyid, roles) {
        let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role_required",
            format!("{keyid} holds none of the roles this needs ({}) for {what}", names.join(", ")),
        ));
    }
    Ok(())
}

/// Store one evidence blob.
///
/// The body is the blob's bytes, streamed; it must hash (blake3) to the name in the path, else
/// 400 and nothing is kept. Authorized by `Assay-Signature: <keyid> <base64>`: the Ed25519
/// signature of `assay blob v1\n<blake3>\n` by a registered, unrevoked key holding the worker
/// or runner role. A blob already stored is not read again (200).
#[utoipa::path(
    put,
    path = "/v1/blobs/{blake3}",
    tag = "evidence",
    params(
        ("blake3" = String, Path, description = "blake3 of the bytes, 64 lower-case hex characters", pattern = "^[0-9a-f]{64}$"),
        ("Assay-Signature" = String, Header, description = "<keyid> <base64 Ed25519 signature of \"assay blob v1\\n<blake3>\\n\">"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = BlobPutBody),
        (status = 200, description = "Already stored; nothing was written", body = BlobPutBody),
        (status = 400, description = "Not a blob name, or the body does not hash to it (nothing kept)", body = ErrorBody),
        (status = 401, description = "No signature, an unknown or revoked key, or a signature that does not verify", body = ErrorBody),
        (status = 403, description = "The key holds neither the worker nor the runner role", body = ErrorBody),
        (status = 413, description = "Over the server's blob size limit (4 GiB by default; nothing kept)", body = ErrorBody),
        (status = 503, description = "The store failed or the server keeps no evidence store; nothing was kept", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<BlobPutBody>), ApiError> {
    // An answer given before the body was read (already stored, refused) leaves the rest of it
    // on the connection; the router's `unread_body` layer says `Connection: close` then.
    let name = name_of(&name)?;
    authorize_upload(&state, &headers, &name)?;
    let blobs = store(&state)?;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    // A declared length over the limit is refused before a byte is read.
    if declared.is_some_and(|b| b > blobs.bytes_max()) {
        return Err(BlobError::TooLarge { bytes_max: blobs.bytes_max() }.into());
    }
    // Already stored: the upload counts as a store for retention (else its age would let
    // `evidence gc` take it before the event that cites it is appended).
    if let Some(bytes) = blobs.size(&name).await?
        && blobs.refresh(&name).await?
    {
        return Ok((StatusCode::OK, Json(BlobPutBody { blake3: name.to_hex(), bytes, existed: true })));
    }
    let mut writer = blobs.writer(Some(name)).await?;
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request("body_failed", format!("reading the body: {e}")))?;
        writer.write(&frame).await?;
    }
    let put = writer.finish().await?;
    let status = if put.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(BlobPutBody { blake3: put.name.to_hex(), bytes: put.bytes, existed: put.existed })))
}

/// A single byte range asked for, resolved against `size`: `Ok(None)` for the whole blob (no
/// `Range`, or one this server ignores: several ranges or another unit, as RFC 9110 allows),
/// `Err(())` when it cannot be satisfied (416).
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let parse = |t: &str| t.parse::<u64>().ok();
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => return Err(()),
            Some(n) => (size.saturating_sub(n), size),
            None => return Ok(None),
        },
        (false, true) => match parse(first) {
            Some(s) => (s, size),
            None => return Ok(None),
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(s), Some(l)) if l >= s => (s, l.saturating_add(1).min(size)),
            _ => return Ok(None),
        },
        (true, true) => return Ok(None),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn etag(name: &BlobName) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{name}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// The body of a download. A whole blob is hashed as it is read, and each chunk is held back
/// until the next one is read: the last is sent only once the bytes are known to hash to the
/// name, so damaged bytes end the transfer short (with an error) instead of arriving complete.
fn body(reader: BlobReader, name: BlobName, whole: bool) -> Body {
    struct Download {
        reader: BlobReader,
        check: Option<Check>,
        held: Option<Vec<u8>>,
    }
    let start = Download { reader, check: whole.then(Check::default), held: None };
    let stream = futures_util::stream::try_unfold(start, move |mut d| async move {
        loop {
            match d.reader.next_chunk().await? {
                Some(chunk) => {
                    if let Some(c) = d.check.as_mut() {
                        c.update(&chunk);
                    }
                    if let Some(previous) = d.held.replace(chunk) {
                        return Ok(Some((Bytes::from(previous), d)));
                    }
                }
                None => {
                    if let Some(BlobState::Corrupt { found, .. }) = d.check.as_ref().map(|c| c.finish(&name))
                    {
                        let found = found.map_or_else(|| "other bytes".to_owned(), |f| f.to_hex());
                        return Err(BlobError::Damaged {
                            name,
                            detail: format!("its bytes hash to {found}"),
                        });
                    }
                    return Ok(d.held.take().map(|last| (Bytes::from(last), d)));
                }
            }
        }
    });
    Body::from_stream(stream.map(|r: Result<Bytes, BlobError>| {
        r.inspect_err(|e| tracing::error!(error = %e, "a blob download ended early"))
    }))
}

/// Fetch one evidence blob.
///
/// The bytes whose blake3 is the name, streamed. One `Range: bytes=…` is honoured (206 with
/// `Content-Range`; 416 when it starts past the end); several ranges are answered with the
/// whole blob. `ETag` is the quoted name.
#[utoipa::path(
    get,
    path = "/v1/blobs/{blake3}",
    tag = "evidence",
    params(
        ("blake3" = String, Path, description = "blake3 of the bytes, 64 lower-case hex characters", pattern = "^[0-9a-f]{64}$"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. bytes=0-1023, bytes=100- or bytes=-500"),
    ),
    responses(
        (status = 200, description = "The blob", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("ETag" = String, description = "The quoted name"), ("Content-Length" = u64, description = "Bytes sent"), ("Accept-Ranges" = String, description = "bytes"))),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("ETag" = String, description = "The quoted name"), ("Content-Length" = u64, description = "Bytes sent"), ("Content-Range" = String, description = "bytes FIRST-LAST/SIZE"), ("Accept-Ranges" = String, description = "bytes"))),
        (status = 400, description = "Not a blob name", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No blob of this name is stored", body = ErrorBody),
        (status = 416, description = "The range starts past the end", body = ErrorBody,
            headers(("Content-Range" = String, description = "bytes */SIZE"))),
    ),
    security((), ("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let blobs = store(&state)?;
    let missing = || ApiError::not_found(format!("no blob {name} is stored"));
    let size = blobs.size(&name).await?.ok_or_else(missing)?;
    let (status, start, end) = match range(&headers, size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Err(()) => {
            let mut refusal = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the blob has {size} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                refusal.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(refusal);
        }
    };
    let reader = blobs.read(&name, start, end).await?.ok_or_else(missing)?;
    let mut response = (status, body(reader, name, status == StatusCode::OK)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ETAG, etag(&name));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// Whether an evidence blob is stored, and its size.
#[utoipa::path(
    head,
    path = "/v1/blobs/{blake3}",
    tag = "evidence",
    params(("blake3" = String, Path, description = "blake3 of the bytes, 64 lower-case hex characters", pattern = "^[0-9a-f]{64}$")),
    responses(
        (status = 200, description = "Stored", headers(("ETag" = String, description = "The quoted name"), ("Content-Length" = u64, description = "The blob's size"))),
        (status = 400, description = "Not a blob name (a HEAD response carries no body)", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No blob of this name is stored", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn head(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let size = store(&state)?
        .size(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no blob {name} is stored")))?;
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::ETAG, etag(&name));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, value.parse().unwrap());
        range(&h, size)
    }

    #[test]
    fn ranges() {
        assert_eq!(asked("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(asked("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(asked("bytes=-5", 100), Ok(Some((95, 100))));
        assert_eq!(asked("bytes=-500", 100), Ok(Some((0, 100))));
        assert_eq!(asked("bytes=50-500", 100), Ok(Some((50, 100))));
        assert_eq!(asked("bytes=100-", 100), Err(()));
        assert_eq!(asked("bytes=-0", 100), Err(()));
        assert_eq!(asked("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(asked("items=0-1", 100), Ok(None));
        assert_eq!(asked("bytes=9-2", 100), Ok(None));
        assert_eq!(asked("bytes=0-", 0), Err(()));
    }
}

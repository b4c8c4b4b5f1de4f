//! `GET /v1/audit/{slug}/bundle`: an artifact's offline audit bundle, the one `assay export
//! bundle` writes, as a download: a tar holding `<name>.intoto.jsonl` and its `.proof` sidecar,
//! built at the latest checkpoint and signed with the ledger's key, then streamed as the client
//! reads it. `assay verify-bundle` checks it with nothing but the ledger's public key.

pub(crate) mod tar_stream;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Path;
use super::state::AppState;
use super::wire::ErrorBody;
use crate::export::ExportError;
use crate::export::bundle::{Bundle, plan};
use tar_stream::{Entry, Tar};

/// Bytes of one bundle download at most: a bundle holds every event its verdict rests on. The
/// archive's length is known before its first byte is sent, and it is refused above this;
/// while it streams, it cannot grow past the length it declared.
const BUNDLE_BYTES_MAX: u64 = 256 << 20;

/// The file name for a slug: its `/` would make a folder inside the tar.
pub fn file_stem(slug: &str) -> String {
    slug.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// An artifact's offline audit bundle (tar of the in-toto bundle and its inclusion proofs).
#[utoipa::path(
    get,
    path = "/v1/audit/{slug}/bundle",
    tag = "projections",
    params(("slug" = String, Path, description = "The artifact's slug (a `/` in it as itself or `%2F`)")),
    responses(
        (status = 200, description = "A tar: SLUG.intoto.jsonl and SLUG.intoto.jsonl.proof; check with `assay verify-bundle`", content_type = "application/x-tar", body = Vec<u8>),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No artifact with this slug has been audited", body = ErrorBody),
        (status = 503, description = "This server holds no ledger signing key, or the store failed", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn bundle(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, ApiError> {
    if state.live.read().audit_report().artifact(&slug).is_none() {
        return Err(ApiError::not_found(format!("no artifact {slug:?}")));
    }
    let Some(key) = state.options.bundle_key.clone() else {
        return Err(ApiError::unavailable("this server was started without the ledger's signing key"));
    };
    let now_ns = crate::clock::now_ns();
    let bundle = {
        // A bundle reads the whole log (and replays it when the live state has moved past the
        // checkpoint): it shares the replay slots of `?at=`. Sending it does not.
        let _permit = state.replays.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))?;
        let live = |size: u64| state.live_at(size);
        let plan = plan(state.ledger.store(), &slug, &key.verifier(), live).await.map_err(|e| match e {
            ExportError::Store(e) => ApiError::from(e),
            // The artifact was audited a moment ago; the bundle is built from the store's checkpoint.
            ExportError::Invalid(detail) => ApiError::not_found(detail),
            other => ApiError::internal("bundle", other.to_string()),
        })?;
        Arc::new(plan.sign(&key, &crate::clock::rfc3339(now_ns)))
    };
    let stem = file_stem(&slug);
    let tar = archive(&bundle, &stem, now_ns.max(0) as u64 / 1_000_000_000)
        .map_err(|e| ApiError::internal("bundle", format!("tar: {e}")))?;
    if tar.bytes() > BUNDLE_BYTES_MAX {
        return Err(ApiError::internal(
            "bundle",
            format!(
                "the bundle has {} bytes, more than {BUNDLE_BYTES_MAX}; use `assay export bundle`",
                tar.bytes()
            ),
        ));
    }
    let disposition = format!("attachment; filename=\"{stem}.bundle.tar\"");
    let length = tar.bytes().to_string();
    // Each chunk is made from the bundle in memory when the connection asks for it: no file,
    // no blocking, and a client that stops reading holds one chunk.
    let body = Body::from_stream(futures_util::stream::iter(tar.chunks().map(|c| c.map(Bytes::from))));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, length),
        ],
        body,
    )
        .into_response())
}

/// The download: `<stem>.intoto.jsonl` and its `.proof` sidecar, modified at `mtime`.
fn archive(bundle: &Arc<Bundle>, stem: &str, mtime: u64) -> std::io::Result<Tar> {
    let name = format!("{stem}.intoto.jsonl");
    let proofs = Entry {
        name: format!("{name}.proof"),
        bytes: bundle.proof_bytes(),
        data: Box::new(std::io::Cursor::new(bundle.proofs())),
    };
    let file = Entry { name, bytes: bundle.file_bytes(), data: Box::new(Bundle::file(Arc::clone(bundle))) };
    Tar::new(vec![file, proofs], mtime)
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn slugs_become_flat_file_names() {
        assert_eq!(
            file_stem("flash-attn-repro/baseline-seqlen2k-sweep2"),
            "flash-attn-repro_baseline-seqlen2k-sweep2"
        );
        assert_eq!(file_stem("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(file_stem("a b\"c"), "a_b_c");
    }
}

//! `GET /v1/audit/{slug}/bundle`: an artifact's offline audit bundle, the one `assay export
//! bundle` writes, as a download: a tar holding `<name>.intoto.jsonl` and its `.proof` sidecar,
//! built at the latest checkpoint and signed with the ledger's key. `assay verify-bundle` checks
//! it with nothing but the ledger's public key.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Path;
use super::state::AppState;
use super::wire::ErrorBody;
use crate::export::ExportError;
use crate::export::bundle::{export_bundle_with, proof_path};

/// Bytes of one bundle download at most: a bundle holds every event its verdict rests on, and
/// the whole of it is built in memory before it is sent.
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
    // A bundle reads the whole log (and replays it when the live state has moved past the
    // checkpoint): it shares the replay slots of `?at=`.
    let _permit = state.replays.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))?;
    let dir =
        tempfile::tempdir().map_err(|e| ApiError::internal("bundle", format!("a temporary folder: {e}")))?;
    let stem = file_stem(&slug);
    let file = dir.path().join(format!("{stem}.intoto.jsonl"));
    let now = crate::clock::rfc3339(crate::clock::now_ns());
    // The live projections at the checkpoint save replaying the log; they are one clone away
    // unless a commit lands in between.
    let live = |size: u64| {
        let p = state.live.read();
        (p.seq().map(|s| s + 1) == Some(size)).then(|| p.clone())
    };
    let summary = export_bundle_with(state.ledger.store(), &slug, &key, &file, &now, live).await.map_err(
        |e| match e {
            ExportError::Store(e) => ApiError::from(e),
            // The artifact was audited a moment ago; the bundle is built from the store's checkpoint.
            ExportError::Invalid(detail) => ApiError::not_found(detail),
            other => ApiError::internal("bundle", other.to_string()),
        },
    )?;
    let mut tar = tar::Builder::new(Vec::new());
    for path in [summary.path.clone(), proof_path(&summary.path)] {
        let bytes = std::fs::read(&path)
            .map_err(|e| ApiError::internal("bundle", format!("{}: {e}", path.display())))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut head = tar::Header::new_ustar();
        head.set_size(bytes.len() as u64);
        head.set_mode(0o644);
        head.set_mtime(crate::clock::now_ns().max(0) as u64 / 1_000_000_000);
        head.set_cksum();
        tar.append_data(&mut head, &name, bytes.as_slice())
            .map_err(|e| ApiError::internal("bundle", format!("tar: {e}")))?;
    }
    let body = tar.into_inner().map_err(|e| ApiError::internal("bundle", format!("tar: {e}")))?;
    if body.len() as u64 > BUNDLE_BYTES_MAX {
        return Err(ApiError::internal(
            "bundle",
            format!(
                "the bundle has {} bytes, more than {BUNDLE_BYTES_MAX}; use `assay export bundle`",
                body.len()
            ),
        ));
    }
    let disposition = format!("attachment; filename=\"{stem}.bundle.tar\"");
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
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

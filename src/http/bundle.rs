//! `GET /v1/audit/{slug}/bundle`: an artifact's offline audit bundle, the one `assay export
//! bundle` writes, as a download: a tar holding `<name>.intoto.jsonl` and its `.proof` sidecar,
//! built at the latest checkpoint and signed with the ledger's key, then streamed as the client
//! reads it. `assay verify-bundle` checks it with nothing but the ledger's public key.
//!
//! With `?with_evidence=true` the tar also holds `<name>.intoto.jsonl.evidence.tar`, the tar
//! `assay export bundle --with-evidence` writes beside a bundle (`export::evidence_tar`): every
//! file the bundle's `evidence.captured` events cite, streamed from the evidence store a chunk
//! at a time and hashed as it goes. Unpacked, `verify-bundle` checks the evidence offline too.

pub(crate) mod tar_stream;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Path;
use super::state::AppState;
use super::wire::ErrorBody;
use crate::blobs::source::BlobSource;
use crate::export::ExportError;
use crate::export::bundle::{Bundle, plan};
use crate::export::evidence_tar::{EvidenceTar, files_of};
use tar_stream::{Entry, TRAILER_BYTES, Tar, head, padding};

/// Bytes of one bundle download at most: a bundle holds every event its verdict rests on. The
/// archive's length is known before its first byte is sent, and it is refused above this;
/// while it streams, it cannot grow past the length it declared.
const BUNDLE_BYTES_MAX: u64 = 256 << 20;

/// The query of a bundle download.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleParams {
    /// Also put in the tar `SLUG.intoto.jsonl.evidence.tar`: every evidence file the bundle's
    /// `evidence.captured` events cite (at most as many bytes as one blob may hold, the
    /// evidence store's limit; 409 when a cited file is not stored whole).
    pub with_evidence: Option<bool>,
}

/// The file name for a slug: its `/` would make a folder inside the tar.
pub fn file_stem(slug: &str) -> String {
    slug.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// An artifact's offline audit bundle (tar of the in-toto bundle and its inclusion proofs).
#[utoipa::path(
    get,
    path = "/v1/audit/{slug}/bundle",
    tag = "projections",
    params(("slug" = String, Path, description = "The artifact's slug (a `/` in it as itself or `%2F`)"), BundleParams),
    responses(
        (status = 200, description = "A tar: SLUG.intoto.jsonl and SLUG.intoto.jsonl.proof (and, with `with_evidence`, SLUG.intoto.jsonl.evidence.tar); check with `assay verify-bundle`", content_type = "application/x-tar", body = Vec<u8>),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No artifact with this slug has been audited", body = ErrorBody),
        (status = 409, description = "`with_evidence`: a cited evidence file is not stored whole (`evidence_not_synced`)", body = ErrorBody),
        (status = 422, description = "`with_evidence`: the evidence is larger than the evidence store's limit (`bundle_too_large`)", body = ErrorBody),
        (status = 503, description = "This server holds no ledger signing key (or, with `with_evidence`, no evidence store), or the store failed", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn bundle(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    params: BundleParams,
) -> Result<Response, ApiError> {
    let with_evidence = params.with_evidence.unwrap_or(false);
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
        let cited = if with_evidence {
            files_of(plan.cited().map(|(r, _)| r)).map_err(|e| ApiError::internal("bundle", e.to_string()))?
        } else {
            Vec::new()
        };
        (Arc::new(plan.sign(&key, &crate::clock::rfc3339(now_ns))), cited)
    };
    let (bundle, cited) = bundle;
    let stem = file_stem(&slug);
    let mtime = now_ns.max(0) as u64 / 1_000_000_000;
    let evidence = if with_evidence { Some(evidence_tar(&state, &cited, mtime).await?) } else { None };
    let tar = archive(&bundle, &stem, mtime, evidence.is_some())
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
    // Each chunk is made from the bundle in memory when the connection asks for it: no file,
    // no blocking, and a client that stops reading holds one chunk.
    let bundle_bytes = tar.bytes();
    let bundle_chunks = futures_util::stream::iter(tar.chunks().map(|c| c.map(Bytes::from)));
    let (length, body) = match evidence {
        None => (bundle_bytes, Body::from_stream(bundle_chunks)),
        Some(evidence) => {
            let name = format!("{stem}.intoto.jsonl.evidence.tar");
            let entry_head = head(&name, evidence.bytes(), mtime)
                .map_err(|e| ApiError::internal("bundle", format!("tar: {e}")))?;
            let tail = vec![0u8; (padding(evidence.bytes()) + TRAILER_BYTES) as usize];
            let length = bundle_bytes + entry_head.len() as u64 + evidence.bytes() + tail.len() as u64;
            use futures_util::StreamExt;
            let stream = bundle_chunks
                .chain(futures_util::stream::iter([Ok(Bytes::from(entry_head))]))
                .chain(evidence_pieces(evidence))
                .chain(futures_util::stream::iter([Ok(Bytes::from(tail))]));
            (length, Body::from_stream(stream))
        }
    };
    let length = length.to_string();
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

/// The evidence tar of the `cited` files, laid out from the server's evidence store: 409 when
/// one is not stored whole, 422 when it would be larger than one blob may be.
async fn evidence_tar(
    state: &AppState,
    cited: &[crate::export::evidence_tar::EvidenceFile],
    mtime: u64,
) -> Result<EvidenceTar, ApiError> {
    let Some(blobs) = state.options.blobs.clone() else {
        return Err(ApiError::unavailable("this server keeps no evidence store"));
    };
    let bytes_max = blobs.bytes_max();
    let tar = EvidenceTar::plan(BlobSource::Store(blobs), cited, mtime).await.map_err(|e| match e {
        ExportError::Evidence(detail) => ApiError::new(StatusCode::CONFLICT, "evidence_not_synced", detail),
        other => ApiError::internal("bundle", other.to_string()),
    })?;
    if tar.bytes() > bytes_max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bundle_too_large",
            format!(
                "the bundle's evidence has {} bytes, more than the evidence store's limit of {bytes_max}; use `assay export bundle --with-evidence`",
                tar.bytes()
            ),
        ));
    }
    Ok(tar)
}

/// The evidence tar's pieces as the connection asks for them. A blob found damaged or gone
/// while it is sent ends the body with an error: the download is then shorter than its
/// `Content-Length`, so no client takes it for whole.
fn evidence_pieces(
    tar: EvidenceTar,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some(tar), |tar| async move {
        let mut tar = tar?;
        match tar.next().await {
            Ok(Some(piece)) => Some((Ok(Bytes::from(piece)), Some(tar))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "a bundle's evidence could not be sent whole");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    })
}

/// The download: `<stem>.intoto.jsonl` and its `.proof` sidecar, modified at `mtime`; `open`:
/// without the trailer (the evidence tar follows).
fn archive(bundle: &Arc<Bundle>, stem: &str, mtime: u64, open: bool) -> std::io::Result<Tar> {
    let name = format!("{stem}.intoto.jsonl");
    let proofs = Entry {
        name: format!("{name}.proof"),
        bytes: bundle.proof_bytes(),
        data: Box::new(std::io::Cursor::new(bundle.proofs())),
    };
    let file = Entry { name, bytes: bundle.file_bytes(), data: Box::new(Bundle::file(Arc::clone(bundle))) };
    if open { Tar::open(vec![file, proofs], mtime) } else { Tar::new(vec![file, proofs], mtime) }
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

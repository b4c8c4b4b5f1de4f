//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of every route, body and error.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::wire::*;
use super::{
    blobs, blobs_gc, bundle, campaigns, dispatch, events, evidence, ops, projections, proofs, stream, tiles,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Assay",
        description = "An auditable, signed, Merkle-logged event ledger for GPU research work. \
            Writes are DSSE envelopes authorized by their signatures and the signer's roles. \
            Reads are open on loopback; beyond loopback they need a bearer token (browsers may \
            instead sign in at /login, which keeps the token in the assay_read cookie). \
            Every error is JSON {\"error\", \"detail\"}. Connections are bounded: a request's \
            head must arrive within the header read timeout (10 s by default), a connection \
            silent both ways for the idle timeout (60 s) is closed, and a server serving its \
            connection cap (1024) answers one more connection, on any route, 503 with \
            Retry-After and the error too_many_connections."
    ),
    paths(
        events::append,
        events::list,
        events::by_digest,
        stream::stream,
        proofs::checkpoint,
        proofs::cosigned_checkpoint,
        proofs::checkpoints,
        proofs::inclusion,
        proofs::consistency,
        tiles::tile,
        projections::projection,
        projections::audit,
        projections::audit_artifact,
        bundle::bundle,
        projections::queue,
        projections::gpus,
        campaigns::campaign,
        campaigns::campaign_diff,
        dispatch::dispatch,
        blobs::put,
        blobs::get,
        blobs::head,
        blobs_gc::gc,
        evidence::sync,
        openapi_json,
        ops::healthz,
        ops::metrics,
    ),
    components(schemas(
        ErrorBody,
        EnvelopeSchema,
        SignatureSchema,
        EnvelopeBatch,
        AppendRequest,
        AckBody,
        AppendResponse,
        crate::view::RecordView,
        EventsPage,
        InclusionProofSchema,
        ConsistencyProofSchema,
        CheckpointEntry,
        CheckpointList,
        ProjectionBody,
        ArtifactAudit,
        CampaignCells,
        CampaignDiffBody,
        DispatchResponse,
        Health,
        BlobPutBody,
        BlobGcRequest,
        BlobGcItem,
        BlobGcBody,
        EvidenceSyncBody,
        projections::ProjectionNameSchema,
    )),
    modifiers(&BearerScheme, &ConnectionCap),
    tags(
        (name = "events", description = "Append signed events; read and follow the log"),
        (name = "proofs", description = "Checkpoints, inclusion and consistency proofs (RFC 9162)"),
        (name = "projections", description = "State folded from the log, live or at any seq"),
        (name = "campaigns", description = "Kernel campaign runs: their cells and regression diffs"),
        (name = "dispatch", description = "The dispatch gate"),
        (name = "evidence", description = "Evidence blobs named by the blake3 of their bytes"),
        (name = "operations", description = "Health, metrics and this description"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Any route may answer 503 `too_many_connections` (with `Retry-After`) when the server is
/// serving its connection cap: said on every operation.
struct ConnectionCap;

const CAP_DETAIL: &str = "The server is serving its connection cap: error `too_many_connections`, retry after \
                          Retry-After seconds";

impl Modify for ConnectionCap {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::Header;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
        let retry_after = Header::new(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)));
        let cap = ResponseBuilder::new()
            .description(CAP_DETAIL)
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
            .header("Retry-After", retry_after)
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for op in operations.into_iter().flatten() {
                match op.responses.responses.get_mut("503") {
                    // The route's own 503 stays; the cap is one more reason for it.
                    Some(RefOr::T(own)) => {
                        own.description = format!("{}; or: {CAP_DETAIL}", own.description);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        op.responses.responses.insert("503".to_owned(), RefOr::T(cap.clone()));
                    }
                }
            }
        }
    }
}

/// The OpenAPI document, as served.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of every route, body and error.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::wire::*;
use super::{bundle, dispatch, events, ops, projections, proofs, stream};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Assay",
        description = "An auditable, signed, Merkle-logged event ledger for GPU research work. \
            Writes are DSSE envelopes authorized by their signatures and the signer's roles. \
            Reads are open on loopback; beyond loopback they need a bearer token (browsers may \
            instead sign in at /login, which keeps the token in the assay_read cookie). \
            Every error is JSON {\"error\", \"detail\"}."
    ),
    paths(
        events::append,
        events::list,
        events::by_digest,
        stream::stream,
        proofs::checkpoint,
        proofs::checkpoints,
        proofs::inclusion,
        proofs::consistency,
        projections::projection,
        projections::audit,
        projections::audit_artifact,
        bundle::bundle,
        projections::queue,
        projections::gpus,
        dispatch::dispatch,
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
        DispatchResponse,
        Health,
        projections::ProjectionName,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "events", description = "Append signed events; read and follow the log"),
        (name = "proofs", description = "Checkpoints, inclusion and consistency proofs (RFC 9162)"),
        (name = "projections", description = "State folded from the log, live or at any seq"),
        (name = "dispatch", description = "The dispatch gate"),
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

//! Projections over HTTP: `GET /v1/projections/{name}`, `/v1/audit`, `/v1/audit/{slug}`,
//! `/v1/queue`, `/v1/gpus`. The live state by default; `?at=SEQ` replays the log to SEQ.
//!
//! A projection's body is `{"seq","digest","state"}` with `state` in canonical JSON, so the
//! digest is blake3 of exactly the `state` bytes served. Bodies of the live state are rendered
//! once per seq and shared by every reader until the next commit.

use assay_projections::{ProjectionName, Projections};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{Path, Query, Seq, seq};
use super::rendered::render;
use super::state::AppState;
use super::wire::{ArtifactAudit, ErrorBody, ProjectionBody};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AtParams {
    /// The state as of this seq (records 0..=SEQ); default: the live head.
    #[param(value_type = Option<u64>, minimum = 0)]
    at: Option<Seq>,
}

/// `/v1/audit/{*path}`'s query: `at` for an artifact's audit, `with_evidence` for its bundle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPathParams {
    at: Option<Seq>,
    with_evidence: Option<bool>,
}

fn json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The state as of `at` (replayed from the store, a few at a time).
async fn replayed(state: &AppState, at: u64) -> Result<Projections, ApiError> {
    let size = state.ledger.head().borrow().size;
    if at >= size {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("at {at} is past the head (the last seq is {})", size.saturating_sub(1)),
        ));
    }
    let _permit = state.replays.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))?;
    Ok(crate::replay::replay(state.ledger.store(), Some(at), |_, _| {}).await?)
}

async fn projection_body(state: &AppState, name: ProjectionName, at: Option<u64>) -> Result<Bytes, ApiError> {
    let missing = || ApiError::internal("projection", format!("projection {name} did not render"));
    if let Some(at) = at {
        let p = replayed(state, at).await?;
        return render(&p, name).ok_or_else(missing);
    }
    let cached = state.renders.get(name);
    // While the follower applies a batch, the last rendering (which names its seq) is served
    // rather than waiting for the batch.
    let (seq, body) = match (state.live.try_read(), cached) {
        (Some(p), Some((seq, body))) if p.seq() == seq => return Ok(body),
        (None, Some((_, body))) => return Ok(body),
        (Some(p), _) => (p.seq(), render(&p, name).ok_or_else(missing)?),
        (None, None) => {
            let p = state.live.read();
            (p.seq(), render(&p, name).ok_or_else(missing)?)
        }
    };
    state.renders.put(name, seq, body.clone());
    Ok(body)
}

/// One projection's state, its seq and digest.
///
/// Names: keys, queue, corpus, audit, gpus, kernels, verdicts (the audit report).
#[utoipa::path(
    get,
    path = "/v1/projections/{name}",
    tag = "projections",
    params(("name" = ProjectionNameSchema, Path, description = "The projection"), AtParams),
    responses(
        (status = 200, description = "The state", body = ProjectionBody),
        (status = 400, description = "Bad `at`", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No such projection", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn projection(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<AtParams>,
) -> Result<Response, ApiError> {
    let name = ProjectionName::parse(&name).map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(json(projection_body(&state, name, seq(q.at)).await?))
}

/// The run queue: runs by state, GPU lanes, pause and maintenance, preflights.
#[utoipa::path(
    get,
    path = "/v1/queue",
    tag = "projections",
    params(AtParams),
    responses(
        (status = 200, description = "The queue projection", body = ProjectionBody),
        (status = 400, description = "Bad `at`", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn queue(State(state): State<AppState>, Query(q): Query<AtParams>) -> Result<Response, ApiError> {
    Ok(json(projection_body(&state, ProjectionName::Queue, seq(q.at)).await?))
}

/// GPUs: telemetry, Xid history by code and severity, needs-reset.
#[utoipa::path(
    get,
    path = "/v1/gpus",
    tag = "projections",
    params(AtParams),
    responses(
        (status = 200, description = "The gpus projection", body = ProjectionBody),
        (status = 400, description = "Bad `at`", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn gpus(State(state): State<AppState>, Query(q): Query<AtParams>) -> Result<Response, ApiError> {
    Ok(json(projection_body(&state, ProjectionName::Gpus, seq(q.at)).await?))
}

/// The audit report: a verdict per claim with reasons, per artifact, and the headline.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "projections",
    params(AtParams),
    responses(
        (status = 200, description = "The audit report (the `verdicts` projection)", body = ProjectionBody),
        (status = 400, description = "Bad `at`", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn audit(State(state): State<AppState>, Query(q): Query<AtParams>) -> Result<Response, ApiError> {
    Ok(json(projection_body(&state, ProjectionName::Verdicts, seq(q.at)).await?))
}

/// One artifact's audit: whether it passes, why not, and its claims' verdicts.
#[utoipa::path(
    get,
    path = "/v1/audit/{slug}",
    tag = "projections",
    params(("slug" = String, Path, description = "The artifact's slug"), AtParams),
    responses(
        (status = 200, description = "The artifact's verdict and its claims", body = ArtifactAudit),
        (status = 400, description = "Bad `at`", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No artifact with this slug has been audited", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn audit_artifact(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<AtParams>,
) -> Result<axum::Json<ArtifactAudit>, ApiError> {
    let (seq, report) = match seq(q.at) {
        Some(at) => {
            let p = replayed(&state, at).await?;
            (p.seq(), p.audit_report())
        }
        None => {
            let p = state.live.read();
            (p.seq(), p.audit_report())
        }
    };
    let artifact =
        report.artifact(&slug).ok_or_else(|| ApiError::not_found(format!("no artifact {slug:?}")))?;
    let claims = report.claims_of(&slug).map(|c| serde_json::to_value(c).unwrap_or_default()).collect();
    Ok(axum::Json(ArtifactAudit {
        seq,
        artifact: serde_json::to_value(artifact).unwrap_or_default(),
        claims,
    }))
}

/// `/v1/audit/{*path}`: a slug may hold `/` (`flash-attn-repro/fp8-fwd`), so one route serves
/// both an artifact's audit and its `…/bundle`, with or without `%2F`. A path that is itself an
/// artifact's slug is that artifact; otherwise a path ending in `/bundle` is the bundle of the
/// slug before it.
pub async fn audit_path(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(q): Query<AuditPathParams>,
) -> Result<Response, ApiError> {
    let bundle_of = match path.strip_suffix("/bundle") {
        Some(slug) if state.live.read().audit_report().artifact(&path).is_none() => Some(slug.to_owned()),
        _ => None,
    };
    match bundle_of {
        Some(_) if q.at.is_some() => Err(ApiError::bad_request(
            "bad_parameter",
            "a bundle is built at the latest checkpoint: `at` does not apply",
        )),
        Some(slug) => {
            let params = super::bundle::BundleParams { with_evidence: q.with_evidence };
            super::bundle::bundle(State(state), Path(slug), params).await
        }
        None if q.with_evidence.is_some() => Err(ApiError::bad_request(
            "bad_parameter",
            "`with_evidence` applies to a bundle (…/bundle?with_evidence=true)",
        )),
        None => audit_artifact(State(state), Path(path), Query(AtParams { at: q.at }))
            .await
            .map(IntoResponse::into_response),
    }
}

/// The projections served (for the API description), from [`ProjectionName::ALL`].
pub struct ProjectionNameSchema;

impl utoipa::PartialSchema for ProjectionNameSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("The projections served (for the API description)."))
            .enum_values(Some(ProjectionName::names()))
            .into()
    }
}

impl utoipa::ToSchema for ProjectionNameSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "ProjectionName".into()
    }
}

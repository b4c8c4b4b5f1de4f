//! The reports on the dashboard, the same bytes `assay report` writes at the same checkpoint
//! (HTML, the self-contained document itself, not inside the dashboard's shell; `?format=md`
//! for Markdown):
//!
//! - `/artifacts/{slug}/report` ([`artifact_report`]): built at the latest checkpoint from the
//!   live projections when they are at it, else by a replay that takes one of the server's
//!   replay slots (as the audit bundle does).
//! - `/report` ([`page`]): the corpus report. Its trend needs the audit at each checkpoint, so
//!   it replays the log under a replay permit and keeps the report of the latest checkpoint:
//!   one replay per checkpoint, however many requests ask.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{Params, Viewer, WebError, given};
use crate::export::ExportError;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::report::corpus::CorpusReport;
use crate::report::{Format, artifact};

/// Bytes of one artifact report served at most: it holds every event its verdicts rest on with
/// a proof each; a larger one is for `assay report`, which writes it to a file.
const REPORT_BYTES_MAX: usize = 64 << 20;

/// The path suffix that asks for an artifact's report.
pub const SUFFIX: &str = "/report";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    format: Option<String>,
}

/// The format `?format=` names (`html`, the default, or `md`).
pub fn format_of(q: &ReportParams) -> Result<Format, WebError> {
    match given(&q.format) {
        None | Some("html") => Ok(Format::Html),
        Some("md") => Ok(Format::Md),
        Some(other) => Err(WebError::bad_request(format!("format must be html or md, got {other:?}"))),
    }
}

/// A rendered report as a response of its format's type.
fn served(format: Format, text: String) -> Response {
    let content_type = match format {
        Format::Html => "text/html; charset=utf-8",
        Format::Md => "text/markdown; charset=utf-8",
    };
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// The report of artifact `slug`, or why there is none.
pub async fn artifact_report(state: &AppState, slug: &str, format: Format) -> Result<Response, WebError> {
    let built = {
        let _permit = state.replays.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))?;
        artifact::build(state.ledger.store(), slug, |size| state.live_at(size)).await
    };
    let report = built.map_err(|e| match e {
        ExportError::Store(e) => WebError::from(e),
        ExportError::Invalid(detail) => WebError::not_found(detail),
        other => ApiError::internal("report", other.to_string()).into(),
    })?;
    let text = artifact::render(&report, format);
    if text.len() > REPORT_BYTES_MAX {
        return Err(ApiError::internal(
            "report",
            format!("the report has {} bytes, more than {REPORT_BYTES_MAX}; use `assay report`", text.len()),
        )
        .into());
    }
    Ok(served(format, text))
}

/// `/report`.
pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Params(q): Params<ReportParams>,
) -> Response {
    let format = match format_of(&q) {
        Ok(format) => format,
        Err(e) => return viewer.show(Err(e)),
    };
    match corpus(&state).await {
        Ok(r) => served(format, r.render(format)),
        Err(e) => viewer.show(Err(e)),
    }
}

async fn corpus(state: &AppState) -> Result<Arc<CorpusReport>, WebError> {
    // Held while building, so concurrent requests wait for the one replay.
    let mut kept = state.corpus_report.lock().await;
    let size = state.ledger.head().borrow().size;
    if let Some((at, r)) = kept.as_ref()
        && *at == size
    {
        return Ok(r.clone());
    }
    let _permit = state.replays.acquire().await.map_err(|_| WebError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        detail: "the server is shutting down".into(),
    })?;
    let built = CorpusReport::build(state.ledger.store())
        .await
        .map_err(|e| WebError { status: StatusCode::INTERNAL_SERVER_ERROR, detail: e.to_string() })?;
    let built = Arc::new(built);
    *kept = Some((built.size, built.clone()));
    Ok(built)
}

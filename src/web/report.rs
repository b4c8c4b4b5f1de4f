//! `/artifacts/{slug}/report`: the artifact's report, the same bytes `assay report --artifact`
//! writes at the same checkpoint (HTML; `?format=md` for Markdown). It is built at the latest
//! checkpoint from the live projections when they are at it, else by a replay that takes one
//! of the server's replay slots (as the audit bundle does).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{WebError, given};
use crate::export::ExportError;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::report::{Format, artifact};

/// Bytes of one report served at most: it holds every event its verdicts rest on with a proof
/// each; a larger one is for `assay report`, which writes it to a file.
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

/// The report of `slug`, or why there is none.
pub async fn report(state: &AppState, slug: &str, format: Format) -> Result<Response, WebError> {
    let built = {
        let _permit = state.replays.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))?;
        artifact::build(state.ledger.store(), slug, |size| state.live_at(size)).await
    };
    let report = built.map_err(|e| match e {
        ExportError::Store(e) => WebError::from(e),
        ExportError::Invalid(detail) => WebError::not_found(detail),
        other => ApiError::internal("report", other.to_string()).into(),
    })?;
    let content_type = match format {
        Format::Html => "text/html; charset=utf-8",
        Format::Md => "text/markdown; charset=utf-8",
    };
    let text = artifact::render(&report, format);
    if text.len() > REPORT_BYTES_MAX {
        return Err(ApiError::internal(
            "report",
            format!("the report has {} bytes, more than {REPORT_BYTES_MAX}; use `assay report`", text.len()),
        )
        .into());
    }
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

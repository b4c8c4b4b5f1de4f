//! `/report`: the corpus report ([`crate::report::corpus`]) at the latest signed checkpoint,
//! the same bytes `assay report --corpus` writes for that state: the HTML document itself
//! (self-contained, not inside the dashboard's shell), or Markdown with `?format=md`.
//!
//! Unlike the other pages it replays the log (its trend needs the audit at each checkpoint),
//! so it takes a permit of the server's replays and keeps the report of the latest checkpoint:
//! one replay per checkpoint, however many requests ask.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::{Params, Viewer, WebError, given};
use crate::http::state::AppState;
use crate::report::Format;
use crate::report::corpus::CorpusReport;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    format: Option<String>,
}

/// The report of the latest checkpoint, kept: (its tree size, the report).
pub type CorpusCache = tokio::sync::Mutex<Option<(u64, Arc<CorpusReport>)>>;

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Params(q): Params<ReportParams>,
) -> Response {
    let format = match given(&q.format) {
        None | Some("html") => Format::Html,
        Some("md") => Format::Md,
        Some(other) => {
            return viewer
                .show(Err(WebError::bad_request(format!("format must be html or md, got {other:?}"))));
        }
    };
    match report(&state).await {
        Ok(r) => {
            let content_type = match format {
                Format::Html => "text/html; charset=utf-8",
                Format::Md => "text/markdown; charset=utf-8",
            };
            ([(header::CONTENT_TYPE, content_type)], r.render(format)).into_response()
        }
        Err(e) => viewer.show(Err(e)),
    }
}

async fn report(state: &AppState) -> Result<Arc<CorpusReport>, WebError> {
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

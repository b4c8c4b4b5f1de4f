//! Every error the service returns: JSON `{"error","detail"}` with the right status. Bad input
//! is always a 4xx; 5xx is kept for the server's own failures.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::wire::ErrorBody;
use crate::ledger::{AppendError, RejectionClass};
use crate::proof::ProofError;
use crate::store::StoreError;

/// Seconds a client is told to wait after a 503: about how long a database restart or a
/// reconnect takes; the follower notices recovery within its poll interval.
pub const RETRY_AFTER_UNAVAILABLE_S: u64 = 1;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// For append errors: the envelope at fault.
    pub index: Option<usize>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code, detail: detail.into(), index: None, retry_after: None }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 503 with `Retry-After`: the store is failing or the server is stopping; nothing of the
    /// request was acknowledged, and a client should try again (here or at another server).
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(RETRY_AFTER_UNAVAILABLE_S),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }

    pub fn internal(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = self.code, detail = %self.detail, "request failed");
        }
        let body = ErrorBody { error: self.code.to_owned(), detail: self.detail, index: self.index };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED && self.code == "token_required" {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> ApiError {
        match &e {
            AppendError::Rejected { index, reason } => {
                let status = match reason.class() {
                    RejectionClass::BadRequest => StatusCode::BAD_REQUEST,
                    RejectionClass::Unauthorized => StatusCode::UNAUTHORIZED,
                    RejectionClass::Forbidden => StatusCode::FORBIDDEN,
                    RejectionClass::Conflict => StatusCode::CONFLICT,
                    RejectionClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    RejectionClass::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError { index: Some(*index), ..ApiError::new(status, reason.code(), e.to_string()) }
            }
            AppendError::TooManyEnvelopes { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many_envelopes", e.to_string())
            }
            // Shutting down, or the store failed: nothing of the request is acknowledged.
            _ => ApiError::unavailable(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::BadFilter { .. } => ApiError::bad_request("bad_query", e.to_string()),
            _ => ApiError::internal("storage", e.to_string()),
        }
    }
}

impl From<ProofError> for ApiError {
    fn from(e: ProofError) -> ApiError {
        match e {
            ProofError::Range(_) => ApiError::bad_request("bad_range", e.to_string()),
            ProofError::NoCheckpoint(..) => {
                ApiError::new(StatusCode::NOT_FOUND, "no_checkpoint", e.to_string())
            }
            ProofError::Store(s) => s.into(),
            _ => ApiError::internal("proof", e.to_string()),
        }
    }
}

/// The snake_case name of a status, for errors the framework produces.
fn status_code_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Rewrites error responses that are not JSON yet (from axum's extractors, tower-http's
/// limits and timeouts, 405s) into `{"error","detail"}`, keeping status and headers.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // The dashboard's error pages are HTML on purpose; only framework text is rewritten.
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        super::BODY_TOO_LARGE.to_owned()
    } else if text.is_empty() {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method".to_owned(),
            StatusCode::REQUEST_TIMEOUT => "the request took too long".to_owned(),
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        }
    } else {
        text
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        s => status_code_name(s),
    };
    let body =
        serde_json::to_vec(&ErrorBody { error: code.to_owned(), detail, index: None }).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}; see /v1/openapi.json", uri.path()))
}

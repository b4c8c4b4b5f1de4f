//! Extractors whose rejections are JSON errors with a clear detail (axum's are plain text).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Query parameters; a bad one is a 400 naming it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// Path parameters; a bad one is a 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::bad_request("bad_path", e.body_text()))
    }
}

/// A JSON request body as bytes: `Content-Type: application/json` (415 otherwise), within
/// the body limit (413 otherwise). Parsing is the handler's.
pub struct JsonBytes(pub Bytes);

/// True iff `content_type` is `application/json`, optionally with `charset=utf-8` (JSON is
/// UTF-8, RFC 8259): what OpenAPI documents for every JSON request body. Other `+json` types
/// and other charsets are 415.
pub fn is_json_content_type(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        && parts.all(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            name.trim().eq_ignore_ascii_case("charset")
                && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let mut content_types = req.headers().get_all(header::CONTENT_TYPE).iter();
        let content_type = match (content_types.next(), content_types.next()) {
            (Some(v), None) => v.to_str().ok(),
            _ => None,
        };
        if !content_type.is_some_and(is_json_content_type) {
            let got = match req.headers().get_all(header::CONTENT_TYPE).iter().count() {
                0 => "none".to_owned(),
                1 => format!("{:?}", content_type.unwrap_or("(not visible ASCII)")),
                n => format!("{n} Content-Type headers"),
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type must be application/json (with at most ; charset=utf-8), got {got}"),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                return ApiError::new(e.status(), "body_too_large", super::BODY_TOO_LARGE);
            }
            ApiError::new(e.status(), "bad_body", e.body_text())
        })?;
        Ok(JsonBytes(bytes))
    }
}

/// A seq or tree size in a query: an integer from 0 to 2^63 − 1 (what the store can hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq(pub u64);

impl<'de> serde::Deserialize<'de> for Seq {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seq, D::Error> {
        let v = u64::deserialize(d)?;
        if v > i64::MAX as u64 {
            return Err(serde::de::Error::custom(format!("{v} is above the largest seq, {}", i64::MAX)));
        }
        Ok(Seq(v))
    }
}

/// `Option<Seq>` as a plain number.
pub fn seq(s: Option<Seq>) -> Option<u64> {
    s.map(|s| s.0)
}

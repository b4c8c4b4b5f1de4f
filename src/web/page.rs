//! What every page shares: who it is drawn for ([`Viewer`]), its result ([`Page`] or a
//! [`WebError`] page saying what was wrong), query parameters, and paging.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::de::DeserializeOwned;

use super::layout::{Nav, document};
use crate::http::error::ApiError;
use crate::store::StoreError;

/// Table rows per page.
pub const ROWS_PER_PAGE: u64 = 50;

/// Rows of a table that is not paged (lanes, preflights, devices, hosts), at most.
pub const TABLE_MAX: usize = 500;

/// A note that a list shows the first `shown` of `total` `what`; empty when it shows all.
pub fn first_of(shown: usize, total: usize, what: &str) -> Markup {
    html! {
        @if total > shown { p.note { "The first " (shown) " of " (total) " " (what) "." } }
    }
}

/// Who a page is drawn for: whether the sign-in cookie authorized the request (then the
/// navigation bar offers to sign out). The pages' read check (`login::require_read_page`)
/// puts it in the request's extensions; a page takes it as an argument and hands it to the
/// layout. A request the check did not see is drawn as not signed in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Viewer {
    pub signed_in: bool,
}

impl Viewer {
    /// The viewer the read check recorded in `parts`.
    fn of(parts: &Parts) -> Viewer {
        parts.extensions.get::<Viewer>().copied().unwrap_or_default()
    }

    /// The page, or its error page, drawn for this viewer.
    pub fn show(self, page: PageResult) -> Response {
        match page {
            Ok(p) => Html(document(&p.title, p.nav, self.signed_in, p.body).into_string()).into_response(),
            Err(e) => e.page(self.signed_in),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Viewer::of(parts))
    }
}

/// A page before the shell: its title, where it sits in the navigation bar, its body.
pub struct Page {
    pub title: String,
    pub nav: Nav,
    pub body: Markup,
}

impl Page {
    pub fn new(title: impl Into<String>, nav: Nav, body: Markup) -> Page {
        Page { title: title.into(), nav, body }
    }
}

/// A page's result.
pub type PageResult = Result<Page, WebError>;

/// An error page: the status, and a sentence saying what was wrong.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub detail: String,
}

impl WebError {
    pub fn bad_request(detail: impl Into<String>) -> WebError {
        WebError { status: StatusCode::BAD_REQUEST, detail: detail.into() }
    }

    pub fn not_found(detail: impl Into<String>) -> WebError {
        WebError { status: StatusCode::NOT_FOUND, detail: detail.into() }
    }

    /// The error page, with a sign-out button when `signed_in`.
    pub fn page(self, signed_in: bool) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, detail = %self.detail, "page failed");
        }
        let reason = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (self.status.as_u16()) " " (reason) }
            p.error { (self.detail) }
            p { a href="/" { "Back to the overview" } }
        };
        (self.status, Html(document(reason, Nav::None, signed_in, body).into_string())).into_response()
    }
}

/// Outside the pages (the sign-in form, the read check itself) no cookie has authorized the
/// request: the error page offers no sign-out.
impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.page(false)
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> WebError {
        WebError { status: e.status, detail: e.detail }
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        ApiError::from(e).into()
    }
}

/// Query parameters of a page; a bad one is a 400 page naming it. Every field is an
/// `Option<String>` so that an empty form field means "not given".
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    /// The 400 page, drawn for the request's viewer.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Params(q.0)),
            Err(e) => {
                let error = WebError::bad_request(format!("bad query parameters: {}", e.body_text()));
                Err(Viewer::of(parts).show(Err(error)))
            }
        }
    }
}

/// A form value: `None` when absent or blank.
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An integer parameter within `min..=max`; `None` when absent or blank.
pub fn int_param(name: &str, v: &Option<String>, min: u64, max: u64) -> Result<Option<u64>, WebError> {
    let Some(text) = given(v) else { return Ok(None) };
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => {
            Err(WebError::bad_request(format!("{name} must be an integer from {min} to {max}, got {text:?}")))
        }
    }
}

/// The 1-based page of `?page=` and the number of pages for `total` rows.
pub fn paging(page: &Option<String>, total: u64) -> Result<(u64, u64), WebError> {
    let pages = total.div_ceil(ROWS_PER_PAGE).max(1);
    let page = int_param("page", page, 1, u64::from(u32::MAX))?.unwrap_or(1);
    if page > pages {
        return Err(WebError::bad_request(format!("page {page} is past the last page, {pages}")));
    }
    Ok((page, pages))
}

/// The rows of page `page` (1-based).
pub fn page_slice<T>(rows: &[T], page: u64) -> &[T] {
    let start = ((page - 1) * ROWS_PER_PAGE).min(rows.len() as u64) as usize;
    let end = (start + ROWS_PER_PAGE as usize).min(rows.len());
    &rows[start..end]
}

//! The dashboard: server-rendered HTML pages at `/` over the HTTP service's read model (the
//! live projections, the store's record queries, the proofs), so a page shows exactly what
//! `/v1` serves. Tables and charts (SVG) work without JavaScript; `assets/live.js` only adds
//! the live feed (EventSource on `/v1/stream`) and filtering of the rows shown.
//!
//! Pages only read: they never append, never replay (`?at=` stays an API feature), and every
//! list is bounded (rows per page, records per store query, points per chart).
//!
//! Pages take the read authorization of `/v1` (`crate::http::auth`), but where `/v1` answers
//! a missing or refused credential with a JSON 401, a page answers 303 to
//! `/login?next=<path and query>`. There ([`login`]) a browser signs in with a read token
//! (from `assay token create` or `--read-token-file`); the token is checked as a bearer token
//! is and kept in the `assay_read` cookie (`HttpOnly; SameSite=Strict; Path=/`), which the
//! read middleware accepts as well as `Authorization: Bearer`, on every request (a revoked
//! token stops working at once). The cookie also carries the live feed: `EventSource` on the
//! same origin sends it. It only authorizes reads: writes are authorized by signatures alone.
//! `POST /logout` clears it; the navigation bar shows a "Sign out" button on pages a cookie
//! authorized.
//!
//! - [`layout`]: the shell, navigation, escaping, URLs; [`svg`]: charts.
//! - [`home`], [`artifacts`], [`queue`], [`gpus`], [`kernels`], [`runs`], [`events`]: pages.
//! - [`login`]: the sign-in form, sign-out, and the pages' read check.

mod artifacts;
mod events;
mod gpus;
mod home;
mod kernels;
mod layout;
mod login;
mod queue;
mod runs;
mod svg;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::StoreError;
use layout::{Nav, esc};

/// Table rows per page.
pub const ROWS_PER_PAGE: u64 = 50;

/// Rows of a table that is not paged (lanes, preflights, devices, hosts), at most.
pub const TABLE_MAX: usize = 500;

/// A note that a list shows the first `shown` of `total` `what`; empty when it shows all.
pub fn first_of(shown: usize, total: usize, what: &str) -> String {
    if total > shown {
        format!(r#"<p class="note">The first {shown} of {total} {}.</p>"#, esc(what))
    } else {
        String::new()
    }
}

const APP_CSS: &str = include_str!("assets/app.css");
const LIVE_JS: &str = include_str!("assets/live.js");

/// The dashboard's routes. Pages take the same read authorization as `/v1` (but send a
/// browser without a valid credential to `/login`); the sign-in form and the two static assets
/// hold no ledger data and are open.
pub fn router(state: AppState) -> Router<AppState> {
    let auth = from_fn_with_state(state, login::require_read_page);
    Router::new()
        .route("/", get(home::page))
        .route("/artifacts", get(artifacts::list))
        .route("/artifacts/{*slug}", get(artifacts::one))
        .route("/queue", get(queue::page))
        .route("/gpus", get(gpus::page))
        .route("/kernels", get(kernels::page))
        .route("/runs/{*id}", get(runs::page))
        .route("/events", get(events::list))
        .route("/events/{digest}", get(events::one))
        .route_layer(auth)
        .route("/login", get(login::page).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/assets/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/assets/live.js", get(|| async { asset("text/javascript; charset=utf-8", LIVE_JS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A page's result.
pub type PageResult = Result<Html<String>, WebError>;

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
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, detail = %self.detail, "page failed");
        }
        let reason = self.status.canonical_reason().unwrap_or("Error");
        let body = format!(
            r#"<h1>{code} {reason}</h1><p class="error">{detail}</p><p><a href="/">Back to the overview</a></p>"#,
            code = self.status.as_u16(),
            detail = esc(&self.detail),
        );
        (self.status, Html(layout::document(reason, Nav::None, &body))).into_response()
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
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| WebError::bad_request(format!("bad query parameters: {}", e.body_text())))
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

//! The dashboard: server-rendered HTML pages at `/` over the HTTP service's read model (the
//! live projections, the store's record queries, the proofs), so a page shows exactly what
//! `/v1` serves. Tables and charts (SVG) work without JavaScript; `assets/live.js` only adds
//! the live feed (EventSource on `/v1/stream`) and filtering of the rows shown.
//!
//! Pages only read: they never append, never replay (`?at=` stays an API feature; the reports
//! are the exception, under a replay permit, see [`report`]), and every list is bounded (rows
//! per page, records per store query, points per chart).
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
//! - [`layout`]: the shell, navigation, URLs, badges; [`svg`]: charts. Markup is `maud`'s
//!   `html!`, which escapes every value it interpolates.
//! - [`page`]: what every page shares: who it is drawn for ([`page::Viewer`]), its result,
//!   the error pages, query parameters and paging.
//! - [`home`], [`artifacts`], [`queue`], [`gpus`], [`kernels`], [`runs`], [`events`]: pages
//!   ([`kernels`] also a campaign run's matrix and the diff of two runs).
//! - [`report`]: the reports, the CLI's bytes: an artifact's (`/artifacts/{slug}/report`) and the
//!   corpus's (`/report`, which replays once per checkpoint).
//! - [`login`]: the sign-in form, sign-out, and the pages' read check.

mod artifacts;
mod events;
mod evidence;
mod gpus;
mod home;
mod kernels;
mod layout;
mod login;
mod page;
mod queue;
pub(crate) mod report;
mod runs;
pub(crate) mod svg;

use axum::Router;
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::http::state::AppState;

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
        .route("/report", get(report::page))
        .route("/gpus", get(gpus::page))
        .route("/kernels", get(kernels::page))
        .route("/kernels/run/{*run}", get(kernels::run_page))
        .route("/kernels/diff", get(kernels::diff_page))
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

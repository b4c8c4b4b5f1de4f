//! Signing a browser in. A browser cannot add `Authorization: Bearer` to a page navigation or
//! to the live feed's `EventSource`, so when reads need a token the dashboard offers a form:
//! `POST /login` checks the token exactly as the bearer check does ([`ReadAuth::check`]: the
//! operator's file tokens or the store's token table, so a revocation takes effect at once,
//! on every later request) and sets it as the `assay_read` cookie, which the read middleware
//! accepts as well as the header. `POST /logout` clears it.
//!
//! [`require_read_page`] guards the pages: without a valid credential (none, or a revoked
//! cookie) a page answers 303 to `/login?next=<path and query>` instead of the JSON 401 of
//! `/v1`. `next` is only ever followed to a local path.
//!
//! [`ReadAuth::check`]: crate::http::auth::ReadAuth

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, document, enc, sign_out_form};
use super::page::{Params, Viewer, WebError, given};
use crate::http::auth::{Access, READ_COOKIE, cookie_encode, read_cookie};
use crate::http::state::AppState;

/// The largest sign-in form body.
pub const FORM_BYTES_MAX: usize = 4096;

/// The longest `next` followed after signing in.
const NEXT_BYTES_MAX: usize = 2048;

/// Middleware on the dashboard's pages: the read check of `/v1`, but a browser without a valid
/// credential is sent to the sign-in page, which brings it back here. A page it lets through
/// is told whether the sign-in cookie authorized it: a [`Viewer`] in the request's extensions,
/// which the page takes as an argument.
pub async fn require_read_page(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    match state.read_auth.authorize(request.headers()).await {
        Ok(Access::Granted { by_cookie }) => {
            request.extensions_mut().insert(Viewer { signed_in: by_cookie });
            next.run(request).await
        }
        Ok(Access::Missing | Access::Refused { .. }) => {
            let here = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            see_other(&format!("/login?next={}", enc(here)))
        }
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `GET /login`'s query.
#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The sign-in form's fields.
#[derive(Deserialize)]
struct LoginForm {
    token: Option<String>,
    next: Option<String>,
}

/// `GET /login`: the form; says so when this browser's cookie is no longer accepted.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<LoginQuery>,
) -> Result<Response, WebError> {
    let next = safe_next(q.next.as_deref());
    let required = state.read_auth.required;
    let (message, signed_in) = match read_cookie(&headers) {
        None => (None, false),
        Some(token) if state.read_auth.check(&token).await? => {
            (Some(Message::Ok("This browser is signed in.".to_owned())), true)
        }
        Some(_) => (
            Some(Message::Bad(
                "The token this browser signed in with was not accepted (unknown or revoked); sign in again."
                    .to_owned(),
            )),
            false,
        ),
    };
    Ok(login_page(StatusCode::OK, next, required, message, signed_in))
}

/// `POST /login`: a good token sets the cookie and goes on to `next`; a wrong one is a 401
/// with the form again.
pub async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let required = state.read_auth.required;
    let form = match read_form(request, required).await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let next = safe_next(form.next.as_deref());
    let Some(token) = given(&form.token) else {
        let message = Message::Bad("Enter a read token.".to_owned());
        return login_page(StatusCode::BAD_REQUEST, next, required, Some(message), false);
    };
    match state.read_auth.check(token).await {
        Ok(true) => {
            // No `Secure`: this server speaks plain HTTP, over which a browser neither keeps
            // nor sends a `Secure` cookie. A TLS proxy in front should add `Secure` to this
            // header (e.g. nginx `proxy_cookie_flags assay_read secure`).
            let cookie = format!("{READ_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", cookie_encode(token));
            with_cookie(see_other(&next), &cookie)
        }
        Ok(false) => {
            let message = Message::Bad("That token was not accepted: it is unknown or revoked.".to_owned());
            login_page(StatusCode::UNAUTHORIZED, next, required, Some(message), false)
        }
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `POST /logout`: clears the cookie and goes to the sign-in page.
pub async fn sign_out(headers: HeaderMap) -> Response {
    if let Some(refusal) = cross_site(&headers) {
        return refusal;
    }
    let cookie = format!("{READ_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    with_cookie(see_other("/login"), &cookie)
}

/// The sign-in form of a request: its content type, its size and its encoding checked; a
/// refusal is a 4xx page saying what was wrong.
async fn read_form(request: Request, required: bool) -> Result<LoginForm, Response> {
    let headers = request.headers();
    if let Some(refusal) = cross_site(headers) {
        return Err(refusal);
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        let message = "The sign-in form must be sent as application/x-www-form-urlencoded.";
        return Err(refusal(StatusCode::UNSUPPORTED_MEDIA_TYPE, message, required));
    }
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = format!("The sign-in form must be at most {FORM_BYTES_MAX} bytes.");
    if declared.is_some_and(|n| n > FORM_BYTES_MAX as u64) {
        return Err(refusal(StatusCode::PAYLOAD_TOO_LARGE, &too_large, required));
    }
    let body = to_bytes(request.into_body(), FORM_BYTES_MAX)
        .await
        .map_err(|_| refusal(StatusCode::PAYLOAD_TOO_LARGE, &too_large, required))?;
    serde_urlencoded::from_bytes::<LoginForm>(&body).map_err(|e| {
        refusal(StatusCode::BAD_REQUEST, &format!("The sign-in form is malformed: {e}."), required)
    })
}

/// The form again with `status` and a sentence saying what was wrong.
fn refusal(status: StatusCode, message: &str, required: bool) -> Response {
    login_page(status, "/".to_owned(), required, Some(Message::Bad(message.to_owned())), false)
}

/// Sign-in and sign-out take forms from this server only: another site must not sign a
/// browser in with a token of its own choosing (login CSRF), nor out. Browsers say where a form
/// comes from themselves, in headers a page cannot set:
///
/// - `Sec-Fetch-Site: cross-site` is refused, and so is `same-site` (another origin of the
///   same site: a sibling host, or another port of this one) unless `Origin` names this server;
/// - `Origin` (or, when a browser sends none, `Referer`) must name this server: its host and
///   port must be the request's `Host` (`Origin: null`, sent from sandboxed or redirected
///   contexts, is refused too).
///
/// A request with none of these headers (curl, a script) is taken: it is not a browser a page
/// could steer. A TLS proxy in front must pass the `Host` the browser used.
fn cross_site(headers: &HeaderMap) -> Option<Response> {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes().to_ascii_lowercase());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("null"));
    // The Referer is consulted only without an Origin (older browsers, some navigations).
    let from = origin.or_else(|| headers.get(header::REFERER).map(|v| v.to_str().unwrap_or("null")));
    let own = from.map(|f| same_authority(f, host));
    let refused = match fetch_site.as_deref() {
        Some(b"cross-site") => Some("the form was sent from another site"),
        Some(b"same-site") if own != Some(true) => Some("the form was sent from another host of this site"),
        _ => match own {
            Some(false) => Some("the form was sent from another origin"),
            _ => None,
        },
    };
    refused.map(|why| {
        WebError {
            status: StatusCode::FORBIDDEN,
            detail: format!("sign-in forms are only taken from this server: {why}"),
        }
        .into_response()
    })
}

/// Whether the URL or origin `from` (`scheme://host[:port][/...]`) names the server reached at
/// `host` (the `Host` header: `host[:port]`). Hosts compare without case; a missing port is
/// the scheme's default (80 for http, 443 for https). Anything that does not parse (`null`,
/// another scheme, user info) names another origin.
fn same_authority(from: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let (scheme, rest) = match from.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => return false,
    };
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    match (split_port(authority, default_port), split_port(host.trim(), default_port)) {
        (Some((a, p)), Some((b, q))) => !a.is_empty() && a.eq_ignore_ascii_case(b) && p == q,
        _ => false,
    }
}

/// `host[:port]` (an IPv6 host in brackets) as (host, port), the port `default` when absent.
fn split_port(authority: &str, default: u16) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        (inside, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => default,
        Some(p) => p.parse().ok()?,
    };
    Some((host, port))
}

/// A sentence above the form.
enum Message {
    Ok(String),
    Bad(String),
}

fn login_page(
    status: StatusCode,
    next: String,
    required: bool,
    message: Option<Message>,
    signed_in: bool,
) -> Response {
    let body = html! {
        h1 { "Sign in" }
        @match &message {
            Some(Message::Ok(text)) => p.ok #login-status { (text) },
            Some(Message::Bad(text)) => p.bad.error #login-error role="alert" { (text) },
            None => {}
        }
        p.lead {
            @if required {
                "Reads on this server need a read token."
            } @else {
                "Reads on this server are open (it listens on loopback): signing in is not needed."
            }
            " Tokens come from " code { "assay token create" } " or the server's "
            code { "--read-token-file" } "."
        }
        form.login method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label for="token" { "Read token" }
            input #token name="token" type="password" autocomplete="current-password" required autofocus;
            button type="submit" { "Sign in" }
        }
        @if signed_in {
            p { a href=(next) { "Continue" } ", or sign out of this browser:" }
            (sign_out_form())
        }
    };
    // The bar offers no sign-out here: the form above does, when there is one to offer.
    let page = document("Sign in", Nav::None, false, body).into_string();
    let mut response = (status, Html(page)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `next` if it is a path on this server, else `/`: it starts with one `/`, holds only
/// visible ASCII and no `\` (which browsers read as `/`), so it names no other host or scheme.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= NEXT_BYTES_MAX
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
                && n != "/login"
                && !n.starts_with("/login?") =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// 303 See Other to a local `location`.
fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
    )
        .into_response()
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    match HeaderValue::from_str(cookie) {
        Ok(v) => {
            response.headers_mut().insert(header::SET_COOKIE, v);
            response
        }
        Err(_) => WebError::bad_request("the token cannot be kept in a cookie").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{safe_next, same_authority};

    #[test]
    fn origins_name_this_server_or_another() {
        let host = Some("127.0.0.1:8080");
        for own in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/login?next=%2F", "HTTP://127.0.0.1:8080/"]
        {
            assert!(same_authority(own, host), "{own}");
        }
        for other in [
            "http://127.0.0.1:8081",
            "http://127.0.0.2:8080",
            "http://evil.example",
            "http://127.0.0.1",
            "null",
            "",
            "file:///etc",
            "http://127.0.0.1:8080@evil.example/",
            "http://:8080",
        ] {
            assert!(!same_authority(other, host), "{other}");
        }
        assert!(same_authority("https://assay.lab", Some("ASSAY.lab:443")));
        assert!(same_authority("http://assay.lab", Some("assay.lab")));
        assert!(!same_authority("https://assay.lab", Some("assay.lab:80")));
        assert!(same_authority("http://[::1]:9000/x", Some("[::1]:9000")));
        assert!(!same_authority("http://[::1]:9000", Some("[::2]:9000")));
        assert!(!same_authority("http://assay.lab", None));
    }

    #[test]
    fn next_stays_on_this_server() {
        for ok in ["/", "/artifacts?q=a%20b&page=2", "/runs/a/b"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "evil",
            "javascript:alert(1)",
            "/login?next=%2F",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(5000)))), "/");
    }
}

//! Read authorization. Writes are authorized by their signatures (the ledger checks keys and
//! roles). Reads are open on a loopback listener; beyond loopback (or when the operator asks)
//! every read needs a token from `assay token create` (the store keeps its hash; revocation
//! takes effect at once) or from `--read-token-file`, sent either as
//! `Authorization: Bearer <token>` or, for browsers (which cannot add that header to a page
//! navigation or an `EventSource`), as the `assay_read` cookie that the dashboard's sign-in
//! (`/login`, in `crate::web`) sets. The header wins when both are sent. Both are checked by
//! [`ReadAuth::check`], on every request.
//!
//! The cookie only ever authorizes reads: no write route (`POST /v1/events`,
//! `POST /v1/dispatch`) sits behind [`require_read_token`]; writes are authorized by their
//! signatures alone, so a cookie a browser attaches by itself opens no CSRF hole (and it is
//! `SameSite=Strict` as well).
//!
//! [`require_read_token`] answers a missing or refused credential with the JSON 401 of `/v1`;
//! the dashboard's pages use [`ReadAuth::authorize`] too but answer with a redirect to
//! `/login`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use crate::store::Store;

/// The name of the cookie that carries a read token for browsers.
pub const READ_COOKIE: &str = "assay_read";

pub struct ReadAuth {
    /// False: reads are open.
    pub required: bool,
    /// Hashes of the tokens from the operator's file.
    pub file_tokens: HashSet<[u8; 32]>,
    pub store: Store,
}

/// What a request's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads are open, or the credential is valid; `by_cookie` says it came from the cookie.
    Granted { by_cookie: bool },
    /// Reads need a token and none was sent.
    Missing,
    /// A token was sent and is unknown or revoked; `by_cookie` as above.
    Refused { by_cookie: bool },
}

impl ReadAuth {
    /// Whether `token` is a valid read token now: one of the operator's file tokens, or one in
    /// the store's token table (not revoked).
    pub(crate) async fn check(&self, token: &str) -> Result<bool, ApiError> {
        let hash = crate::tokens::hash(token);
        if self.file_tokens.contains(&hash) {
            return Ok(true);
        }
        Ok(self.store.read_token_name(&hash).await?.is_some())
    }

    /// Whether a request with `headers` may read: the bearer header if there is one, else the
    /// `assay_read` cookie.
    pub(crate) async fn authorize(&self, headers: &HeaderMap) -> Result<Access, ApiError> {
        if !self.required {
            return Ok(Access::Granted { by_cookie: false });
        }
        let (token, by_cookie) = match bearer(headers) {
            Some(t) => (t.to_owned(), false),
            None => match read_cookie(headers) {
                Some(t) => (t, true),
                None => return Ok(Access::Missing),
            },
        };
        Ok(if self.check(&token).await? {
            Access::Granted { by_cookie }
        } else {
            Access::Refused { by_cookie }
        })
    }
}

/// The token of `Authorization: Bearer <token>`, if that header is there.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// The token in the `assay_read` cookie (the first one, if a browser sends several); an
/// empty one counts as none.
pub(crate) fn read_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == READ_COOKIE)
        .map(|(_, value)| cookie_decode(value.trim_matches('"')))
        .filter(|token| !token.trim().is_empty())
}

/// A token as a cookie value: bytes other than RFC 3986 unreserved ones percent-encoded, so
/// any token (an operator's file may hold any text) is a valid cookie value; the tokens of
/// `assay token create` stay as they are.
pub(crate) fn cookie_encode(token: &str) -> String {
    percent_encoding::utf8_percent_encode(token, COOKIE_ESCAPED).to_string()
}

/// Bytes a cookie value escapes: everything but RFC 3986 unreserved characters.
const COOKIE_ESCAPED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The inverse of [`cookie_encode`]; a malformed escape is kept as it is (such a token is
/// simply not accepted).
fn cookie_decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned()
}

/// Middleware on the `/v1` read routes (and `/metrics`): a missing or refused credential is a
/// JSON 401 with a `Bearer` challenge. Its state is the server's [`ReadAuth`] alone, so this
/// module needs nothing of the handlers' state (which holds the same `ReadAuth`).
pub async fn require_read_token(State(auth): State<Arc<ReadAuth>>, request: Request, next: Next) -> Response {
    let refusal = match auth.authorize(request.headers()).await {
        Ok(Access::Granted { .. }) => return next.run(request).await,
        Ok(Access::Missing) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_required",
            "reads on this server need Authorization: Bearer <token> (assay token create), or a \
             browser signed in at /login",
        ),
        Ok(Access::Refused { by_cookie: false }) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_required",
            "the bearer token is unknown or revoked",
        ),
        Ok(Access::Refused { by_cookie: true }) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_required",
            "the token of the assay_read cookie is unknown or revoked; sign in again at /login",
        ),
        Err(e) => e,
    };
    axum::response::IntoResponse::into_response(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_round_trip() {
        for token in ["assay_0123abcdef", "with space; and=semi,colon \"quoted\" é%"] {
            let value = cookie_encode(token);
            assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{value}");
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, format!("other=1; {READ_COOKIE}={value}; x=y").parse().unwrap());
            assert_eq!(read_cookie(&headers).as_deref(), Some(token));
        }
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(cookie_decode("a%zz%4"), "a%zz%4");
        assert_eq!(cookie_decode("%41%42"), "AB");
    }

    #[test]
    fn no_cookie_no_token() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "assay_reader=x; read=y".parse().unwrap());
        assert_eq!(read_cookie(&headers), None);
        headers.insert(header::COOKIE, "assay_read=".parse().unwrap());
        assert_eq!(read_cookie(&headers), None, "a cleared cookie is no token");
    }
}

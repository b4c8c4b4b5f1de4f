//! Read authorization. Writes are authorized by their signatures (the ledger checks keys and
//! roles). Reads are open on a loopback listener; beyond loopback (or when the operator asks)
//! every read needs `Authorization: Bearer <token>`, a token from `assay token create` (the
//! store keeps its hash; revocation takes effect at once) or from `--read-token-file`.

use std::collections::HashSet;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::state::AppState;
use crate::store::Store;

pub struct ReadAuth {
    /// False: reads are open.
    pub required: bool,
    /// Hashes of the tokens from the operator's file.
    pub file_tokens: HashSet<[u8; 32]>,
    pub store: Store,
}

impl ReadAuth {
    async fn check(&self, token: &str) -> Result<bool, ApiError> {
        let hash = crate::tokens::hash(token);
        if self.file_tokens.contains(&hash) {
            return Ok(true);
        }
        Ok(self.store.read_token_name(&hash).await?.is_some())
    }
}

/// Middleware on read routes.
pub async fn require_read_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let auth = &state.read_auth;
    if !auth.required {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let verdict = match bearer {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_required",
            "this server is not on loopback: reads need Authorization: Bearer <token> (assay token create)",
        )),
        Some(token) => match auth.check(token).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_required",
                "the bearer token is unknown or revoked",
            )),
            Err(e) => Err(e),
        },
    };
    match verdict {
        Ok(()) => next.run(request).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

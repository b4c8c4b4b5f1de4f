//! `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`: the tree as C2SP
//! tlog-tiles ([`crate::tiles`]), in the tree of the latest signed checkpoint. Full tiles are
//! immutable and cached for a year; partial ones briefly.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use super::wire::ErrorBody;
use crate::tiles::{self, TileError, TilePath};

/// A tile or an entry bundle of the tree of the latest signed checkpoint.
///
/// C2SP tlog-tiles: `tile/<L>/<N>[.p/<W>]` holds the 32-byte hashes at tree level 8·L (256 in
/// a full tile, W in a partial one); `tile/entries/<N>[.p/<W>]` the records' 128-byte leaves,
/// each prefixed by its u16 big-endian length. N is written in groups of three digits, all
/// but the last prefixed by `x` (`x001/x234/067`). A tile is served once the latest checkpoint
/// covers it.
#[utoipa::path(
    get,
    path = "/tile/{path}",
    tag = "proofs",
    params(("path" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, e.g. `0/x001/234.p/7`")),
    responses(
        (status = 200, description = "The tile's bytes; full tiles with `Cache-Control: public, max-age=31536000, immutable`", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Not a tile path", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "The tile is beyond the tree of the latest checkpoint", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn tile(State(state): State<AppState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&format!("tile/{path}"))
        .map_err(|e| ApiError::bad_request("bad_tile_path", e.to_string()))?;
    let size = state.ledger.head().borrow().size;
    let bytes = tiles::read(state.ledger.store(), tile, size).await.map_err(|e| match e {
        TileError::Beyond { .. } => ApiError::not_found(e.to_string()),
        TileError::Store(s) => s.into(),
        other => ApiError::internal("tile", other.to_string()),
    })?;
    let cache = if tile.is_full() { tiles::CACHE_FULL } else { tiles::CACHE_PARTIAL };
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(tiles::CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}

//! The tree as C2SP tlog-tiles (c2sp.org/tlog-tiles): tiles of 256 hashes and bundles of 256
//! entries, read from the stored complete subtrees and records, so that any tlog client can
//! compute proofs without the `/v1` API, and the files can be copied to static storage.
//!
//! A level-`L` tile holds the hashes of the complete subtrees at tree level `8·L`, which the
//! store keeps as node rows; an entry is a record's leaf (`Record::leaf`, 128 bytes), whose
//! RFC 6962 leaf hash is the level-0 hash. Each tile is one range query.

pub mod files;
pub mod path;

pub use path::{PathError, TileKind, TilePath};

use assay_events::merkle::NodeId;
use assay_events::record::LEAF_LEN;

use crate::store::{Store, StoreError};

/// `Cache-Control` of full tiles: they never change.
pub const CACHE_FULL: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of partial tiles: the full tile replaces them, and a log may drop them.
pub const CACHE_PARTIAL: &str = "public, max-age=60";
/// The media type of tiles and entry bundles.
pub const CONTENT_TYPE: &str = "application/octet-stream";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{tile} is beyond the tree of the latest checkpoint (size {size})")]
    Beyond { tile: TilePath, size: u64 },
    #[error("the store is missing {what} for {tile}")]
    Missing { tile: TilePath, what: String },
}

/// The bytes of `tile` in the tree of `size` leaves (a signed checkpoint's size).
pub async fn read(store: &Store, tile: TilePath, size: u64) -> Result<Vec<u8>, TileError> {
    if !tile.in_tree(size) {
        return Err(TileError::Beyond { tile, size });
    }
    let first = tile.index * u64::from(path::TILE_WIDTH);
    let last = first + u64::from(tile.width) - 1;
    match tile.kind {
        TileKind::Hashes { .. } => {
            let level = tile.tree_level() as u8;
            let nodes = store.nodes_range(level, first, last).await?;
            let mut out = Vec::with_capacity(nodes.len() * 32);
            for (at, (index, hash)) in (first..=last).zip(&nodes) {
                if at != *index {
                    return Err(missing(tile, NodeId { level, index: at }));
                }
                out.extend_from_slice(&hash.0);
            }
            if nodes.len() != tile.width as usize {
                let index = first + nodes.len() as u64;
                return Err(missing(tile, NodeId { level, index }));
            }
            Ok(out)
        }
        TileKind::Entries => {
            let leaves = store.leaves(first, tile.width).await?;
            let mut out = Vec::with_capacity(leaves.len() * (2 + LEAF_LEN));
            for (seq, leaf) in (first..=last).zip(&leaves) {
                if leaf.seq != seq {
                    return Err(TileError::Missing { tile, what: format!("record {seq}") });
                }
                let bytes = leaf.to_bytes();
                out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                out.extend_from_slice(&bytes);
            }
            if leaves.len() != tile.width as usize {
                return Err(TileError::Missing {
                    tile,
                    what: format!("record {}", first + leaves.len() as u64),
                });
            }
            Ok(out)
        }
    }
}

fn missing(tile: TilePath, node: NodeId) -> TileError {
    TileError::Missing { tile, what: format!("tree node (level {}, index {})", node.level, node.index) }
}

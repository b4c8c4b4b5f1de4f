//! `assay tiles export`: the tiles of the latest signed checkpoint as files, byte for byte what
//! `GET /tile/…` serves, plus `checkpoint` (that checkpoint's signed note), for static storage.
//!
//! Rerunning adds what the log grew by: a full tile already present is skipped (it never
//! changes), every other file is written whole under a temporary name and renamed into place,
//! and `checkpoint` last, so a reader of the folder never finds a checkpoint whose tiles are
//! not there yet. Partial tiles of earlier checkpoints stay, for clients that hold those.

use std::path::{Path, PathBuf};

use super::{TileError, TilePath, read};
use crate::store::{Store, StoreError};

/// The file holding the checkpoint, beside `tile/`.
pub const CHECKPOINT_FILE: &str = "checkpoint";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tile(#[from] TileError),
    #[error("the ledger has no signed checkpoint")]
    NoCheckpoint,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What one export did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exported {
    /// The tree size of the checkpoint written.
    pub size: u64,
    /// Tiles and bundles written.
    pub written: u64,
    /// Full tiles and bundles already present.
    pub skipped: u64,
}

/// Writes the tiles of the latest signed checkpoint and the checkpoint under `out`.
pub async fn export(store: &Store, out: &Path) -> Result<Exported, ExportError> {
    let head = store.head().await?.ok_or(ExportError::NoCheckpoint)?;
    let size = head.checkpoint_size;
    let checkpoint = store.checkpoint_at(size).await?.ok_or(ExportError::NoCheckpoint)?;
    let mut done = Exported { size, ..Exported::default() };
    for tile in TilePath::all(size) {
        let path = out.join(tile.to_string());
        if tile.is_full() && path.is_file() {
            done.skipped += 1;
            continue;
        }
        let bytes = read(store, tile, size).await?;
        write_whole(&path, &bytes)?;
        done.written += 1;
    }
    write_whole(&out.join(CHECKPOINT_FILE), checkpoint.note.as_bytes())?;
    Ok(done)
}

/// Writes `bytes` to `path` through a temporary sibling renamed into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

//! Blobs in a folder beside a SQLite ledger: `<ledger>.blobs/<first two hex>/<name>`.
//!
//! A write goes to `<ledger>.blobs/tmp/<fresh id>.part` (the same file system as its final
//! place), hashed as it is written; once whole and named, the file is fsynced, linked under its
//! true name (a link never replaces an existing name: the same content is stored once, never
//! rewritten), the temporary name removed and the fan-out folder fsynced. A crash before the
//! link leaves a `.part` file, never a file under a blob name; a crash after it leaves the whole
//! blob. Nothing in `tmp/` is ever read as a blob.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{BlobError, BlobName};

/// The store folder of the SQLite ledger at `ledger`: `<ledger>.blobs`.
pub fn beside(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".blobs");
    PathBuf::from(name)
}

#[derive(Clone, Debug)]
pub struct FolderBlobs {
    root: PathBuf,
    bytes_max: u64,
}

impl FolderBlobs {
    pub fn new(root: PathBuf, bytes_max: u64) -> FolderBlobs {
        FolderBlobs { root, bytes_max }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn bytes_max(&self) -> u64 {
        self.bytes_max
    }

    /// Where the blob `name` lives.
    pub fn path_of(&self, name: &BlobName) -> PathBuf {
        let hex = name.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    pub(super) async fn temp(&self) -> Result<Temp, BlobError> {
        let dir = self.root.join("tmp");
        if !tokio::fs::try_exists(&dir).await.map_err(|e| BlobError::io(dir.display(), e))? {
            tokio::fs::create_dir_all(&dir).await.map_err(|e| BlobError::io(dir.display(), e))?;
            // The store's own name, beside the ledger, must survive a power loss too.
            let parent = match self.root.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            sync_dir(parent).await?;
            sync_dir(self.root.clone()).await?;
        }
        let path = dir.join(format!("{}.part", uuid::Uuid::now_v7()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| BlobError::io(path.display(), e))?;
        Ok(Temp { root: self.root.clone(), path: Some(path), file: Some(file) })
    }

    pub(super) async fn size(&self, name: &BlobName) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(name);
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io(path.display(), e)),
        }
    }

    /// The blob's file, positioned at `start`.
    pub(super) async fn open(
        &self,
        name: &BlobName,
        start: u64,
    ) -> Result<Option<tokio::fs::File>, BlobError> {
        let path = self.path_of(name);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobError::io(path.display(), e)),
        };
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| BlobError::io(path.display(), e))?;
        Ok(Some(file))
    }
}

/// Up to `want` bytes from `file`; fewer only at its end.
pub(super) async fn read_some(file: &mut tokio::fs::File, want: usize) -> Result<Vec<u8>, BlobError> {
    let mut chunk = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        let n = file.read(&mut chunk[filled..]).await.map_err(|e| BlobError::io("reading a blob", e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    chunk.truncate(filled);
    Ok(chunk)
}

/// A blob being written under its temporary name; removed when dropped unkept.
pub(super) struct Temp {
    root: PathBuf,
    path: Option<PathBuf>,
    file: Option<tokio::fs::File>,
}

impl Temp {
    pub(super) async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        let (Some(file), Some(path)) = (self.file.as_mut(), self.path.as_ref()) else {
            return Err(BlobError::io("a finished blob", std::io::ErrorKind::BrokenPipe.into()));
        };
        file.write_all(data).await.map_err(|e| BlobError::io(path.display(), e))
    }

    /// Makes the bytes durable and visible as `name`. True when `name` was already stored
    /// (its file is left as it was).
    pub(super) async fn keep(mut self, name: &BlobName) -> Result<bool, BlobError> {
        let (Some(mut file), Some(path)) = (self.file.take(), self.path.clone()) else {
            return Err(BlobError::io("a finished blob", std::io::ErrorKind::BrokenPipe.into()));
        };
        let io = |e| BlobError::io(path.display(), e);
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        let hex = name.to_hex();
        let dir = self.root.join(&hex[..2]);
        if !tokio::fs::try_exists(&dir).await.map_err(|e| BlobError::io(dir.display(), e))? {
            tokio::fs::create_dir_all(&dir).await.map_err(|e| BlobError::io(dir.display(), e))?;
            sync_dir(self.root.clone()).await?;
        }
        let target = dir.join(&hex);
        let existed = match tokio::fs::hard_link(&path, &target).await {
            Ok(()) => false,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
            // A file system without hard links: rename, unless the name is taken.
            Err(_) if tokio::fs::try_exists(&target).await.unwrap_or(false) => true,
            Err(_) => {
                tokio::fs::rename(&path, &target).await.map_err(|e| BlobError::io(target.display(), e))?;
                false
            }
        };
        // The temporary name goes whether or not the link was made (a rename already took it).
        let _ = tokio::fs::remove_file(&path).await;
        self.path = None;
        sync_dir(dir).await?;
        Ok(existed)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// fsyncs a folder, so a name made or removed in it survives a power loss.
async fn sync_dir(dir: PathBuf) -> Result<(), BlobError> {
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| BlobError::io(dir.display(), e))
    })
    .await
    .map_err(|e| BlobError::io("syncing a folder", std::io::Error::other(e)))?
}

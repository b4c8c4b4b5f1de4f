//! Blobs in a folder beside a SQLite ledger: `<ledger>.blobs/<first two hex>/<name>`.
//!
//! A write goes to `<ledger>.blobs/tmp/<fresh id>.part` (the same file system as its final
//! place), hashed as it is written; once whole and named, the file is fsynced, linked under its
//! true name (a link never replaces an existing name: the same content is stored once, never
//! rewritten), the temporary name removed and the fan-out folder fsynced. A crash before the
//! link leaves a `.part` file, never a file under a blob name; a crash after it leaves the whole
//! blob. Nothing in `tmp/` is ever read as a blob.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{BlobError, BlobName, CHUNK_BYTES, Put};

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
        let root = self.root.clone();
        let (part, file) = blocking(move || {
            let part = Part::new(&root)?;
            let file = part.create()?;
            Ok((part, file))
        })
        .await?;
        Ok(Temp { root: self.root.clone(), part: Some(part), file: Some(file) })
    }

    /// Stores the file at `source` in one pass on a blocking thread (read, hash, write), then
    /// keeps it as [`Temp::keep`] does: a local file needs no hop between threads per chunk.
    pub(super) async fn put_file(&self, source: &Path) -> Result<Put, BlobError> {
        let (root, bytes_max, source) = (self.root.clone(), self.bytes_max, source.to_owned());
        blocking(move || {
            use std::io::{Read, Write};
            let io = |e| BlobError::io(source.display(), e);
            let mut input = std::fs::File::open(&source).map_err(io)?;
            let part = Part::new(&root)?;
            let mut out = part.create()?;
            let mut hasher = blake3::Hasher::new();
            let mut buffer = vec![0u8; CHUNK_BYTES];
            let mut bytes = 0u64;
            loop {
                let n = input.read(&mut buffer).map_err(io)?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                if bytes > bytes_max {
                    return Err(BlobError::TooLarge { bytes_max });
                }
                hasher.update(&buffer[..n]);
                out.write_all(&buffer[..n]).map_err(|e| BlobError::io(part.0.display(), e))?;
            }
            let name = BlobName::of_hash(&hasher);
            let existed = keep(&root, part, out, &name)?;
            Ok(Put { name, bytes, existed })
        })
        .await
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

    /// The sizes of the stored blobs among `names` (a `stat` each, on a blocking thread).
    pub(super) async fn sizes(&self, names: &[BlobName]) -> Result<Vec<(BlobName, u64)>, BlobError> {
        let paths: Vec<(BlobName, PathBuf)> = names.iter().map(|n| (*n, self.path_of(n))).collect();
        blocking(move || {
            let mut found = Vec::with_capacity(paths.len());
            for (name, path) in paths {
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => found.push((name, meta.len())),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BlobError::io(path.display(), e)),
                }
            }
            Ok(found)
        })
        .await
    }

    pub(super) async fn refresh(&self, name: &BlobName) -> Result<bool, BlobError> {
        let path = self.path_of(name);
        blocking(move || refresh(&path)).await
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

/// A temporary name under `tmp/`, removed when dropped unless [`keep`] took it.
pub(super) struct Part(PathBuf);

impl Part {
    /// A fresh name under `root/tmp/` (made, and the store's own names fsynced, the first
    /// time).
    fn new(root: &Path) -> Result<Part, BlobError> {
        let dir = root.join("tmp");
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| BlobError::io(dir.display(), e))?;
            // The store's own name, beside the ledger, must survive a power loss too.
            let parent = match root.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            sync_dir(&parent)?;
            sync_dir(root)?;
        }
        Ok(Part(dir.join(format!("{}.part", uuid::Uuid::now_v7()))))
    }

    fn create(&self) -> Result<std::fs::File, BlobError> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.0)
            .map_err(|e| BlobError::io(self.0.display(), e))
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A blob being written under its temporary name (an upload). Each chunk is written on a
/// blocking thread from the writer's own buffer, moved there and handed back: no second copy
/// of the bytes, and no second buffer per upload (what bounds a server's memory per upload).
pub(super) struct Temp {
    root: PathBuf,
    part: Option<Part>,
    /// Away on a blocking thread while a chunk is written; gone if that write failed.
    file: Option<std::fs::File>,
}

impl Temp {
    /// Appends `chunk`; returns it (to be cleared and filled again).
    pub(super) async fn write(&mut self, chunk: Vec<u8>) -> Result<Vec<u8>, BlobError> {
        let (Some(mut file), Some(part)) = (self.file.take(), self.part.as_ref()) else {
            return Err(BlobError::io("a finished blob", std::io::ErrorKind::BrokenPipe.into()));
        };
        let path = part.0.clone();
        let (file, chunk) = blocking(move || {
            use std::io::Write;
            file.write_all(&chunk).map_err(|e| BlobError::io(path.display(), e))?;
            Ok((file, chunk))
        })
        .await?;
        self.file = Some(file);
        Ok(chunk)
    }

    /// Makes the bytes durable and visible as `name` ([`keep`]).
    pub(super) async fn keep(mut self, name: &BlobName) -> Result<bool, BlobError> {
        let (Some(file), Some(part)) = (self.file.take(), self.part.take()) else {
            return Err(BlobError::io("a finished blob", std::io::ErrorKind::BrokenPipe.into()));
        };
        let (root, name) = (self.root.clone(), *name);
        blocking(move || keep(&root, part, file, &name)).await
    }
}

/// fsyncs `file` (written under `part`), links it under `name` and drops the temporary name;
/// fsyncs the fan-out folder. True when `name` was already stored: a link never replaces a
/// name, so its file is left as it was (the same bytes are stored once, never rewritten).
fn keep(root: &Path, part: Part, file: std::fs::File, name: &BlobName) -> Result<bool, BlobError> {
    file.sync_all().map_err(|e| BlobError::io(part.0.display(), e))?;
    drop(file);
    let hex = name.to_hex();
    let dir = root.join(&hex[..2]);
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).map_err(|e| BlobError::io(dir.display(), e))?;
        sync_dir(root)?;
    }
    let target = dir.join(&hex);
    let mut existed = link(&part.0, &target)?;
    // Stored again, the old file counts as just stored: retention (`folder_gc.rs`) moves a
    // blob aside before it reads its age, so either it sees this refresh and keeps the blob, or
    // the name is already gone here and this upload's own file takes it.
    if existed && !refresh(&target)? {
        existed = link(&part.0, &target)?;
    }
    // The temporary name goes whether or not the link was made (a rename already took it).
    drop(part);
    sync_dir(&dir)?;
    Ok(existed)
}

/// Links `part` under `target`; true when `target` already exists (a link never replaces it).
fn link(part: &Path, target: &Path) -> Result<bool, BlobError> {
    match std::fs::hard_link(part, target) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(true),
        // A file system without hard links: rename, unless the name is taken.
        Err(_) if target.exists() => Ok(true),
        Err(_) => {
            std::fs::rename(part, target).map_err(|e| BlobError::io(target.display(), e))?;
            Ok(false)
        }
    }
}

/// Sets the modification time of the stored file `target` (its age for retention) to now;
/// false when it is gone.
fn refresh(target: &Path) -> Result<bool, BlobError> {
    let file = match std::fs::File::open(target) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(BlobError::io(target.display(), e)),
    };
    file.set_modified(std::time::SystemTime::now()).map_err(|e| BlobError::io(target.display(), e))?;
    // Moved aside after the open but before the new time was set, the collector may have read
    // the old time: the name must still be there after the refresh.
    Ok(target.exists())
}

/// Runs blocking file work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::io("file work", std::io::Error::other(e)))?
}

/// fsyncs a folder, so a name made or removed in it survives a power loss.
pub(super) fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| BlobError::io(dir.display(), e))
}

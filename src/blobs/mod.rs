//! The evidence store (DESIGN §10): blobs named by the lower-case hex blake3 of their bytes. A
//! blob is visible only whole and only under its true name; the log never depends on a blob to
//! verify (a missing blob is a finding of `assay evidence verify`, not a broken log).
//!
//! Two backends behind [`BlobStore`]: a folder beside a SQLite ledger (`folder.rs`,
//! `<ledger>.blobs/`) and the ledger's PostgreSQL database, in chunks (`postgres.rs`). Bytes go
//! through [`BlobWriter`] (hashed while written, bounded, kept only when whole) and come back
//! through [`BlobReader`], a chunk at a time: no blob is ever held whole in memory.

pub mod cited;
pub mod copy;
mod folder;
mod folder_gc;
pub mod gc;
mod postgres;
mod removal;
pub mod signed;
pub mod source;
pub mod stored;

use std::fmt;
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use tokio::io::AsyncReadExt;

use crate::store::StoreError;

pub use folder::FolderBlobs;
pub use postgres::PgBlobs;

/// The default largest blob: 4 GiB.
pub const BLOB_BYTES_MAX_DEFAULT: u64 = 4 << 30;
/// Bytes a reader or writer moves at a time (and a PostgreSQL chunk's size).
pub const CHUNK_BYTES: usize = 1 << 20;
/// Bytes a writer into the folder store gathers before it writes them out. Smaller than a
/// chunk: a file takes any size of write, and a server holds one such buffer per upload in
/// flight; a hop to a blocking thread per 256 KiB costs nothing next to the write itself.
const FOLDER_WRITE_BYTES: usize = 256 << 10;
/// Files one command stores (or uploads) at once. A blob costs two fsyncs (its bytes, then its
/// name) that mostly wait on the disk; with several in flight the file system commits their
/// journal entries together and one file's bytes are written while another's are synced. Few
/// enough to bound memory (a chunk buffer each, here and on a server) and open files.
pub const PUTS_IN_FLIGHT: usize = 4;

/// A blob's name: the blake3 of its bytes. Its text form is 64 lower-case hex characters, the
/// only form accepted (one blob, one name).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobName([u8; 32]);

impl BlobName {
    /// Parses the text form; anything but 64 lower-case hex characters is refused.
    pub fn parse(text: &str) -> Result<BlobName, BlobError> {
        let bad = || BlobError::BadName { name: text.chars().take(80).collect() };
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| bad())?;
        Ok(BlobName(bytes))
    }

    /// The name of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobName {
        BlobName(*blake3::hash(bytes).as_bytes())
    }

    /// The name and length of everything `reader` yields (read 64 KiB at a time, as blake3
    /// hashes fastest).
    pub fn of_reader(reader: &mut impl std::io::Read) -> std::io::Result<(BlobName, u64)> {
        let (hash, bytes) = assay_kernels::supervise::hash_reader(reader)?;
        Ok((BlobName(*hash.as_bytes()), bytes))
    }

    /// The name of the bytes `hasher` has seen.
    pub fn of_hash(hasher: &blake3::Hasher) -> BlobName {
        BlobName(*hasher.finalize().as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobName({self})")
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    #[error("{name:?} is not a blob name: a blob is named by 64 lower-case hex characters (its blake3)")]
    BadName { name: String },
    #[error("the blob is larger than the limit of {bytes_max} bytes")]
    TooLarge { bytes_max: u64 },
    #[error("the bytes hash to {found}, not to the name {expected}; nothing was kept")]
    Mismatch { expected: BlobName, found: BlobName },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored blob {name} is damaged: {detail}")]
    Damaged { name: BlobName, detail: String },
}

impl BlobError {
    fn io(what: impl fmt::Display, source: std::io::Error) -> BlobError {
        BlobError::Io { what: what.to_string(), source }
    }
}

/// What a finished write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Put {
    pub name: BlobName,
    pub bytes: u64,
    /// True when the blob was already stored (nothing was written again).
    pub existed: bool,
}

/// What a whole read of a stored blob found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Stored, and its bytes hash to its name.
    Whole {
        bytes: u64,
    },
    Missing,
    /// Stored under this name, but its bytes hash to `found` (or could not all be read).
    Corrupt {
        found: Option<BlobName>,
        bytes: u64,
    },
}

/// The evidence store of one ledger.
#[derive(Clone, Debug)]
pub enum BlobStore {
    Folder(FolderBlobs),
    Postgres(PgBlobs),
}

impl BlobStore {
    /// The store of the ledger at `target` (what `--db` takes): the folder `<file>.blobs/`
    /// beside a SQLite file, or the tables of a `postgres://` ledger. Blobs larger than
    /// `bytes_max` are refused.
    pub async fn open(target: &str, bytes_max: u64) -> Result<BlobStore, BlobError> {
        if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            return Ok(BlobStore::Postgres(PgBlobs::open(target, bytes_max).await?));
        }
        let path = target.strip_prefix("sqlite://").unwrap_or(target);
        Ok(BlobStore::Folder(FolderBlobs::new(folder::beside(Path::new(path)), bytes_max)))
    }

    /// The same store, refusing blobs larger than `bytes_max` (a clone shares the PostgreSQL
    /// pool).
    pub fn with_bytes_max(self, bytes_max: u64) -> BlobStore {
        match self {
            BlobStore::Folder(f) => BlobStore::Folder(FolderBlobs::new(f.root().to_path_buf(), bytes_max)),
            BlobStore::Postgres(p) => BlobStore::Postgres(p.with_bytes_max(bytes_max)),
        }
    }

    pub fn bytes_max(&self) -> u64 {
        match self {
            BlobStore::Folder(f) => f.bytes_max(),
            BlobStore::Postgres(p) => p.bytes_max(),
        }
    }

    /// A writer for a new blob; `expected` is the name the bytes must hash to (else nothing is
    /// kept and [`BlobWriter::finish`] fails with [`BlobError::Mismatch`]).
    pub async fn writer(&self, expected: Option<BlobName>) -> Result<BlobWriter, BlobError> {
        let (sink, buffer_bytes) = match self {
            BlobStore::Folder(f) => (Sink::Folder(f.temp().await?), FOLDER_WRITE_BYTES),
            BlobStore::Postgres(p) => (Sink::Postgres(p.upload().await?), CHUNK_BYTES),
        };
        Ok(BlobWriter {
            hasher: blake3::Hasher::new(),
            bytes: 0,
            bytes_max: self.bytes_max(),
            expected,
            buffer: Vec::with_capacity(buffer_bytes),
            buffer_bytes,
            sink,
        })
    }

    /// The size of the blob `name`, if it is stored.
    pub async fn size(&self, name: &BlobName) -> Result<Option<u64>, BlobError> {
        match self {
            BlobStore::Folder(f) => f.size(name).await,
            BlobStore::Postgres(p) => p.size(name).await,
        }
    }

    /// The sizes of the stored blobs among `names` (at most [`stored::FILES_MAX`] at a time:
    /// one query, or a `stat` each); a name not stored is left out.
    pub async fn sizes(&self, names: &[BlobName]) -> Result<Vec<(BlobName, u64)>, BlobError> {
        match self {
            BlobStore::Folder(f) => f.sizes(names).await,
            BlobStore::Postgres(p) => p.sizes(names).await,
        }
    }

    /// Marks the stored blob `name` as stored now (retention reads a blob's age from its last
    /// store, `gc.rs`): what an upload of bytes already stored does instead of writing them.
    /// False when it is not stored (any more).
    pub async fn refresh(&self, name: &BlobName) -> Result<bool, BlobError> {
        match self {
            BlobStore::Folder(f) => f.refresh(name).await,
            BlobStore::Postgres(p) => p.refresh(name).await,
        }
    }

    /// A reader of bytes `[start, end)` of the blob `name` (`end` past its size reads to its
    /// end); `None` when the blob is not stored.
    pub async fn read(&self, name: &BlobName, start: u64, end: u64) -> Result<Option<BlobReader>, BlobError> {
        let Some(size) = self.size(name).await? else { return Ok(None) };
        let end = end.min(size);
        let source = match self {
            BlobStore::Folder(f) => match f.open(name, start).await? {
                Some(file) => Source::Folder(file),
                None => return Ok(None),
            },
            BlobStore::Postgres(p) => Source::Postgres(p.clone()),
        };
        Ok(Some(BlobReader { name: *name, at: start.min(end), end, source }))
    }

    /// Stores the file at `path`, read a chunk at a time.
    pub async fn put_file(&self, path: &Path) -> Result<Put, BlobError> {
        if let BlobStore::Folder(f) = self {
            return f.put_file(path).await;
        }
        let mut file = tokio::fs::File::open(path).await.map_err(|e| BlobError::io(path.display(), e))?;
        let mut writer = self.writer(None).await?;
        let mut buffer = vec![0u8; CHUNK_BYTES];
        loop {
            let n = file.read(&mut buffer).await.map_err(|e| BlobError::io(path.display(), e))?;
            if n == 0 {
                break;
            }
            writer.write(&buffer[..n]).await?;
        }
        writer.finish().await
    }

    /// Stores the files at `paths` as [`BlobStore::put_file`] does, up to [`PUTS_IN_FLIGHT`] at
    /// once; the results come in the order of `paths`. Each blob is durable under its name
    /// when its result comes, as with one file at a time.
    pub fn put_files<'a>(&'a self, paths: &'a [PathBuf]) -> impl Stream<Item = Result<Put, BlobError>> + 'a {
        futures_util::stream::iter(paths.iter().map(|p| self.put_file(p))).buffered(PUTS_IN_FLIGHT)
    }

    /// Reads the blob `name` whole and says whether its bytes still hash to its name.
    pub async fn check(&self, name: &BlobName) -> Result<BlobState, BlobError> {
        let Some(mut reader) = self.read(name, 0, u64::MAX).await? else { return Ok(BlobState::Missing) };
        let mut check = Check::default();
        loop {
            match reader.next_chunk().await {
                Ok(Some(chunk)) => check.update(&chunk),
                Ok(None) => return Ok(check.finish(name)),
                Err(BlobError::Damaged { .. }) => return Ok(check.cut_short()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// A blob's bytes read back, hashed as they come: what [`BlobStore::check`] and a download's
/// check conclude.
#[derive(Default)]
pub struct Check {
    hasher: blake3::Hasher,
    bytes: u64,
}

impl Check {
    pub fn update(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.hasher.update(chunk);
    }

    /// Every byte was read: whole when they hash to `name`.
    pub fn finish(&self, name: &BlobName) -> BlobState {
        let found = BlobName::of_hash(&self.hasher);
        if found == *name {
            BlobState::Whole { bytes: self.bytes }
        } else {
            BlobState::Corrupt { found: Some(found), bytes: self.bytes }
        }
    }

    /// The bytes stopped before the end.
    pub fn cut_short(&self) -> BlobState {
        BlobState::Corrupt { found: None, bytes: self.bytes }
    }
}

enum Sink {
    Folder(folder::Temp),
    Postgres(crate::store::PgBlobUpload),
}

/// A blob being written: hashed a buffer at a time, refused past the size limit, kept only by
/// [`BlobWriter::finish`]. Dropped unfinished, it leaves nothing under any blob name.
pub struct BlobWriter {
    hasher: blake3::Hasher,
    bytes: u64,
    bytes_max: u64,
    expected: Option<BlobName>,
    /// Bytes not yet handed to the backend (at most `buffer_bytes`: PostgreSQL chunks are
    /// whole).
    buffer: Vec<u8>,
    buffer_bytes: usize,
    sink: Sink,
}

impl BlobWriter {
    /// Appends `data`.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), BlobError> {
        self.bytes += data.len() as u64;
        if self.bytes > self.bytes_max {
            return Err(BlobError::TooLarge { bytes_max: self.bytes_max });
        }
        while !data.is_empty() {
            let room = self.buffer_bytes - self.buffer.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buffer.extend_from_slice(now);
            data = rest;
            if self.buffer.len() == self.buffer_bytes {
                self.drain().await?;
            }
        }
        Ok(())
    }

    /// Hashes the buffered bytes and hands them to the backend. Hashed here, a whole buffer at
    /// once, not as each piece of a request body arrives: blake3 hashes up to 16 of its 1 KiB
    /// chunks together, so one update of 256 KiB costs about half of many frame-sized ones.
    async fn drain(&mut self) -> Result<(), BlobError> {
        self.hasher.update(&self.buffer);
        self.send().await
    }

    /// Hands the buffered bytes (already hashed) to the backend.
    async fn send(&mut self) -> Result<(), BlobError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        match &mut self.sink {
            Sink::Folder(t) => self.buffer = t.write(std::mem::take(&mut self.buffer)).await?,
            Sink::Postgres(u) => u.chunk(&self.buffer).await?,
        }
        self.buffer.clear();
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Checks the name, makes the bytes durable and visible under it (or finds them already
    /// stored), and reports what was kept.
    pub async fn finish(mut self) -> Result<Put, BlobError> {
        self.hasher.update(&self.buffer);
        let name = BlobName::of_hash(&self.hasher);
        if let Some(expected) = self.expected
            && expected != name
        {
            return Err(BlobError::Mismatch { expected, found: name });
        }
        self.send().await?;
        let existed = match self.sink {
            Sink::Folder(t) => t.keep(&name).await?,
            Sink::Postgres(u) => !u
                .commit(&name.to_hex(), self.bytes, crate::clock::now_ns())
                .await
                .map_err(BlobError::Store)?,
        };
        Ok(Put { name, bytes: self.bytes, existed })
    }
}

enum Source {
    Folder(tokio::fs::File),
    Postgres(PgBlobs),
}

/// Bytes of one stored blob, a chunk at a time.
pub struct BlobReader {
    name: BlobName,
    at: u64,
    end: u64,
    source: Source,
}

impl BlobReader {
    /// Bytes this reader will yield in all.
    pub fn remaining(&self) -> u64 {
        self.end - self.at
    }

    /// The next chunk (at most [`CHUNK_BYTES`]), or `None` at the end. A blob shorter than its
    /// recorded size is [`BlobError::Damaged`].
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        if self.at >= self.end {
            return Ok(None);
        }
        let want = (self.end - self.at).min(CHUNK_BYTES as u64) as usize;
        let chunk = match &mut self.source {
            Source::Folder(file) => folder::read_some(file, want).await?,
            Source::Postgres(p) => p.read_at(&self.name, self.at, want).await?,
        };
        if chunk.is_empty() {
            return Err(BlobError::Damaged {
                name: self.name,
                detail: format!("it ends at byte {}", self.at),
            });
        }
        self.at += chunk.len() as u64;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests;

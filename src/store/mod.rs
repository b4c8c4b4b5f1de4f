//! Storage. Only this module knows SQL.
//!
//! The log (`records`, `merkle_nodes`, `checkpoints`, `head`) is the ground state; anything
//! else stored is derived or operator configuration.

mod backend;
mod blobs;
mod cosignatures;
mod migrations;
mod postgres;
mod read_ahead;
mod rows;
mod sqlite;
pub mod sqlite_alloc;
mod sqlite_scan;
mod tail;
mod tokens;
mod witness_state;

pub use read_ahead::{Paged, read_ahead};

use std::path::Path;
use std::time::Duration;

use assay_events::Hash32;
use assay_events::merkle::NodeId;
use assay_events::record::LeafFields;

pub use blobs::PgBlobUpload;
pub use cosignatures::{CosignatureRow, WITNESSES_MAX};
pub use postgres::PgStore;
pub use rows::{CheckpointRow, CommitBatch, FoldRecord, HeadRow, RecordRow, StoredId, StoredRecord};
pub use sqlite::SqliteStore;
pub use tail::{Beyond, Truncated, Truncation};
pub use witness_state::{Refusal, WitnessStateStore, WitnessStep, Witnessed};

/// Longest wait for one database call of the append path and the follower (a read, taking the
/// writer lock, writing and committing a batch). Longer than any healthy call (a full batch of
/// 4096 events commits in tens of milliseconds), shorter than a client's patience (the server
/// ends requests after 30 s; a request may wait for the batch in flight and then its own, so
/// two of these must fit). A database that stops answering without closing the connection (a
/// black-holed network) thus fails the batch instead of blocking the sequencer until the
/// operating system's TCP timeout, minutes later.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `call`, failing with [`StoreError::Timeout`] after `limit`. Dropping the call drops its
/// connection: a pooled one is checked with a bounded ping before it is reused, and closed
/// when the ping does not answer (see `postgres.rs`), so a timed-out connection never serves
/// another query.
pub async fn bounded<T>(
    what: &'static str,
    limit: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call).await.unwrap_or(Err(StoreError::Timeout { what, after: limit }))
}

/// How hard a commit pushes data to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged append survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash; the last commits may be lost on power loss.
    Relaxed,
}

/// How many connections a SQLite store opens at most (a PostgreSQL store sizes its pool by its
/// own rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connections {
    /// A long-lived process's: readers beside the writer (a server answers reads in parallel).
    #[default]
    Shared,
    /// A one-shot process that appends and then exits: the sequencer's write transaction and
    /// one read beside it (its lookups of stored ids), the fewest it works with. Each SQLite
    /// connection has a worker thread, a page cache and prepared statements of its own, and a
    /// one-shot append of 200,000 envelopes opened all 8 of the shared pool by its end: 182.6
    /// against 107.9 MiB peak RSS with 2 (BENCHMARKS.md, issue 20).
    OneShot,
}

/// Errors from the store. Callers map them to exit codes and HTTP statuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the ledger database {target}: {source}")]
    Open { target: String, source: sqlx::Error },
    /// Opened without `create`, and the database holds no ledger (no `head` table).
    #[error("no ledger in {0}")]
    NoLedger(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the ledger head moved: expected size {expected}, found {found}")]
    HeadMoved { expected: u64, found: u64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another writer changed the rows an all-or-nothing operation had read; it changed nothing.
    #[error("the ledger changed meanwhile ({0}); nothing was changed")]
    Changed(String),
    /// The task inserting a batch's rows (`ledger::row_writer`) stopped before the batch was
    /// written (the runtime shutting down); the batch fails and nothing of it is committed.
    #[error("the batch's row writer stopped before the batch was written")]
    WriterStopped,
    /// The database did not answer in time; the connection was given up.
    #[error("the database call {what} timed out after {after:?}")]
    Timeout { what: &'static str, after: Duration },
    /// A filter value that breaks the identifier rule (the caller's input, not the store's
    /// failure).
    #[error("{field}: {reason}")]
    BadFilter { field: &'static str, reason: assay_events::text::TextError },
}

/// The ledger store. One enum over the backends so callers never see a dialect.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// A batch transaction holding the writer lock.
pub enum BatchTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl BatchTx {
    /// Inserts part of a batch's records and nodes (see [`SqliteStore::insert`]); not committed
    /// until [`BatchTx::write`].
    pub async fn insert(&mut self, part: &CommitBatch) -> Result<(), StoreError> {
        match self {
            BatchTx::Sqlite(tx) => SqliteStore::insert(tx, part).await,
            BatchTx::Postgres(tx) => PgStore::insert(tx, part).await,
        }
    }

    /// Writes records, nodes, checkpoint and head, and commits.
    pub async fn write(self, batch: &CommitBatch) -> Result<(), StoreError> {
        match self {
            BatchTx::Sqlite(tx) => SqliteStore::write(tx, batch).await,
            BatchTx::Postgres(tx) => PgStore::write(tx, batch).await,
        }
    }
}

/// How a follower learns that the head may have moved.
pub enum Changes {
    /// Poll the head (SQLite).
    Poll,
    /// PostgreSQL LISTEN on the head channel.
    Listen(Box<sqlx::postgres::PgListener>),
}

impl Changes {
    /// Returns after a notification or after `poll`, whichever comes first.
    pub async fn wait(&mut self, poll: std::time::Duration) -> Result<(), StoreError> {
        match self {
            Changes::Poll => {
                tokio::time::sleep(poll).await;
                Ok(())
            }
            Changes::Listen(l) => match tokio::time::timeout(poll, l.recv()).await {
                Ok(r) => r.map(|_| ()).map_err(StoreError::Db),
                Err(_) => Ok(()),
            },
        }
    }
}

/// Delegates a method to the backend.
macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Opens (creating if `create`) the ledger at `target`: a `postgres://` URL (optionally
    /// with `?schema=NAME`), or a SQLite file path (optionally `sqlite://PATH`).
    pub async fn open(target: &str, durability: Durability, create: bool) -> Result<Store, StoreError> {
        Store::open_with(target, durability, create, Connections::Shared).await
    }

    /// [`Store::open`] with at most `connections` to a SQLite file.
    pub async fn open_with(
        target: &str,
        durability: Durability,
        create: bool,
        connections: Connections,
    ) -> Result<Store, StoreError> {
        if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            return Ok(Store::Postgres(PgStore::open(target, durability, create).await?));
        }
        let path = target.strip_prefix("sqlite://").unwrap_or(target);
        if !create && !Path::new(path).exists() {
            return Err(StoreError::Open {
                target: target.to_owned(),
                source: sqlx::Error::Configuration("no such file".into()),
            });
        }
        Ok(Store::Sqlite(SqliteStore::open(path, durability, create, connections).await?))
    }

    pub async fn head(&self) -> Result<Option<HeadRow>, StoreError> {
        dispatch!(self, s => s.head().await)
    }

    /// Opens a batch transaction that holds the writer lock (no other writer can commit
    /// until it ends) and returns the stored size. Dropping it rolls back.
    pub async fn lock(&self) -> Result<(BatchTx, u64), StoreError> {
        Ok(match self {
            Store::Sqlite(s) => {
                let (tx, size) = s.lock().await?;
                (BatchTx::Sqlite(tx), size)
            }
            Store::Postgres(s) => {
                let (tx, size) = s.lock().await?;
                (BatchTx::Postgres(tx), size)
            }
        })
    }

    /// Commits a write that changes nothing, under the writer lock: whether the database
    /// takes writes now (after a failed commit, before any new batch has shown it).
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.probe_write().await)
    }

    /// Writes a batch in one transaction; fails with `HeadMoved` unless the stored head
    /// still has `batch.base_size` records.
    pub async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        dispatch!(self, s => s.commit(batch).await)
    }

    /// Records with seq in `[from, from + limit)`, ascending.
    pub async fn records(&self, from: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
        dispatch!(self, s => s.records(from, limit).await)
    }

    /// Reads records from `from` on, in pages of `page_records`, one page ahead of the
    /// consumer (see [`read_ahead`]). The stream ends at the first empty page or after the
    /// first error.
    pub fn scan(
        &self,
        from: u64,
        page_records: u32,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<StoredRecord>, StoreError>> {
        let store = self.clone();
        read_ahead(from, u64::MAX, page_records, move |next, limit| {
            let store = store.clone();
            async move { store.records_bulk(next, limit).await }
        })
    }

    /// [`Store::scan`] of the columns a fold reads ([`FoldRecord`]).
    pub fn scan_fold(
        &self,
        from: u64,
        page_records: u32,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<FoldRecord>, StoreError>> {
        let store = self.clone();
        read_ahead(from, u64::MAX, page_records, move |next, limit| {
            let store = store.clone();
            async move {
                match &store {
                    Store::Sqlite(s) => sqlite_scan::fold_records(s.pool(), next, limit).await,
                    Store::Postgres(s) => {
                        Ok(s.records(next, limit).await?.into_iter().map(FoldRecord::from).collect())
                    }
                }
            }
        })
    }

    /// [`Store::records`] for whole-log reads: SQLite pages come straight from its C API.
    pub async fn records_bulk(&self, from: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
        match self {
            Store::Sqlite(s) => sqlite_scan::records(s.pool(), from, limit).await,
            Store::Postgres(s) => s.records(from, limit).await,
        }
    }

    /// Tree nodes of one level with index in `[first, last]`, ascending (a bulk read).
    pub async fn nodes_range(
        &self,
        level: u8,
        first: u64,
        last: u64,
    ) -> Result<Vec<(u64, Hash32)>, StoreError> {
        match self {
            Store::Sqlite(s) => sqlite_scan::nodes(s.pool(), level, first, last).await,
            Store::Postgres(s) => {
                let ids: Vec<NodeId> = (first..=last).map(|index| NodeId { level, index }).collect();
                let mut out: Vec<(u64, Hash32)> =
                    s.nodes(&ids).await?.into_iter().map(|(id, h)| (id.index, h)).collect();
                out.sort_unstable_by_key(|n| n.0);
                Ok(out)
            }
        }
    }

    /// Records filtered by type and/or subject, seq ≥ from, ascending. A GPU subject
    /// (`gpu/<pci>`, any form) matches every form of that PCI id a ledger may hold.
    /// A filter no record can
    /// match because it breaks the identifier rule ([`assay_events::text`]: a control
    /// character, or too long) is [`StoreError::BadFilter`], on every backend alike, before any
    /// SQL (PostgreSQL `text` cannot even hold U+0000).
    pub async fn records_filtered(
        &self,
        from: u64,
        limit: u32,
        ty: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        use assay_events::text::{SUBJECT_CHARS_MAX, TYPE_CHARS_MAX, check_text};
        for (field, value, max) in [("type", ty, TYPE_CHARS_MAX), ("subject", subject, SUBJECT_CHARS_MAX)] {
            if let Some(v) = value {
                check_text(v, max).map_err(|reason| StoreError::BadFilter { field, reason })?;
            }
        }
        dispatch!(self, s => s.records_filtered(from, limit, ty, subject).await)
    }

    /// The leaf fields of records with seq in `[from, from + limit)`, ascending: what the
    /// tree hashed, without the payloads.
    pub async fn leaves(&self, from: u64, limit: u32) -> Result<Vec<LeafFields>, StoreError> {
        dispatch!(self, s => s.leaves(from, limit).await)
    }

    pub async fn record_by_digest(&self, digest: &Hash32) -> Result<Option<StoredRecord>, StoreError> {
        dispatch!(self, s => s.record_by_digest(digest).await)
    }

    /// Seq, digest and signatures digest of the records with these (source, event id) pairs.
    pub async fn find_ids(&self, ids: &[(&str, &str)]) -> Result<Vec<StoredId>, StoreError> {
        dispatch!(self, s => s.find_ids(ids).await)
    }

    pub async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash32)>, StoreError> {
        dispatch!(self, s => s.nodes(ids).await)
    }

    pub async fn checkpoint_at(&self, size: u64) -> Result<Option<CheckpointRow>, StoreError> {
        dispatch!(self, s => s.checkpoint_at(size).await)
    }

    /// Checkpoints with size in `[from, from + limit)` order, ascending.
    pub async fn checkpoints(&self, from: u64, limit: u32) -> Result<Vec<CheckpointRow>, StoreError> {
        dispatch!(self, s => s.checkpoints(from, limit).await)
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.setting(name).await)
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_setting(name, value).await)
    }

    /// Waits until another writer may have committed: a PostgreSQL notification, or, for
    /// SQLite (no notifications), the poll interval. Errors when the listener breaks; callers
    /// then fall back to polling.
    pub async fn changes(&self) -> Result<Changes, StoreError> {
        Ok(match self {
            Store::Sqlite(_) => Changes::Poll,
            Store::Postgres(s) => Changes::Listen(Box::new(s.listen().await?)),
        })
    }

    /// True when [`Store::changes`] can listen for commits rather than poll.
    pub fn notifies(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}

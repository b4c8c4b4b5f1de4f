//! The SQLite backend: WAL, `synchronous=FULL` unless relaxed, one writer at a time
//! (`BEGIN IMMEDIATE`), many readers. The queries are in `backend.rs`.

use std::str::FromStr;
use std::time::Duration;

use assay_events::Hash32;
use assay_events::merkle::NodeId;
use assay_events::record::LeafFields;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, Transaction};

use super::backend::{
    INSERT_NODES_ROWS_MAX, INSERT_RECORDS_ROWS_MAX, LOOKUP_PAIRS_MAX, RECORD_COLUMNS, WRITE_PROBE_SETTING,
    insert_rows, sql_backend,
};
use super::{
    CheckpointRow, CommitBatch, Connections, Durability, HeadRow, StoreError, StoredId, StoredRecord,
};

/// Connections of [`Connections::Shared`] and of [`Connections::OneShot`].
const CONNECTIONS_MAX: u32 = 8;
const ONE_SHOT_CONNECTIONS_MAX: u32 = 2;
/// Page cache a connection, in KiB (`PRAGMA cache_size` takes KiB when negative), of a shared
/// and of a one-shot store.
const CACHE_KIB: u32 = 16 << 10;
const ONE_SHOT_CACHE_KIB: u32 = 4 << 10;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(
        path: &str,
        durability: Durability,
        create: bool,
        connections: Connections,
    ) -> Result<SqliteStore, StoreError> {
        // Before any connection: SQLite takes its allocator only before it initializes.
        super::sqlite_alloc::install();
        let (connections_max, cache_kib) = match connections {
            Connections::Shared => (CONNECTIONS_MAX, CACHE_KIB),
            Connections::OneShot => (ONE_SHOT_CONNECTIONS_MAX, ONE_SHOT_CACHE_KIB),
        };
        let sync = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Relaxed => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|source| StoreError::Open { target: path.to_owned(), source })?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            // Another process may hold the write lock for the length of one batch.
            .busy_timeout(Duration::from_secs(30))
            // 16 MiB of page cache a connection, 4 MiB in a one-shot process. In WAL mode a
            // connection drops its cache whenever another one has committed, so only the
            // writer's stays warm, and appends touch the right edge of the seq-ordered tables
            // plus one index leaf per (UUIDv7, time-ordered) id; 64 MiB a connection grew the
            // memory of a one-shot append with the ledger's size and bought nothing measurable,
            // and a one-shot append's page caches still grew to their bound by 1M records
            // (BENCHMARKS.md, issue 20).
            .pragma("cache_size", format!("-{cache_kib}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(connections_max)
            .after_release(|conn, _| {
                Box::pin(async move {
                    // The ping runs after the rollback a dropped transaction queued; a connection
                    // still inside a transaction then (its COMMIT failed and SQLite had already
                    // rolled back: a full disk, an I/O error) is closed, never reused.
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target: path.to_owned(), source })?;
        super::migrations::migrator(super::migrations::SQLITE).await?.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// `BEGIN IMMEDIATE` takes the database's write lock at once, so the head read inside the
/// transaction cannot be overtaken by another writer.
async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

sql_backend!(SqliteStore, Sqlite, SqliteRow, values, begin, "", "", "CROSS JOIN");
super::tokens::tokens_backend!(SqliteStore, Sqlite);
super::cosignatures::cosignatures_backend!(SqliteStore, Sqlite);
super::tail::tail_backend!(SqliteStore, Sqlite, sqlx::SqliteConnection, begin, "");

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite rolls a transaction back by itself when its COMMIT fails on a full disk or an I/O
    /// error (SQLITE_FULL, SQLITE_IOERR). sqlx then keeps counting the connection as inside a
    /// transaction (its COMMIT and the ROLLBACK on drop both fail): reused, that connection
    /// refused every later batch ("begin_with at non-zero transaction depth"), for good.
    /// Connections left that way are closed instead of going back to the pool.
    #[tokio::test]
    async fn a_failed_commit_does_not_wedge_the_writer() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("ledger.db");
        let store =
            SqliteStore::open(path.to_str().expect("UTF-8"), Durability::Relaxed, true, Connections::Shared)
                .await
                .expect("open");
        for _ in 0..CONNECTIONS_MAX {
            let (mut tx, _) = store.lock().await.expect("the writer lock");
            // What SQLite does when COMMIT fails for lack of space: the transaction is gone.
            sqlx::query("ROLLBACK").execute(&mut *tx).await.expect("rolled back");
            assert!(tx.commit().await.is_err(), "COMMIT outside a transaction fails");
        }
        for i in 0..2 * CONNECTIONS_MAX {
            let (tx, _) =
                store.lock().await.unwrap_or_else(|e| panic!("batch {i} after failed commits: {e}"));
            tx.commit().await.expect("commit");
        }
    }

    /// A one-shot store opens at most two connections with a smaller page cache, enough for what the sequencer does at
    /// once (a lookup of stored ids while it holds the writer's transaction), and SQLite
    /// allocates through the global allocator.
    #[tokio::test]
    async fn a_one_shot_store_holds_two_connections_and_the_writer_can_still_read() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("ledger.db");
        let path = path.to_str().expect("UTF-8");
        let shared =
            SqliteStore::open(path, Durability::Relaxed, true, Connections::Shared).await.expect("open");
        assert_eq!(shared.pool().options().get_max_connections(), CONNECTIONS_MAX);
        let cache: i64 =
            sqlx::query_scalar("PRAGMA cache_size").fetch_one(shared.pool()).await.expect("read");
        assert_eq!(cache, -i64::from(CACHE_KIB), "the shared page cache, in KiB");
        shared.pool().close().await;
        let store =
            SqliteStore::open(path, Durability::Relaxed, false, Connections::OneShot).await.expect("open");
        assert_eq!(store.pool().options().get_max_connections(), ONE_SHOT_CONNECTIONS_MAX);
        let cache: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(store.pool()).await.expect("read");
        assert_eq!(cache, -i64::from(ONE_SHOT_CACHE_KIB), "the one-shot page cache, in KiB");
        assert!(super::super::sqlite_alloc::installed(), "SQLite allocates through the global allocator");
        let (tx, _) = store.lock().await.expect("the writer lock");
        let read = tokio::time::timeout(Duration::from_secs(5), store.find_ids(&[("src", "id")]));
        assert!(read.await.expect("a read beside the writer").expect("read").is_empty());
        let second = tokio::time::timeout(Duration::from_secs(5), store.pool().acquire()).await;
        let second = second.expect("a second connection").expect("acquired");
        let third = tokio::time::timeout(Duration::from_millis(300), store.pool().acquire()).await;
        assert!(third.is_err(), "a third connection while two are held");
        drop((second, tx));
    }
}

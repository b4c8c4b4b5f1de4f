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
use super::{CheckpointRow, CommitBatch, Durability, HeadRow, StoreError, StoredId, StoredRecord};

const CONNECTIONS_MAX: u32 = 8;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(path: &str, durability: Durability, create: bool) -> Result<SqliteStore, StoreError> {
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
            // 16 MiB of page cache a connection (negative: KiB). In WAL mode a connection drops
            // its cache whenever another one has committed, so only the writer's stays warm,
            // and appends touch the right edge of the seq-ordered tables plus one index leaf
            // per id; 64 MiB a connection grew the memory of a one-shot append with the
            // ledger's size (BENCHMARKS.md, issue 20) and bought nothing measurable.
            .pragma("cache_size", "-16384");
        let pool = SqlitePoolOptions::new()
            .max_connections(CONNECTIONS_MAX)
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
            SqliteStore::open(path.to_str().expect("UTF-8"), Durability::Relaxed, true).await.expect("open");
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
}

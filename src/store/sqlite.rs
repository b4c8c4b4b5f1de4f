//! The SQLite backend: WAL, `synchronous=FULL` unless relaxed, one writer at a time
//! (`BEGIN IMMEDIATE`), many readers. The queries are in `backend.rs`.

use std::str::FromStr;
use std::time::Duration;

use assay_events::Hash32;
use assay_events::merkle::NodeId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::backend::{
    INSERT_NODES_ROWS_MAX, INSERT_RECORDS_ROWS_MAX, LOOKUP_PAIRS_MAX, RECORD_COLUMNS, insert_rows,
    sql_backend,
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
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new()
            .max_connections(CONNECTIONS_MAX)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target: path.to_owned(), source })?;
        sqlx::migrate!("schemas/sql/sqlite").run(&pool).await?;
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
super::tail::tail_backend!(SqliteStore, Sqlite, sqlx::SqliteConnection, begin, "");

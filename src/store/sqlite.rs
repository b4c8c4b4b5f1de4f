//! The SQLite backend: WAL, `synchronous=FULL` unless relaxed, one writer at a time
//! (`BEGIN IMMEDIATE`), many readers.

use std::str::FromStr;
use std::time::Duration;

use assay_events::Hash32;
use assay_events::merkle::NodeId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{CheckpointRow, CommitBatch, Durability, HeadRow, StoreError, StoredRecord};

/// Rows per multi-row INSERT: 12 columns × 64 rows stays far below SQLite's 32766
/// bound-parameter limit while amortising per-statement overhead.
const INSERT_RECORDS_ROWS_MAX: usize = 64;
const INSERT_NODES_ROWS_MAX: usize = 256;
/// Pairs per idempotency lookup statement (2 parameters each).
const FIND_IDS_PAIRS_MAX: usize = 256;
const READ_CONNECTIONS_MAX: u32 = 8;

const RECORD_COLUMNS: &str = "seq, digest, source, event_id, type, subject, time, received_at, \
                              payload, signatures, prev_hash, record_hash";

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
            .max_connections(READ_CONNECTIONS_MAX)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target: path.to_owned(), source })?;
        sqlx::migrate!("schemas/sql/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn head(&self) -> Result<Option<HeadRow>, StoreError> {
        let row = sqlx::query("SELECT size, record_hash, frontier, checkpoint_size FROM head WHERE id = 0")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| head_from_row(&r)).transpose()
    }

    pub async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let found: Option<i64> =
            sqlx::query_scalar("SELECT size FROM head WHERE id = 0").fetch_optional(&mut *tx).await?;
        let found = found.map_or(0, |s| s as u64);
        if found != batch.base_size {
            return Err(StoreError::HeadMoved { expected: batch.base_size, found });
        }
        for chunk in batch.records.chunks(INSERT_RECORDS_ROWS_MAX) {
            let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO records ({RECORD_COLUMNS}) "));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.seq as i64)
                    .push_bind(r.digest.0.as_slice())
                    .push_bind(r.source.as_str())
                    .push_bind(r.event_id.as_str())
                    .push_bind(r.ty.as_str())
                    .push_bind(r.subject.as_deref())
                    .push_bind(r.time.as_str())
                    .push_bind(r.received_at_ns)
                    .push_bind(r.payload.as_slice())
                    .push_bind(r.signatures.as_slice())
                    .push_bind(r.prev_hash.0.as_slice())
                    .push_bind(r.record_hash.0.as_slice());
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in batch.nodes.chunks(INSERT_NODES_ROWS_MAX) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO merkle_nodes (level, idx, hash) ");
            q.push_values(chunk, |mut b, (id, hash)| {
                b.push_bind(i64::from(id.level)).push_bind(id.index as i64).push_bind(hash.0.as_slice());
            });
            q.build().execute(&mut *tx).await?;
        }
        if let Some(c) = &batch.checkpoint {
            sqlx::query("INSERT INTO checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?)")
                .bind(c.size as i64)
                .bind(c.root.0.as_slice())
                .bind(c.note.as_str())
                .bind(c.signed_at_ns)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(h) = &batch.head {
            sqlx::query(
                "INSERT INTO head (id, size, record_hash, frontier, checkpoint_size) VALUES (0, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET size = excluded.size, record_hash = excluded.record_hash, \
                 frontier = excluded.frontier, checkpoint_size = excluded.checkpoint_size",
            )
            .bind(h.size as i64)
            .bind(h.record_hash.0.as_slice())
            .bind(h.frontier.as_slice())
            .bind(h.checkpoint_size as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn records(&self, from: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE seq >= ? ORDER BY seq LIMIT ?"))
                .bind(from as i64)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(record_from_row).collect()
    }

    pub async fn records_filtered(
        &self,
        from: u64,
        limit: u32,
        ty: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("SELECT {RECORD_COLUMNS} FROM records WHERE seq >= "));
        q.push_bind(from as i64);
        if let Some(t) = ty {
            q.push(" AND type = ").push_bind(t);
        }
        if let Some(s) = subject {
            q.push(" AND subject = ").push_bind(s);
        }
        q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(record_from_row).collect()
    }

    pub async fn record_by_digest(&self, digest: &Hash32) -> Result<Option<StoredRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE digest = ?"))
            .bind(digest.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub async fn find_ids(
        &self,
        ids: &[(&str, &str)],
    ) -> Result<Vec<(String, String, u64, Hash32)>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(FIND_IDS_PAIRS_MAX) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT source, event_id, seq, digest FROM records WHERE (source, event_id) IN (VALUES ",
            );
            let mut sep = q.separated(", ");
            for (source, id) in chunk {
                sep.push("(").push_bind_unseparated(*source).push_unseparated(", ");
                sep.push_bind_unseparated(*id).push_unseparated(")");
            }
            q.push(")");
            for row in q.build().fetch_all(&self.pool).await? {
                let digest: Vec<u8> = row.try_get("digest")?;
                found.push((
                    row.try_get("source")?,
                    row.try_get("event_id")?,
                    row.try_get::<i64, _>("seq")? as u64,
                    hash_from(&digest, "digest")?,
                ));
            }
        }
        Ok(found)
    }

    pub async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash32)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FIND_IDS_PAIRS_MAX) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT level, idx, hash FROM merkle_nodes WHERE (level, idx) IN (VALUES ",
            );
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push("(").push_bind_unseparated(i64::from(id.level)).push_unseparated(", ");
                sep.push_bind_unseparated(id.index as i64).push_unseparated(")");
            }
            q.push(")");
            for row in q.build().fetch_all(&self.pool).await? {
                let level: i64 = row.try_get("level")?;
                let index: i64 = row.try_get("idx")?;
                let hash: Vec<u8> = row.try_get("hash")?;
                let level =
                    u8::try_from(level).map_err(|_| StoreError::Corrupt(format!("node level {level}")))?;
                out.push((NodeId { level, index: index as u64 }, hash_from(&hash, "node hash")?));
            }
        }
        Ok(out)
    }

    pub async fn checkpoint_at(&self, size: u64) -> Result<Option<CheckpointRow>, StoreError> {
        let row = sqlx::query("SELECT size, root, note, signed_at FROM checkpoints WHERE size = ?")
            .bind(size as i64)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    pub async fn checkpoints(&self, from: u64, limit: u32) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT size, root, note, signed_at FROM checkpoints WHERE size >= ? ORDER BY size LIMIT ?",
        )
        .bind(from as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn hash_from(bytes: &[u8], what: &str) -> Result<Hash32, StoreError> {
    Hash32::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn head_from_row(r: &SqliteRow) -> Result<HeadRow, StoreError> {
    let hash: Vec<u8> = r.try_get("record_hash")?;
    Ok(HeadRow {
        size: r.try_get::<i64, _>("size")? as u64,
        record_hash: hash_from(&hash, "head record hash")?,
        frontier: r.try_get("frontier")?,
        checkpoint_size: r.try_get::<i64, _>("checkpoint_size")? as u64,
    })
}

fn checkpoint_from_row(r: &SqliteRow) -> Result<CheckpointRow, StoreError> {
    let root: Vec<u8> = r.try_get("root")?;
    Ok(CheckpointRow {
        size: r.try_get::<i64, _>("size")? as u64,
        root: hash_from(&root, "checkpoint root")?,
        note: r.try_get("note")?,
        signed_at_ns: r.try_get("signed_at")?,
    })
}

fn record_from_row(r: &SqliteRow) -> Result<StoredRecord, StoreError> {
    let digest: Vec<u8> = r.try_get("digest")?;
    let prev: Vec<u8> = r.try_get("prev_hash")?;
    let hash: Vec<u8> = r.try_get("record_hash")?;
    let seq = r.try_get::<i64, _>("seq")? as u64;
    let at = |what: &str| format!("seq {seq}: {what}");
    Ok(StoredRecord {
        seq,
        digest: hash_from(&digest, &at("digest"))?,
        source: r.try_get("source")?,
        event_id: r.try_get("event_id")?,
        ty: r.try_get("type")?,
        subject: r.try_get("subject")?,
        time: r.try_get("time")?,
        received_at_ns: r.try_get("received_at")?,
        payload: r.try_get("payload")?,
        signatures: r.try_get("signatures")?,
        prev_hash: hash_from(&prev, &at("prev_hash"))?,
        record_hash: hash_from(&hash, &at("record_hash"))?,
    })
}

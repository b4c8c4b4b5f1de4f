//! The SQL of the evidence store's PostgreSQL backend (`crate::blobs::postgres` does the
//! hashing, bounding and streaming). An upload's chunks go in under a fresh upload id and its
//! `blobs` row names them, all in one transaction: nothing of an upload is visible before it
//! commits, and a rolled-back or abandoned one leaves nothing behind.

use sqlx::{Postgres, Row, Transaction};

use super::{PgStore, StoreError};

/// An upload in progress, holding its transaction; dropped unfinished, it rolls back.
pub struct PgBlobUpload {
    tx: Transaction<'static, Postgres>,
    upload: String,
    next_idx: i64,
}

impl PgStore {
    /// Starts an upload (its own transaction).
    pub async fn blob_upload(&self) -> Result<PgBlobUpload, StoreError> {
        let tx = self.pool().begin().await?;
        Ok(PgBlobUpload { tx, upload: uuid::Uuid::now_v7().to_string(), next_idx: 0 })
    }

    /// The size of the committed blob named `digest`, if there is one.
    pub async fn blob_size(&self, digest: &str) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let bytes: i64 = row.try_get("bytes")?;
                u64::try_from(bytes)
                    .map(Some)
                    .map_err(|_| StoreError::Corrupt(format!("blob {digest}: size {bytes}")))
            }
        }
    }

    /// The sizes of the committed blobs among `digests` (one query): (digest, bytes).
    pub async fn blob_sizes(&self, digests: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query("SELECT digest, bytes FROM blobs WHERE digest = ANY($1)")
            .bind(digests)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let digest: String = r.try_get("digest")?;
                let bytes: i64 = r.try_get("bytes")?;
                let bytes = u64::try_from(bytes)
                    .map_err(|_| StoreError::Corrupt(format!("blob {digest}: size {bytes}")))?;
                Ok((digest, bytes))
            })
            .collect()
    }

    /// Chunk `idx` of the committed blob named `digest`; `None` when there is no such chunk.
    pub async fn blob_chunk(&self, digest: &str, idx: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let idx = i64::try_from(idx).map_err(|_| StoreError::Corrupt(format!("chunk index {idx}")))?;
        let row = sqlx::query(
            "SELECT c.data FROM blobs b JOIN blob_chunks c ON c.upload = b.upload \
             WHERE b.digest = $1 AND c.idx = $2",
        )
        .bind(digest)
        .bind(idx)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("data")).transpose()?)
    }
}

impl PgBlobUpload {
    /// Writes the next chunk.
    pub async fn chunk(&mut self, data: &[u8]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO blob_chunks (upload, idx, data) VALUES ($1, $2, $3)")
            .bind(&self.upload)
            .bind(self.next_idx)
            .bind(data)
            .execute(&mut *self.tx)
            .await?;
        self.next_idx += 1;
        Ok(())
    }

    /// Names the upload `digest` and commits. False when a blob of that name is already stored
    /// (the same content is stored once): this upload's chunks are dropped and the stored blob's
    /// `created_at` moves to now, so that retention sees it as just stored (a collection that
    /// has not yet deleted it re-reads the row and keeps it).
    pub async fn commit(mut self, digest: &str, bytes: u64, created_at_ns: i64) -> Result<bool, StoreError> {
        let bytes = i64::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("blob size {bytes}")))?;
        let row = sqlx::query(
            "INSERT INTO blobs (digest, upload, bytes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO UPDATE SET created_at = GREATEST(blobs.created_at, EXCLUDED.created_at) \
             RETURNING (xmax = 0) AS inserted",
        )
        .bind(digest)
        .bind(&self.upload)
        .bind(bytes)
        .bind(created_at_ns)
        .fetch_one(&mut *self.tx)
        .await?;
        let inserted: bool = row.try_get("inserted")?;
        if !inserted {
            sqlx::query("DELETE FROM blob_chunks WHERE upload = $1")
                .bind(&self.upload)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(inserted)
    }
}

impl PgStore {
    /// Up to `limit` committed blobs stored before `before_ns`, by digest after `after`:
    /// (digest, bytes, created_at).
    pub async fn blobs_before(
        &self,
        after: &str,
        before_ns: i64,
        limit: u32,
    ) -> Result<Vec<(String, u64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT digest, bytes, created_at FROM blobs WHERE digest > $1 AND created_at < $2 \
             ORDER BY digest LIMIT $3",
        )
        .bind(after)
        .bind(before_ns)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let digest: String = r.try_get("digest")?;
                let bytes: i64 = r.try_get("bytes")?;
                let bytes = u64::try_from(bytes)
                    .map_err(|_| StoreError::Corrupt(format!("blob {digest}: size {bytes}")))?;
                Ok((digest, bytes, r.try_get("created_at")?))
            })
            .collect()
    }

    /// Moves the `created_at` of the blob `digest` up to `now_ns`; false when it is not stored.
    pub async fn blob_refresh(&self, digest: &str, now_ns: i64) -> Result<bool, StoreError> {
        let changed = sqlx::query("UPDATE blobs SET created_at = GREATEST(created_at, $2) WHERE digest = $1")
            .bind(digest)
            .bind(now_ns)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(changed == 1)
    }

    /// Removes the blob `digest` and its chunks if it is still stored before `before_ns` (a
    /// blob stored again meanwhile has a newer `created_at` and stays). True when removed.
    pub async fn blob_remove(&self, digest: &str, before_ns: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("DELETE FROM blobs WHERE digest = $1 AND created_at < $2 RETURNING upload")
            .bind(digest)
            .bind(before_ns)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let upload: String = row.try_get("upload")?;
        sqlx::query("DELETE FROM blob_chunks WHERE upload = $1").bind(&upload).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }
}

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

    /// Names the upload `digest` and commits. False, with everything rolled back, when a blob
    /// of that name is already stored (the same content is stored once).
    pub async fn commit(mut self, digest: &str, bytes: u64, created_at_ns: i64) -> Result<bool, StoreError> {
        let bytes = i64::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("blob size {bytes}")))?;
        let inserted = sqlx::query(
            "INSERT INTO blobs (digest, upload, bytes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(&self.upload)
        .bind(bytes)
        .bind(created_at_ns)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            self.tx.commit().await?;
        } else {
            self.tx.rollback().await?;
        }
        Ok(inserted)
    }
}

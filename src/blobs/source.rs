//! Where blobs are read from: the ledger's own store, or a server's `GET /v1/blobs/{blake3}`;
//! one blob a chunk at a time either way. The evidence tar of a bundle
//! (`crate::export::evidence_tar`) and the audit's recomputation (`crate::recompute`) read
//! through it.

use super::{BlobError, BlobName, BlobReader, BlobStore};
use crate::client::{Client, ClientError};

/// A store of blobs to read.
#[derive(Clone)]
pub enum BlobSource {
    Store(BlobStore),
    Server(Client),
}

/// One blob being read.
pub enum Download {
    Store(BlobReader),
    Server(reqwest::Response),
}

/// What the next read of a [`Download`] gave.
pub enum Piece {
    Bytes(Vec<u8>),
    End,
    /// The bytes are not the blob's: the store found them damaged, or the server cut the
    /// download short (it does so when the stored bytes no longer hash to the name).
    Damaged(String),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("the evidence store: {0}")]
    Store(#[from] BlobError),
    #[error("the server: {0}")]
    Server(#[from] ClientError),
}

impl BlobSource {
    /// The size of the blob `name`; `None` when it is not stored.
    pub async fn size(&self, name: &BlobName) -> Result<Option<u64>, SourceError> {
        Ok(match self {
            BlobSource::Store(s) => s.size(name).await?,
            BlobSource::Server(c) => c.blob_size(name).await?,
        })
    }

    /// The blob `name` from its beginning; `None` when it is not stored.
    pub async fn open(&self, name: &BlobName) -> Result<Option<Download>, SourceError> {
        Ok(match self {
            BlobSource::Store(s) => s.read(name, 0, u64::MAX).await?.map(Download::Store),
            BlobSource::Server(c) => c.get_blob(name).await?.map(Download::Server),
        })
    }
}

impl Download {
    /// The next chunk, the end, or word that the bytes are damaged.
    pub async fn next(&mut self) -> Result<Piece, SourceError> {
        match self {
            Download::Store(reader) => match reader.next_chunk().await {
                Ok(Some(chunk)) => Ok(Piece::Bytes(chunk)),
                Ok(None) => Ok(Piece::End),
                Err(e @ BlobError::Damaged { .. }) => Ok(Piece::Damaged(e.to_string())),
                Err(e) => Err(e.into()),
            },
            Download::Server(response) => match response.chunk().await {
                Ok(Some(chunk)) => Ok(Piece::Bytes(chunk.to_vec())),
                Ok(None) => Ok(Piece::End),
                Err(e) => Ok(Piece::Damaged(format!("the download ended early: {e}"))),
            },
        }
    }
}

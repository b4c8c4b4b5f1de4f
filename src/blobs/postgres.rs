//! Blobs in the ledger's PostgreSQL database, in chunks of [`CHUNK_BYTES`] (the SQL is in
//! `crate::store::blobs`). One upload is one transaction: its chunks and its `blobs` row become
//! visible together at commit, so several servers on one database see a blob whole or not at
//! all. The store keeps its own small pool, so long uploads never hold the connections the
//! sequencer appends with. The session setting `idle_in_transaction_session_timeout` (30 s,
//! `crate::store`) also bounds an upload: a client that sends less than one chunk (1 MiB) in
//! 30 s loses its upload, which is rolled back whole.

use super::{BlobError, BlobName, CHUNK_BYTES};
use crate::store::{CALL_TIMEOUT, Durability, PgBlobUpload, PgStore, bounded};

/// Connections of the evidence store's pool: uploads and reads at once.
const CONNECTIONS_MAX: u32 = 4;

#[derive(Clone, Debug)]
pub struct PgBlobs {
    store: PgStore,
    bytes_max: u64,
}

impl PgBlobs {
    pub async fn open(url: &str, bytes_max: u64) -> Result<PgBlobs, BlobError> {
        let store = PgStore::open_with(url, Durability::Full, false, CONNECTIONS_MAX).await?;
        Ok(PgBlobs { store, bytes_max })
    }

    pub fn with_bytes_max(self, bytes_max: u64) -> PgBlobs {
        PgBlobs { bytes_max, ..self }
    }

    pub fn bytes_max(&self) -> u64 {
        self.bytes_max
    }

    /// The ledger's store this evidence store keeps its tables in.
    pub(super) fn store(&self) -> &PgStore {
        &self.store
    }

    pub(super) async fn upload(&self) -> Result<PgBlobUpload, BlobError> {
        Ok(bounded("starting a blob upload", CALL_TIMEOUT, self.store.blob_upload()).await?)
    }

    pub(super) async fn size(&self, name: &BlobName) -> Result<Option<u64>, BlobError> {
        Ok(bounded("reading a blob's size", CALL_TIMEOUT, self.store.blob_size(&name.to_hex())).await?)
    }

    /// The sizes of the stored blobs among `names`, in one query.
    pub(super) async fn sizes(&self, names: &[BlobName]) -> Result<Vec<(BlobName, u64)>, BlobError> {
        let digests: Vec<String> = names.iter().map(BlobName::to_hex).collect();
        let found = bounded("reading blob sizes", CALL_TIMEOUT, self.store.blob_sizes(&digests)).await?;
        found.into_iter().map(|(d, bytes)| Ok((BlobName::parse(&d)?, bytes))).collect()
    }

    pub(super) async fn refresh(&self, name: &BlobName) -> Result<bool, BlobError> {
        let now_ns = crate::clock::now_ns();
        Ok(bounded("refreshing a blob", CALL_TIMEOUT, self.store.blob_refresh(&name.to_hex(), now_ns))
            .await?)
    }

    /// Up to `want` bytes from `at` (within one chunk); empty when that chunk is missing.
    pub(super) async fn read_at(&self, name: &BlobName, at: u64, want: usize) -> Result<Vec<u8>, BlobError> {
        let chunk_bytes = CHUNK_BYTES as u64;
        let idx = at / chunk_bytes;
        let Some(chunk) =
            bounded("reading a blob chunk", CALL_TIMEOUT, self.store.blob_chunk(&name.to_hex(), idx)).await?
        else {
            return Ok(Vec::new());
        };
        let from = (at % chunk_bytes) as usize;
        if from >= chunk.len() {
            return Ok(Vec::new());
        }
        let to = (from + want).min(chunk.len());
        Ok(chunk[from..to].to_vec())
    }
}

//! Inserts a batch's rows in its locked transaction while the sequencer sequences the rest of
//! the batch: the database's work (SQLite's on its connection's thread, PostgreSQL's on the
//! server) overlaps the sequencer's (authorizing, hashing, folding), instead of following it.
//! Nothing is committed here: the sequencer commits the last part with the checkpoint and the
//! head ([`BatchTx::write`]), so what is acknowledged is still exactly what one transaction
//! made durable, and a failure anywhere rolls the whole batch back.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::{BatchTx, CommitBatch, StoreError, bounded};

/// Rows (records) a part holds at least before it is handed over: enough to amortise the
/// hand-over and fill the multi-row INSERTs, few enough that the first part goes early.
const PART_RECORDS_MIN: usize = 256;

/// Parts waiting for the writer: the sequencer waits when it is this far ahead.
const PARTS_QUEUED_MAX: usize = 2;

/// The writing side of one batch: a task that owns the transaction while parts arrive.
pub(crate) struct RowWriter {
    parts: mpsc::Sender<CommitBatch>,
    task: JoinHandle<Result<BatchTx, StoreError>>,
    /// The seqs of the records handed over, in order (for the batch's postconditions).
    seqs: Vec<u64>,
}

impl RowWriter {
    /// Takes the batch's transaction; each part's insert is bounded by `call_timeout`.
    pub fn start(mut tx: BatchTx, call_timeout: std::time::Duration) -> RowWriter {
        let (parts, mut rx) = mpsc::channel(PARTS_QUEUED_MAX);
        let task = tokio::spawn(async move {
            while let Some(part) = rx.recv().await {
                bounded("insert rows", call_timeout, tx.insert(&part)).await?;
            }
            Ok(tx)
        });
        RowWriter { parts, task, seqs: Vec::new() }
    }

    /// Hands over the records and nodes `commit` holds so far once there are enough of them.
    pub async fn offer(&mut self, commit: &mut CommitBatch) -> Result<(), StoreError> {
        if commit.records.len() < PART_RECORDS_MIN {
            return Ok(());
        }
        let part = CommitBatch {
            base_size: commit.base_size,
            records: std::mem::take(&mut commit.records),
            nodes: std::mem::take(&mut commit.nodes),
            ..CommitBatch::default()
        };
        self.seqs.extend(part.records.iter().map(|r| r.seq));
        if self.parts.send(part).await.is_err() {
            // The writer stopped: its error says why.
            return Err(self.stopped().await);
        }
        // The writer was woken on this thread, where it would wait until the sequencer
        // yields: let it hand its first statement to the database now.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// The seqs of the records handed over so far.
    pub fn seqs(&self) -> &[u64] {
        &self.seqs
    }

    /// Waits for every part handed over to be inserted; returns the transaction and the seqs
    /// of the records inserted.
    pub async fn finish(self) -> Result<(BatchTx, Vec<u64>), StoreError> {
        drop(self.parts);
        Ok((joined(self.task.await)?, self.seqs))
    }

    async fn stopped(&mut self) -> StoreError {
        match joined((&mut self.task).await) {
            Err(e) => e,
            Ok(_) => StoreError::WriterStopped,
        }
    }
}

/// The writer's result; its panic is the sequencer's (as when it inserted inline), and a
/// writer cancelled by the runtime's shutdown is a failed batch.
fn joined(r: Result<Result<BatchTx, StoreError>, tokio::task::JoinError>) -> Result<BatchTx, StoreError> {
    match r {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::WriterStopped),
    }
}

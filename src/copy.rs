//! `assay copy`: a ledger moved between backends verbatim — the same records (seqs, bytes,
//! hashes), the same tree and the same signed checkpoints — then verified at the destination.

use assay_events::Hash32;
use assay_events::merkle::{Frontier, leaf_hash};

use crate::store::{CommitBatch, HeadRow, Store, StoreError};

/// Records per destination transaction.
const COPY_BATCH_RECORDS: u32 = 8192;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the destination already holds a ledger of {0} records")]
    DestinationNotEmpty(u64),
    #[error("the source is not an initialized ledger")]
    SourceEmpty,
    #[error("the source changed or is inconsistent: {0}")]
    Source(String),
    /// A record from before the ledger refused control characters, holding U+0000, which
    /// PostgreSQL `text` cannot store.
    #[error(
        "record {seq}: its {column} holds U+0000, which PostgreSQL text cannot store (the ledger \
         accepted it before it refused control characters); this ledger cannot be copied to PostgreSQL"
    )]
    Unstorable { seq: u64, column: &'static str },
}

/// Copies every record, tree node and checkpoint of `src` into the empty `dst`;
/// `progress(done, total)` after each batch. Returns the number of records.
pub async fn copy(src: &Store, dst: &Store, mut progress: impl FnMut(u64, u64)) -> Result<u64, CopyError> {
    let head = src.head().await?.ok_or(CopyError::SourceEmpty)?;
    if let Some(h) = dst.head().await? {
        return Err(CopyError::DestinationNotEmpty(h.size));
    }
    if let Some(path) = src.setting("ledger_key_path").await? {
        dst.set_setting("ledger_key_path", &path).await?;
    }
    let mut frontier = Frontier::new();
    let mut last = Hash32::ZERO;
    let mut checkpoint_size = 0;
    let mut pages = src.scan(0, COPY_BATCH_RECORDS);
    while frontier.size() < head.size {
        let Some(page) = pages.recv().await else { break };
        let mut batch = CommitBatch { base_size: frontier.size(), ..CommitBatch::default() };
        for row in page?.into_iter().take_while(|r| r.seq < head.size) {
            let record = row.to_record()?;
            if record.seq != frontier.size()
                || record.prev_hash != last
                || record.record_hash != row.record_hash
            {
                return Err(CopyError::Source(format!("record {} does not extend the chain", record.seq)));
            }
            if matches!(dst, Store::Postgres(_)) {
                let columns = [
                    ("source", Some(&row.source)),
                    ("event_id", Some(&row.event_id)),
                    ("type", Some(&row.ty)),
                    ("subject", row.subject.as_ref()),
                    ("time", Some(&row.time)),
                ];
                if let Some((column, _)) = columns.iter().find(|(_, v)| v.is_some_and(|v| v.contains('\0'))) {
                    return Err(CopyError::Unstorable { seq: row.seq, column });
                }
            }
            batch.nodes.extend(frontier.push(leaf_hash(&record.leaf())));
            last = record.record_hash;
            batch.records.push(row);
        }
        let size = frontier.size();
        batch.checkpoints = src
            .checkpoints(batch.base_size + 1, COPY_BATCH_RECORDS)
            .await?
            .into_iter()
            .filter(|c| c.size <= size)
            .collect();
        for c in &batch.checkpoints {
            checkpoint_size = checkpoint_size.max(c.size);
        }
        batch.head =
            Some(HeadRow { size, record_hash: last, frontier: frontier.to_bytes(), checkpoint_size });
        dst.commit(&batch).await?;
        progress(size, head.size);
    }
    if frontier.size() != head.size || last != head.record_hash {
        return Err(CopyError::Source(format!(
            "copied {} records, the source head says {}",
            frontier.size(),
            head.size
        )));
    }
    Ok(head.size)
}

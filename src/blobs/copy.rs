//! The evidence that goes with a ledger `assay copy` moves: every blob the source log cites
//! ([`super::cited`]), streamed a chunk at a time from the source's evidence store into the
//! destination's, through a writer that keeps it only under the name its bytes hash to. Uploads
//! no event cites stay behind (retention would take them anyway). A cited blob the source lacks,
//! or holds damaged, is not copied and is named: the log copies whole regardless, and `assay
//! evidence verify` on the copy names the same blobs.

use std::collections::BTreeMap;

use super::cited::{self, Citation};
use super::{BlobError, BlobName, BlobStore};
use crate::store::Store;

/// What copying the cited blobs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobCopy {
    /// Blobs written into the destination.
    pub copied: u64,
    /// Blobs the destination already held (not written again).
    pub existed: u64,
    /// Bytes of the blobs copied.
    pub bytes: u64,
    /// Cited blobs the source does not hold, with where they are first cited.
    pub missing: Vec<(BlobName, Citation)>,
    /// Cited blobs whose bytes in the source do not hash to their name (not copied).
    pub damaged: Vec<(BlobName, Citation)>,
}

/// Copies every blob the log in `log` cites from `src` into `dst`; `progress(done, total)`
/// after each.
pub async fn copy_cited(
    log: &Store,
    src: &BlobStore,
    dst: &BlobStore,
    mut progress: impl FnMut(u64, u64),
) -> Result<BlobCopy, BlobError> {
    let cited: BTreeMap<BlobName, Citation> = cited::cited(log).await?;
    let total = cited.len() as u64;
    let mut done = BlobCopy::default();
    for (i, (name, citation)) in cited.into_iter().enumerate() {
        progress(i as u64, total);
        if dst.size(&name).await?.is_some() {
            done.existed += 1;
            continue;
        }
        let Some(mut reader) = src.read(&name, 0, u64::MAX).await? else {
            done.missing.push((name, citation));
            continue;
        };
        let mut writer = dst.writer(Some(name)).await?;
        let whole = loop {
            match reader.next_chunk().await {
                Ok(Some(chunk)) => writer.write(&chunk).await?,
                Ok(None) => break true,
                Err(BlobError::Damaged { .. }) => break false,
                Err(e) => return Err(e),
            }
        };
        // A writer dropped unfinished keeps nothing.
        if !whole {
            done.damaged.push((name, citation));
            continue;
        }
        match writer.finish().await {
            Ok(put) => {
                done.bytes += put.bytes;
                if put.existed { done.existed += 1 } else { done.copied += 1 }
            }
            Err(BlobError::Mismatch { .. }) => done.damaged.push((name, citation)),
            Err(e) => return Err(e),
        }
    }
    progress(total, total);
    Ok(done)
}

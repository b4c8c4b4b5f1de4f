//! Retention: removes stored blobs that no event of the log cites and that were stored before
//! a cutoff, and (in a folder) temporary upload files left before it. A cited blob is never
//! removed, whatever its age.
//!
//! The cited names are listed first, then the stored blobs walked. A blob whose citing event is
//! appended after that listing was uploaded just before it (a capture stores every file before
//! appending its `evidence.captured`), so it is younger than the cutoff and the age bound
//! protects it as long as the bound exceeds the longest capture (a `--older-than` of days
//! does; [`OLDER_THAN_MIN`] refuses the bounds no capture could fit in). A blob
//! stored again counts as stored then (`folder.rs`, `crate::store::blobs`), and the age is
//! read again at the moment of removal.

use std::collections::BTreeSet;
use std::time::Duration;

pub use super::removal::Removal;
use super::{BlobError, BlobName, BlobStore, folder_gc};
use crate::store::{CALL_TIMEOUT, bounded};

/// The shortest `--older-than`: an upload whose event is not yet appended must stay.
pub const OLDER_THAN_MIN: Duration = Duration::from_secs(60);
/// Blobs read per page of the PostgreSQL walk.
const PAGE_BLOBS: u32 = 1000;

/// What a collection removed (or would remove) in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub files: u64,
    pub bytes: u64,
}

/// Removes (or with `dry_run` only reports) every blob outside `cited` stored before
/// `cutoff_ns` (ns since the epoch), and leftover temporary files older than it; `seen` hears
/// of each as it goes (its error stops the walk), so nothing of the walk is kept in memory.
pub async fn collect(
    store: &BlobStore,
    cited: BTreeSet<BlobName>,
    cutoff_ns: i64,
    dry_run: bool,
    mut seen: impl FnMut(&Removal) -> Result<(), BlobError> + Send + 'static,
) -> Result<Collected, BlobError> {
    let mut total = Collected::default();
    let mut counted = move |removal: &Removal| {
        total.files += 1;
        total.bytes += removal.bytes();
        seen(removal).map(|()| total)
    };
    let mut last = Collected::default();
    match store {
        BlobStore::Folder(f) => {
            let root = f.root().to_owned();
            super::folder::blocking(move || {
                folder_gc::collect(&root, &cited, cutoff_ns, dry_run, |r| {
                    last = counted(r)?;
                    Ok(())
                })?;
                Ok(last)
            })
            .await
        }
        BlobStore::Postgres(p) => {
            let pg = p.store();
            let mut after = String::new();
            loop {
                let page =
                    bounded("listing blobs", CALL_TIMEOUT, pg.blobs_before(&after, cutoff_ns, PAGE_BLOBS))
                        .await?;
                for (digest, bytes, _) in &page {
                    let Ok(name) = BlobName::parse(digest) else { continue };
                    if cited.contains(&name) {
                        continue;
                    }
                    if dry_run
                        || bounded("removing a blob", CALL_TIMEOUT, pg.blob_remove(digest, cutoff_ns)).await?
                    {
                        last = counted(&Removal::Blob { name, bytes: *bytes })?;
                    }
                }
                match page.last() {
                    Some((digest, ..)) if page.len() == PAGE_BLOBS as usize => after = digest.clone(),
                    _ => return Ok(last),
                }
            }
        }
    }
}

//! Whether every file an `evidence.captured` lists is in the evidence store, with the size it
//! records: what the ledger checks before it records `evidence.synced` (`crate::ledger`), and
//! what a refused sync names.

use std::collections::HashMap;

use serde_json::Value;

use super::{BlobError, BlobName, BlobStore};

/// Files one `evidence.captured` lists at most (its schema's `maxItems`): the most sizes one
/// check looks up.
pub const FILES_MAX: usize = 10_000;
/// Missing files a [`Presence::Missing`] names at most (it counts them all).
pub const MISSING_NAMED_MAX: usize = 20;

/// A file the event lists and the store lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingFile {
    pub path: String,
    /// The `blake3` it records (not a blob name when the text is not one).
    pub blake3: String,
    /// What the store holds under that name: nothing, or a blob of another size than recorded.
    pub stored_bytes: Option<u64>,
}

/// What the store holds of one `evidence.captured`'s files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Every file is stored, with the size recorded.
    Stored { files: u64 },
    /// `missing` of `files` are not (the first [`MISSING_NAMED_MAX`] in `named`, in the
    /// event's order).
    Missing { files: u64, missing: u64, named: Vec<MissingFile> },
}

impl Presence {
    /// The number of files when every one is stored.
    pub fn stored(&self) -> Option<u64> {
        match self {
            Presence::Stored { files } => Some(*files),
            Presence::Missing { .. } => None,
        }
    }
}

/// Looks up every file the `data` of an `evidence.captured` lists (`files[].blake3`, `bytes`).
/// More than [`FILES_MAX`] files, or a file without a blob name or a size, count as missing:
/// the schema admits neither.
pub async fn presence(blobs: &BlobStore, data: &Value) -> Result<Presence, BlobError> {
    let listed: &[Value] = data.get("files").and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let files = listed.len() as u64;
    let mut wanted = Vec::with_capacity(listed.len().min(FILES_MAX));
    for f in listed.iter().take(FILES_MAX) {
        if let Some(name) = f.get("blake3").and_then(Value::as_str).and_then(|t| BlobName::parse(t).ok()) {
            wanted.push(name);
        }
    }
    let sizes: HashMap<BlobName, u64> = blobs.sizes(&wanted).await?.into_iter().collect();
    let (mut missing, mut named) = (0u64, Vec::new());
    for (i, f) in listed.iter().enumerate() {
        let text = f.get("blake3").and_then(Value::as_str).unwrap_or_default();
        let stored_bytes = BlobName::parse(text).ok().and_then(|n| sizes.get(&n).copied());
        let recorded = f.get("bytes").and_then(Value::as_u64);
        let present = i < FILES_MAX && stored_bytes.is_some() && stored_bytes == recorded;
        if present {
            continue;
        }
        missing += 1;
        if named.len() < MISSING_NAMED_MAX {
            named.push(MissingFile {
                path: f.get("path").and_then(Value::as_str).unwrap_or_default().to_owned(),
                blake3: text.to_owned(),
                stored_bytes,
            });
        }
    }
    if files == 0 || missing > 0 {
        // An event listing no file (the schema admits none) has nothing to record.
        return Ok(Presence::Missing { files, missing, named });
    }
    Ok(Presence::Stored { files })
}

//! The evidence files the log cites: every `files[].blake3` of every `evidence.captured`.
//! `assay evidence verify` checks each against the store; the log itself never needs them.

use std::collections::BTreeMap;

use assay_events::EventType;

use super::{BlobError, BlobName};
use crate::store::{Store, StoreError};

/// Distinct blobs one walk keeps track of at most (a bound on memory, ~200 bytes each).
pub const CITED_MAX: usize = 10_000_000;
/// Records per page of the walk.
const PAGE_RECORDS: u32 = 1000;

/// Where a blob is first cited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub seq: u64,
    pub run: String,
    pub path: String,
    /// Its size as recorded.
    pub bytes: u64,
}

/// The blobs an `evidence.captured` CloudEvent (its JSON text) cites: (name, run, path,
/// recorded size) per file. A file whose digest is not a blob name is left out (the schema
/// admits none).
pub fn cited_in(cloudevent: &[u8]) -> Result<Vec<(BlobName, Citation)>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Event {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        run: String,
        files: Vec<File>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        path: String,
        blake3: String,
        bytes: u64,
    }
    let event: Event = serde_json::from_slice(cloudevent)?;
    let run = event.data.run;
    Ok(event
        .data
        .files
        .into_iter()
        .filter_map(|f| {
            let name = BlobName::parse(&f.blake3).ok()?;
            Some((name, Citation { seq: 0, run: run.clone(), path: f.path, bytes: f.bytes }))
        })
        .collect())
}

/// Adds what the record at `seq` cites to `cited` (the first citation of a blob is kept).
pub fn add(cited: &mut BTreeMap<BlobName, Citation>, seq: u64, cloudevent: &[u8]) -> Result<(), BlobError> {
    let files = cited_in(cloudevent).map_err(|e| {
        BlobError::Store(StoreError::Corrupt(format!(
            "record {seq}: an evidence.captured without its files: {e}"
        )))
    })?;
    for (name, citation) in files {
        if cited.len() >= CITED_MAX && !cited.contains_key(&name) {
            return Err(BlobError::Store(StoreError::Corrupt(format!(
                "the log cites more than {CITED_MAX} distinct evidence files; not walked"
            ))));
        }
        cited.entry(name).or_insert(Citation { seq, ..citation });
    }
    Ok(())
}

/// Every blob the log in `store` cites, with its first citation, by name.
pub async fn cited(store: &Store) -> Result<BTreeMap<BlobName, Citation>, BlobError> {
    let ty = EventType::EvidenceCaptured.as_str();
    let mut cited = BTreeMap::new();
    let mut from = 0;
    loop {
        let page = store.records_filtered(from, PAGE_RECORDS, Some(ty), None).await?;
        for record in &page {
            add(&mut cited, record.seq, &record.payload)?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE_RECORDS as usize => from = last.seq + 1,
            _ => return Ok(cited),
        }
    }
}

//! The `events` table: one row per record, with everything needed to verify it offline — the
//! leaf, the verbatim payload and the verbatim (canonical) signatures JSON. The `type` column is
//! the Hive partition key (`events/type=<type>/`), so it is not stored in the files.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use assay_events::Hash32;
use assay_events::record::{LEAF_LEN, LeafFields};
use rayon::prelude::*;

use super::columns::{TZ, timestamp_type};
use crate::store::StoredRecord;

/// Column names, in file order.
pub const COLUMNS: &[&str] = &[
    "seq",
    "received_at",
    "time",
    "source",
    "event_id",
    "subject",
    "digest",
    "record_hash",
    "prev_hash",
    "leaf",
    "payload",
    "signatures",
];

/// Columns whose values only a verifier reads: no statistics.
pub const OPAQUE_COLUMNS: &[&str] = &["leaf", "payload", "signatures"];

/// Columns whose values are (nearly) unique per row: no dictionary encoding.
pub const UNIQUE_COLUMNS: &[&str] = &[
    "seq",
    "received_at",
    "time",
    "event_id",
    "digest",
    "record_hash",
    "prev_hash",
    "leaf",
    "payload",
    "signatures",
];

pub fn schema() -> SchemaRef {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("seq", DataType::UInt64, false),
        f("received_at", timestamp_type(), false),
        f("time", timestamp_type(), true),
        f("source", DataType::Utf8, false),
        f("event_id", DataType::Utf8, false),
        f("subject", DataType::Utf8, true),
        f("digest", DataType::Utf8, false),
        f("record_hash", DataType::Utf8, false),
        f("prev_hash", DataType::Utf8, false),
        f("leaf", DataType::Binary, false),
        f("payload", DataType::Utf8, false),
        f("signatures", DataType::Utf8, false),
    ]))
}

/// The producer's RFC 3339 `time` as Unix nanoseconds (None if unparsable or out of range).
pub fn time_ns(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time).ok()?.timestamp_nanos_opt()
}

/// A record checked and prepared for the table: its leaf and the leaf's Merkle hash.
pub struct Prepared {
    pub leaf: [u8; LEAF_LEN],
    pub leaf_hash: Hash32,
    pub time_ns: Option<i64>,
}

/// A stored record whose own hashes do not hold (its seq).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordHashError {
    #[error("record {0}: the payload does not match its digest")]
    Digest(u64),
    #[error("record {0}: the record hash does not match its leaf")]
    Leaf(u64),
}

/// Checks a stored record's own hashes and builds its leaf. Order-independent (run in
/// parallel); the chain and the tree are checked by the caller in seq order.
pub fn prepare(r: &StoredRecord) -> Result<Prepared, RecordHashError> {
    if Hash32::blake3(&r.payload) != r.digest {
        return Err(RecordHashError::Digest(r.seq));
    }
    let fields = LeafFields {
        seq: r.seq,
        received_at_ns: r.received_at_ns,
        digest: r.digest,
        signatures_digest: Hash32::blake3(&r.signatures),
        prev_hash: r.prev_hash,
    };
    let leaf = fields.to_bytes();
    if Hash32::blake3(&leaf) != r.record_hash {
        return Err(RecordHashError::Leaf(r.seq));
    }
    Ok(Prepared { leaf_hash: assay_events::merkle::leaf_hash(&leaf), leaf, time_ns: time_ns(&r.time) })
}

fn hex_column<'a>(hashes: impl ExactSizeIterator<Item = &'a Hash32>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(hashes.len(), hashes.len() * 64);
    let mut buf = [0u8; 64];
    for h in hashes {
        // Infallible: the buffer is exactly twice the input, and hex is ASCII.
        let _ = hex::encode_to_slice(h.0, &mut buf);
        b.append_value(std::str::from_utf8(&buf).unwrap_or_default());
    }
    Arc::new(b.finish())
}

/// A string column from bytes, checked as UTF-8 once for the whole column.
fn string_column<'a>(
    values: impl ExactSizeIterator<Item = Option<&'a [u8]>> + Clone,
) -> Result<ArrayRef, ArrowError> {
    let bytes = values.clone().map(|v| v.map_or(0, <[u8]>::len)).sum();
    let mut b = BinaryBuilder::with_capacity(values.len(), bytes);
    for v in values {
        b.append_option(v);
    }
    Ok(Arc::new(StringArray::try_from_binary(b.finish())?))
}

/// The `events` batch of `rows` (one partition's rows, in seq order). The columns are built in
/// parallel.
pub fn batch(schema: &SchemaRef, rows: &[(&StoredRecord, &Prepared)]) -> Result<RecordBatch, ArrowError> {
    let column = |c: usize| -> Result<ArrayRef, ArrowError> {
        let records = rows.iter().map(|(r, _)| *r);
        let text = |f: fn(&StoredRecord) -> Option<&[u8]>| string_column(rows.iter().map(move |(r, _)| f(r)));
        Ok(match c {
            0 => Arc::new(UInt64Array::from_iter_values(records.map(|r| r.seq))),
            1 => Arc::new(
                TimestampNanosecondArray::from_iter_values(records.map(|r| r.received_at_ns))
                    .with_timezone(TZ),
            ),
            2 => Arc::new(
                TimestampNanosecondArray::from_iter(rows.iter().map(|(_, p)| p.time_ns)).with_timezone(TZ),
            ),
            3 => text(|r| Some(r.source.as_bytes()))?,
            4 => text(|r| Some(r.event_id.as_bytes()))?,
            5 => text(|r| r.subject.as_deref().map(str::as_bytes))?,
            6 => hex_column(records.map(|r| &r.digest)),
            7 => hex_column(records.map(|r| &r.record_hash)),
            8 => hex_column(records.map(|r| &r.prev_hash)),
            9 => {
                let mut b = BinaryBuilder::with_capacity(rows.len(), rows.len() * LEAF_LEN);
                for (_, p) in rows {
                    b.append_value(p.leaf);
                }
                Arc::new(b.finish())
            }
            10 => text(|r| Some(r.payload.as_slice()))?,
            _ => text(|r| Some(r.signatures.as_slice()))?,
        })
    };
    let columns: Vec<ArrayRef> = (0..COLUMNS.len()).into_par_iter().map(column).collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// One row of the `events` table as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq: u64,
    pub received_at_ns: i64,
    pub time_ns: Option<i64>,
    pub source: String,
    pub event_id: String,
    pub subject: Option<String>,
    pub digest: String,
    pub record_hash: String,
    pub prev_hash: String,
    pub leaf: Vec<u8>,
    pub payload: String,
    pub signatures: String,
}

/// The columns of an `events` batch, typed.
pub struct EventColumns<'b> {
    seq: &'b UInt64Array,
    received_at: &'b TimestampNanosecondArray,
    time: &'b TimestampNanosecondArray,
    source: &'b StringArray,
    event_id: &'b StringArray,
    subject: &'b StringArray,
    digest: &'b StringArray,
    record_hash: &'b StringArray,
    prev_hash: &'b StringArray,
    leaf: &'b BinaryArray,
    payload: &'b StringArray,
    signatures: &'b StringArray,
}

/// A column of an `events` file that is missing or of the wrong type (its name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnError {
    #[error("no column {0:?}")]
    Missing(&'static str),
    #[error("column {0:?} has the wrong type")]
    WrongType(&'static str),
}

impl<'b> EventColumns<'b> {
    /// Errors name the first missing or mistyped column.
    pub fn of(batch: &'b RecordBatch) -> Result<EventColumns<'b>, ColumnError> {
        fn col<'b, T: 'static>(batch: &'b RecordBatch, name: &'static str) -> Result<&'b T, ColumnError> {
            batch
                .column_by_name(name)
                .ok_or(ColumnError::Missing(name))?
                .as_any()
                .downcast_ref::<T>()
                .ok_or(ColumnError::WrongType(name))
        }
        Ok(EventColumns {
            seq: col(batch, "seq")?,
            received_at: col(batch, "received_at")?,
            time: col(batch, "time")?,
            source: col(batch, "source")?,
            event_id: col(batch, "event_id")?,
            subject: col(batch, "subject")?,
            digest: col(batch, "digest")?,
            record_hash: col(batch, "record_hash")?,
            prev_hash: col(batch, "prev_hash")?,
            leaf: col(batch, "leaf")?,
            payload: col(batch, "payload")?,
            signatures: col(batch, "signatures")?,
        })
    }

    /// Row `i` (a null in a non-null column reads as empty, which no check accepts).
    pub fn row(&self, i: usize) -> EventRow {
        let s = |a: &StringArray| if a.is_null(i) { String::new() } else { a.value(i).to_owned() };
        EventRow {
            seq: self.seq.value(i),
            received_at_ns: self.received_at.value(i),
            time_ns: (!self.time.is_null(i)).then(|| self.time.value(i)),
            source: s(self.source),
            event_id: s(self.event_id),
            subject: (!self.subject.is_null(i)).then(|| self.subject.value(i).to_owned()),
            digest: s(self.digest),
            record_hash: s(self.record_hash),
            prev_hash: s(self.prev_hash),
            leaf: if self.leaf.is_null(i) { Vec::new() } else { self.leaf.value(i).to_vec() },
            payload: s(self.payload),
            signatures: s(self.signatures),
        }
    }
}

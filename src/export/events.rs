//! The `events` table: one row per record, with everything needed to verify it offline — the
//! leaf, the verbatim payload and the verbatim (canonical) signatures JSON. The `type` column is
//! the Hive partition key (`events/type=<type>/`), so it is not stored in the files.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder, TimestampNanosecondBuilder, UInt64Builder};
use arrow_array::{Array, BinaryArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use assay_events::Hash32;
use assay_events::record::{LEAF_LEN, LeafFields};

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

/// Checks a stored record's own hashes and builds its leaf. Order-independent (run in
/// parallel); the chain and the tree are checked by the caller in seq order.
pub fn prepare(r: &StoredRecord) -> Result<Prepared, String> {
    if Hash32::blake3(&r.payload) != r.digest {
        return Err(format!("record {}: the payload does not match its digest", r.seq));
    }
    if std::str::from_utf8(&r.payload).is_err() || std::str::from_utf8(&r.signatures).is_err() {
        return Err(format!("record {}: payload or signatures are not UTF-8", r.seq));
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
        return Err(format!("record {}: the record hash does not match its leaf", r.seq));
    }
    Ok(Prepared { leaf_hash: assay_events::merkle::leaf_hash(&leaf), leaf, time_ns: time_ns(&r.time) })
}

/// Appends rows of one partition (one type) and emits record batches.
pub struct EventsBuilder {
    schema: SchemaRef,
    seq: UInt64Builder,
    received_at: TimestampNanosecondBuilder,
    time: TimestampNanosecondBuilder,
    source: StringBuilder,
    event_id: StringBuilder,
    subject: StringBuilder,
    digest: StringBuilder,
    record_hash: StringBuilder,
    prev_hash: StringBuilder,
    leaf: BinaryBuilder,
    payload: StringBuilder,
    signatures: StringBuilder,
    rows: usize,
}

fn push_hex(b: &mut StringBuilder, h: &Hash32) {
    let mut buf = [0u8; 64];
    // Infallible: the buffer is exactly twice the input.
    let _ = hex::encode_to_slice(h.0, &mut buf);
    b.append_value(std::str::from_utf8(&buf).unwrap_or_default());
}

impl EventsBuilder {
    pub fn new(schema: SchemaRef) -> EventsBuilder {
        let ts = || TimestampNanosecondBuilder::new().with_timezone(TZ);
        EventsBuilder {
            schema,
            seq: UInt64Builder::new(),
            received_at: ts(),
            time: ts(),
            source: StringBuilder::new(),
            event_id: StringBuilder::new(),
            subject: StringBuilder::new(),
            digest: StringBuilder::new(),
            record_hash: StringBuilder::new(),
            prev_hash: StringBuilder::new(),
            leaf: BinaryBuilder::new(),
            payload: StringBuilder::new(),
            signatures: StringBuilder::new(),
            rows: 0,
        }
    }

    pub fn push(&mut self, r: &StoredRecord, p: &Prepared) {
        self.seq.append_value(r.seq);
        self.received_at.append_value(r.received_at_ns);
        self.time.append_option(p.time_ns);
        self.source.append_value(&r.source);
        self.event_id.append_value(&r.event_id);
        self.subject.append_option(r.subject.as_deref());
        push_hex(&mut self.digest, &r.digest);
        push_hex(&mut self.record_hash, &r.record_hash);
        push_hex(&mut self.prev_hash, &r.prev_hash);
        self.leaf.append_value(p.leaf);
        // Checked UTF-8 in `prepare`.
        self.payload.append_value(std::str::from_utf8(&r.payload).unwrap_or_default());
        self.signatures.append_value(std::str::from_utf8(&r.signatures).unwrap_or_default());
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(self.seq.finish()),
                Arc::new(self.received_at.finish()),
                Arc::new(self.time.finish()),
                Arc::new(self.source.finish()),
                Arc::new(self.event_id.finish()),
                Arc::new(self.subject.finish()),
                Arc::new(self.digest.finish()),
                Arc::new(self.record_hash.finish()),
                Arc::new(self.prev_hash.finish()),
                Arc::new(self.leaf.finish()),
                Arc::new(self.payload.finish()),
                Arc::new(self.signatures.finish()),
            ],
        )
    }
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

impl<'b> EventColumns<'b> {
    /// Errors name the first missing or mistyped column.
    pub fn of(batch: &'b RecordBatch) -> Result<EventColumns<'b>, String> {
        fn col<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T, String> {
            batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column {name:?}"))?
                .as_any()
                .downcast_ref::<T>()
                .ok_or_else(|| format!("column {name:?} has the wrong type"))
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

//! Rows as the store reads and writes them: plain data, no SQL.

use assay_events::cloudevent::{CloudEvent, event_digest};
use assay_events::dsse::{Signature, signatures_canonical_json, signatures_from_json};
use assay_events::merkle::NodeId;
use assay_events::record::{LeafFields, Record, RecordError};
use assay_events::{EventType, Hash32};

use super::StoreError;

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: u64,
    pub digest: Hash32,
    pub source: String,
    pub event_id: String,
    pub ty: String,
    pub subject: Option<String>,
    pub time: String,
    pub received_at_ns: i64,
    pub payload: Vec<u8>,
    /// Canonical signatures JSON.
    pub signatures: Vec<u8>,
    pub prev_hash: Hash32,
    pub record_hash: Hash32,
}

/// A record as a fold reads it: [`StoredRecord`] without the columns that repeat attributes
/// of the payload (source, event id, type, subject, time), which a fold parses anyway. A
/// whole-log fold then copies five strings a record fewer out of SQLite, and frees five fewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldRecord {
    pub seq: u64,
    pub digest: Hash32,
    pub received_at_ns: i64,
    pub payload: Vec<u8>,
    /// Canonical signatures JSON.
    pub signatures: Vec<u8>,
    pub prev_hash: Hash32,
    pub record_hash: Hash32,
}

impl From<StoredRecord> for FoldRecord {
    fn from(r: StoredRecord) -> FoldRecord {
        FoldRecord {
            seq: r.seq,
            digest: r.digest,
            received_at_ns: r.received_at_ns,
            payload: r.payload,
            signatures: r.signatures,
            prev_hash: r.prev_hash,
            record_hash: r.record_hash,
        }
    }
}

impl StoredRecord {
    /// The `type` column as a v1 [`EventType`]; `None` for a type outside v1.
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.ty).ok()
    }

    /// Rebuilds the record, recomputing digest and record hash from the stored bytes
    /// (so a tampered row yields a record whose hashes differ from the stored ones).
    pub fn to_record(&self) -> Result<Record, StoreError> {
        let (signatures, event) = self.decode()?;
        Ok(Record::from_parts(
            self.seq,
            self.received_at_ns,
            self.payload.clone(),
            signatures,
            self.prev_hash,
            event,
            event_digest(&self.payload),
        ))
    }

    /// [`StoredRecord::to_record`] for a caller that has hashed the payload already (`digest`
    /// must be blake3 of `self.payload`: `verify` checks it against the stored digest first, so
    /// the payload is not hashed twice). It moves the payload into the record instead of
    /// copying it (`self.payload` is left empty, and only on success), and also returns the
    /// leaf the record hash was computed from: a caller that needs the leaf too (the Merkle
    /// leaf hash) then builds the canonical signatures JSON once, not twice.
    pub fn take_record_hashed(&mut self, digest: Hash32) -> Result<(Record, LeafFields), StoreError> {
        debug_assert_eq!(digest, event_digest(&self.payload), "digest of another payload");
        let (signatures, event) = self.decode()?;
        let fields = LeafFields {
            seq: self.seq,
            received_at_ns: self.received_at_ns,
            digest,
            signatures_digest: Hash32::blake3(&signatures_canonical_json(&signatures)),
            prev_hash: self.prev_hash,
        };
        let record = Record::from_leaf(&fields, std::mem::take(&mut self.payload), signatures, event);
        Ok((record, fields))
    }

    /// The stored signatures and the parsed payload, with the errors [`StoredRecord::to_record`]
    /// reports.
    fn decode(&self) -> Result<(Vec<Signature>, CloudEvent), StoreError> {
        let signatures = signatures_from_json(&self.signatures)
            .map_err(|e| StoreError::Corrupt(format!("seq {}: signatures: {e}", self.seq)))?;
        let event = CloudEvent::parse(&self.payload)
            .map_err(|e| StoreError::Corrupt(format!("seq {}: {}", self.seq, RecordError::from(e))))?;
        Ok((signatures, event))
    }
}

/// A record to insert.
pub type RecordRow = StoredRecord;

impl RecordRow {
    pub fn from_record(record: &Record, signatures_json: Vec<u8>) -> RecordRow {
        RecordRow {
            seq: record.seq,
            digest: record.digest,
            source: record.event.source.clone(),
            event_id: record.event.id.clone(),
            ty: record.event.ty.clone(),
            subject: record.event.subject.clone(),
            time: record.event.time.clone(),
            received_at_ns: record.received_at_ns,
            payload: record.payload.clone(),
            signatures: signatures_json,
            prev_hash: record.prev_hash,
            record_hash: record.record_hash,
        }
    }
}

/// What [`super::Store::find_ids`] finds for one (source, event id): enough to tell an
/// identical resend (the same payload bytes and the same signatures) from a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredId {
    pub source: String,
    pub event_id: String,
    pub seq: u64,
    /// blake3 of the payload.
    pub digest: Hash32,
    /// blake3 of the stored canonical signatures JSON (the leaf's signatures digest).
    pub signatures_digest: Hash32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub size: u64,
    pub root: Hash32,
    pub note: String,
    pub signed_at_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRow {
    pub size: u64,
    pub record_hash: Hash32,
    pub frontier: Vec<u8>,
    pub checkpoint_size: u64,
}

/// Everything one sequencer batch writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct CommitBatch {
    /// The number of records the store must hold before this batch.
    pub base_size: u64,
    pub records: Vec<RecordRow>,
    pub nodes: Vec<(NodeId, Hash32)>,
    /// Signed checkpoints to store (the sequencer writes one per batch; `copy` several).
    pub checkpoints: Vec<CheckpointRow>,
    pub head: Option<HeadRow>,
}

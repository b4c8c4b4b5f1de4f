//! The JSON form of a record, shared by `assay log --json` and the HTTP service: the record's
//! fields, the CloudEvent as stored (verbatim payload bytes) and the DSSE envelope, with the
//! envelope's OpenAPI schema (the HTTP bodies that carry envelopes name it from here).

use assay_events::record::Record;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::store::{StoreError, StoredRecord};

/// One record: its fields, the CloudEvent (payload bytes verbatim) and the DSSE envelope.
// The same type is the OpenAPI schema `Record`, so the description cannot drift from the JSON.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Record)]
pub struct RecordView {
    #[schema(minimum = 0)]
    pub seq: u64,
    /// blake3 of the payload bytes, hex.
    pub digest: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub subject: Option<String>,
    pub source: String,
    /// The CloudEvent id.
    pub id: String,
    /// The producer's time, as sent.
    pub time: String,
    /// The sequencer's clock at append, RFC 3339 with nanoseconds.
    pub received_at: String,
    /// The CloudEvent: the payload bytes, verbatim.
    #[schema(value_type = Object)]
    pub event: Box<RawValue>,
    /// The DSSE envelope (canonical form: standard base64, canonical signatures).
    #[schema(value_type = EnvelopeSchema)]
    pub envelope: Box<RawValue>,
}

/// A DSSE envelope around a CloudEvent (DESIGN §2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Envelope)]
pub struct EnvelopeSchema {
    /// Always `application/vnd.assay.event+json`.
    #[serde(rename = "payloadType")]
    #[schema(pattern = "^application/vnd\\.assay\\.event\\+json$")]
    pub payload_type: String,
    /// base64 of the CloudEvent JSON bytes (at most 1 MiB).
    #[schema(min_length = 1, pattern = "^[A-Za-z0-9+/_-]+=*$")]
    pub payload: String,
    /// 1 to 8 signatures over DSSE PAE, each by a different key; every one must verify under a
    /// registered, unrevoked key (the key `source` names also needs a role for the type).
    #[schema(min_items = 1, max_items = 8)]
    pub signatures: Vec<SignatureSchema>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Signature)]
pub struct SignatureSchema {
    /// `name+hexid` of the signing key: no whitespace or control characters, at most 256
    /// characters.
    #[schema(max_length = 256, pattern = "^[^+\\s\\x00-\\x1f\\x7f-\\x9f]+\\+[0-9a-f]{8}$")]
    pub keyid: String,
    /// base64 of the 64-byte Ed25519 signature over DSSE PAE.
    #[schema(pattern = "^[A-Za-z0-9+/_-]{86}(==)?$")]
    pub sig: String,
}

impl RecordView {
    pub fn of(record: &Record) -> Result<RecordView, StoreError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("seq {}: {what}: {e}", record.seq))
        };
        let payload = String::from_utf8(record.payload.clone()).map_err(|e| corrupt("payload", &e))?;
        let event = RawValue::from_string(payload).map_err(|e| corrupt("payload", &e))?;
        let envelope = String::from_utf8(record.envelope().to_json()).map_err(|e| corrupt("envelope", &e))?;
        let envelope = RawValue::from_string(envelope).map_err(|e| corrupt("envelope", &e))?;
        Ok(RecordView {
            seq: record.seq,
            digest: record.digest.to_hex(),
            ty: record.event.ty.clone(),
            subject: record.event.subject.clone(),
            source: record.event.source.clone(),
            id: record.event.id.clone(),
            time: record.event.time.clone(),
            received_at: rfc3339(record.received_at_ns),
            event,
            envelope,
        })
    }

    /// The view of a stored record (rebuilt from its stored bytes).
    pub fn of_stored(stored: &StoredRecord) -> Result<RecordView, StoreError> {
        RecordView::of(&stored.to_record()?)
    }
}

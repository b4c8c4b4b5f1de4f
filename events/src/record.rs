//! The record: what the sequencer makes of an accepted envelope.
//!
//! leaf = "assay/record/v1\n" ‖ seq (u64 BE) ‖ received_at_ns (i64 BE) ‖ event digest (32)
//!        ‖ blake3(canonical signatures JSON) (32) ‖ prev record hash (32; zeros for seq 0)
//! record hash = blake3(leaf); Merkle leaf hash = SHA-256(0x00 ‖ leaf).

use crate::Hash32;
use crate::cloudevent::{CloudEvent, CloudEventError, event_digest};
use crate::dsse::{DecodedEnvelope, PAYLOAD_TYPE, Signature, signatures_canonical_json};

pub const LEAF_PREFIX: &[u8] = b"assay/record/v1\n";
/// 16 + 8 + 8 + 32 + 32 + 32.
pub const LEAF_LEN: usize = 128;

/// The fields the leaf commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafFields {
    pub seq: u64,
    pub received_at_ns: i64,
    pub digest: Hash32,
    pub signatures_digest: Hash32,
    pub prev_hash: Hash32,
}

impl LeafFields {
    pub fn to_bytes(&self) -> [u8; LEAF_LEN] {
        let mut out = [0u8; LEAF_LEN];
        let parts: [&[u8]; 6] = [
            LEAF_PREFIX,
            &self.seq.to_be_bytes(),
            &self.received_at_ns.to_be_bytes(),
            &self.digest.0,
            &self.signatures_digest.0,
            &self.prev_hash.0,
        ];
        let mut at = 0;
        for p in parts {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        debug_assert_eq!(at, LEAF_LEN);
        out
    }

    pub fn from_bytes(leaf: &[u8]) -> Result<LeafFields, RecordError> {
        if leaf.len() != LEAF_LEN {
            return Err(RecordError::Leaf(format!("{} bytes, expected {LEAF_LEN}", leaf.len())));
        }
        let Some(rest) = leaf.strip_prefix(LEAF_PREFIX) else {
            return Err(RecordError::Leaf("wrong prefix (not assay/record/v1)".into()));
        };
        // The length check above makes every split below exact.
        let (seq, rest) = rest.split_at(8);
        let (received, rest) = rest.split_at(8);
        let (digest, rest) = rest.split_at(32);
        let (sigs, prev) = rest.split_at(32);
        let hash = |b: &[u8]| Hash32::from_slice(b).map_err(|e| RecordError::Leaf(e.to_string()));
        Ok(LeafFields {
            seq: u64::from_be_bytes(seq.try_into().map_err(|_| RecordError::Leaf("seq".into()))?),
            received_at_ns: i64::from_be_bytes(
                received.try_into().map_err(|_| RecordError::Leaf("received_at".into()))?,
            ),
            digest: hash(digest)?,
            signatures_digest: hash(sigs)?,
            prev_hash: hash(prev)?,
        })
    }

    /// blake3(leaf).
    pub fn record_hash(&self) -> Hash32 {
        Hash32::blake3(&self.to_bytes())
    }
}

/// A sequenced record with its parsed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub received_at_ns: i64,
    /// The CloudEvent payload bytes, verbatim.
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
    pub prev_hash: Hash32,
    /// blake3(payload).
    pub digest: Hash32,
    /// blake3(leaf).
    pub record_hash: Hash32,
    pub event: CloudEvent,
}

impl Record {
    /// Builds a record, computing digest and record hash and parsing the payload.
    pub fn new(
        seq: u64,
        received_at_ns: i64,
        payload: Vec<u8>,
        signatures: Vec<Signature>,
        prev_hash: Hash32,
    ) -> Result<Record, RecordError> {
        let event = CloudEvent::parse(&payload)?;
        let fields = LeafFields {
            seq,
            received_at_ns,
            digest: event_digest(&payload),
            signatures_digest: Hash32::blake3(&signatures_canonical_json(&signatures)),
            prev_hash,
        };
        Ok(Record {
            seq,
            received_at_ns,
            payload,
            signatures,
            prev_hash,
            digest: fields.digest,
            record_hash: fields.record_hash(),
            event,
        })
    }

    /// Like [`Record::new`] for a payload the caller has already parsed into `event` and
    /// hashed into `digest` (the sequencer has, while checking it). Both must come from
    /// `payload`; debug builds check.
    pub fn from_parts(
        seq: u64,
        received_at_ns: i64,
        payload: Vec<u8>,
        signatures: Vec<Signature>,
        prev_hash: Hash32,
        event: CloudEvent,
        digest: Hash32,
    ) -> Record {
        let fields = LeafFields {
            seq,
            received_at_ns,
            digest,
            signatures_digest: Hash32::blake3(&signatures_canonical_json(&signatures)),
            prev_hash,
        };
        Record::from_leaf(&fields, payload, signatures, event)
    }

    /// Like [`Record::from_parts`] for a caller that also has the signatures' digest (the
    /// sequencer has it from checking the envelope, so the canonical signatures JSON is not
    /// built again for every record). `fields` must describe `payload` and `signatures`;
    /// debug builds check.
    pub fn from_leaf(
        fields: &LeafFields,
        payload: Vec<u8>,
        signatures: Vec<Signature>,
        event: CloudEvent,
    ) -> Record {
        debug_assert_eq!(fields.digest, event_digest(&payload), "digest of another payload");
        debug_assert_eq!(
            fields.signatures_digest,
            Hash32::blake3(&signatures_canonical_json(&signatures)),
            "digest of other signatures"
        );
        Record {
            seq: fields.seq,
            received_at_ns: fields.received_at_ns,
            payload,
            signatures,
            prev_hash: fields.prev_hash,
            digest: fields.digest,
            record_hash: fields.record_hash(),
            event,
        }
    }

    /// The event's v1 type, for matching (see [`CloudEvent::event_type`]); `None` outside v1.
    pub fn event_type(&self) -> Option<crate::schemas::EventType> {
        self.event.event_type()
    }

    pub fn leaf_fields(&self) -> LeafFields {
        LeafFields {
            seq: self.seq,
            received_at_ns: self.received_at_ns,
            digest: self.digest,
            signatures_digest: self.signatures_digest(),
            prev_hash: self.prev_hash,
        }
    }

    pub fn leaf(&self) -> [u8; LEAF_LEN] {
        self.leaf_fields().to_bytes()
    }

    /// blake3 of the canonical signatures JSON.
    pub fn signatures_digest(&self) -> Hash32 {
        Hash32::blake3(&signatures_canonical_json(&self.signatures))
    }

    /// The signature by the key the event's `source` names ([`crate::source`]).
    pub fn source_signature(&self) -> Option<&Signature> {
        crate::source::source_signature(&self.event.source, &self.signatures)
    }

    /// The DSSE envelope (standard base64, payload type [`crate::dsse::PAYLOAD_TYPE`]).
    pub fn envelope(&self) -> DecodedEnvelope {
        DecodedEnvelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload: self.payload.clone(),
            signatures: self.signatures.clone(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    #[error(transparent)]
    Event(#[from] CloudEventError),
    #[error("leaf is malformed: {0}")]
    Leaf(String),
}

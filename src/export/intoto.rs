//! in-toto attestations (https://in-toto.io/Statement/v1) in DSSE envelopes, as an audit
//! bundle carries them: one statement per claim (predicate [`CLAIM_PREDICATE`]) and a SLSA
//! Verification Summary (predicate [`VSA_PREDICATE`]) for the artifact's verdict, both signed
//! by the ledger key.

use std::collections::BTreeMap;

use assay_events::b64;
use assay_events::dsse::{DecodedEnvelope, Envelope, EnvelopeError, PAYLOAD_TYPE, Signature, pae};
use assay_events::keys::SignerKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE payload type of in-toto statements.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// A claim of an artifact with the ledger's verdict on it.
pub const CLAIM_PREDICATE: &str = "https://assay.dev/claim/v1";
pub const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";
/// The audit rules a verdict applies (`policy.uri` of the summary).
pub const AUDIT_POLICY: &str = "https://assay.dev/audit/v1";

/// An in-toto ResourceDescriptor (the fields a bundle uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub ty: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Value,
}

impl Statement {
    pub fn new(subject: Vec<ResourceDescriptor>, predicate_type: &str, predicate: Value) -> Statement {
        Statement {
            ty: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }

    /// The statement in a DSSE envelope signed by `key`.
    pub fn sign(&self, key: &SignerKey) -> DecodedEnvelope {
        // Only strings, maps and JSON values: serialization cannot fail.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        let sig = key.sign(&pae(INTOTO_PAYLOAD_TYPE, &payload));
        DecodedEnvelope {
            payload_type: INTOTO_PAYLOAD_TYPE.to_owned(),
            payload,
            signatures: vec![Signature { keyid: key.keyid(), sig }],
        }
    }
}

/// Why a bundle line is not a DSSE envelope this ledger writes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeLineError {
    #[error("not a DSSE envelope: {0}")]
    NotDsse(serde_json::Error),
    #[error("unexpected payloadType {0:?}")]
    PayloadType(String),
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
}

/// Parses a DSSE envelope of any payload type (Assay events and in-toto statements).
pub fn parse_envelope(json: &[u8]) -> Result<DecodedEnvelope, EnvelopeLineError> {
    let env: Envelope = serde_json::from_slice(json).map_err(EnvelopeLineError::NotDsse)?;
    let payload_type = env.payload_type.clone();
    if payload_type != PAYLOAD_TYPE && payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(EnvelopeLineError::PayloadType(payload_type));
    }
    // `decode` checks the payload type against the event type; the checks of the base64 and
    // the signatures are the same for both.
    let mut decoded = Envelope { payload_type: PAYLOAD_TYPE.to_owned(), ..env }.decode()?;
    decoded.payload_type = payload_type;
    Ok(decoded)
}

/// SHA-256 of bytes, hex (in-toto digests are keyed by algorithm name).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `inputAttestations` entry of one envelope line.
pub fn input_attestation(name: String, line: &[u8]) -> ResourceDescriptor {
    ResourceDescriptor {
        name: Some(name),
        uri: None,
        digest: BTreeMap::from([("sha256".to_owned(), sha256_hex(line))]),
        annotations: None,
    }
}

/// base64 of a 32-byte hash, as checkpoints print roots.
pub fn root_b64(root: &assay_events::Hash32) -> String {
    b64::encode_std(&root.0)
}

//! DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse) and PAE.

use crate::b64;
use crate::keys::{SignerKey, VerifierKey};

/// The payload type of every Assay event.
pub const PAYLOAD_TYPE: &str = "application/vnd.assay.event+json";

/// Signatures one envelope offered for appending may carry: the producer's and a few
/// co-signers'. Each must be by a different key, and each must verify under a key the
/// registry knows.
pub const SIGNATURES_MAX: usize = 8;

/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    // Decimal lengths as DSSE v1.0.0 specifies; the 8-byte little-endian variant found in
    // some older code does not interoperate.
    let head = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len());
    let mut out = Vec::with_capacity(head.len() + payload.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// The envelope as JSON carries it (base64 strings). Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// A decoded signature: the DSSE `keyid` (`name+hexid`) and the 64 signature bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub keyid: String,
    pub sig: [u8; 64],
}

/// An envelope with payload and signatures decoded from base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEnvelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

impl Envelope {
    /// Parses envelope JSON and decodes it. Errors name what is wrong
    /// (malformed JSON, bad base64 in payload or in signature N, wrong signature length,
    /// no signatures, payload type other than [`PAYLOAD_TYPE`]).
    pub fn parse(json: &[u8]) -> Result<DecodedEnvelope, EnvelopeError> {
        let env: Envelope = match crate::json::from_text(json) {
            Some(env) => env,
            None => serde_json::from_slice(json).map_err(|e| EnvelopeError::Json(e.to_string()))?,
        };
        env.decode()
    }

    pub fn decode(&self) -> Result<DecodedEnvelope, EnvelopeError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(EnvelopeError::PayloadType {
                expected: PAYLOAD_TYPE,
                got: self.payload_type.clone(),
            });
        }
        let payload = b64::decode_any(&self.payload).map_err(EnvelopeError::PayloadBase64)?;
        if self.signatures.is_empty() {
            return Err(EnvelopeError::NoSignatures);
        }
        let signatures = decode_signatures(&self.signatures)?;
        Ok(DecodedEnvelope { payload_type: self.payload_type.clone(), payload, signatures })
    }
}

impl DecodedEnvelope {
    /// The rules for an envelope offered for appending (stored records are not re-judged by
    /// them): the Assay payload type, 1 to [`SIGNATURES_MAX`] signatures, each `keyid`
    /// non-empty, free of control characters and at most [`crate::text::KEYID_CHARS_MAX`]
    /// characters ([`crate::text`]), and no keyid twice.
    pub fn check_submitted(&self) -> Result<(), EnvelopeError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(EnvelopeError::PayloadType {
                expected: PAYLOAD_TYPE,
                got: self.payload_type.clone(),
            });
        }
        if self.signatures.is_empty() {
            return Err(EnvelopeError::NoSignatures);
        }
        if self.signatures.len() > SIGNATURES_MAX {
            return Err(EnvelopeError::TooManySignatures { got: self.signatures.len(), max: SIGNATURES_MAX });
        }
        for (index, s) in self.signatures.iter().enumerate() {
            if s.keyid.is_empty() {
                return Err(EnvelopeError::Keyid { index, reason: "must not be empty".to_owned() });
            }
            crate::text::check_text(&s.keyid, crate::text::KEYID_CHARS_MAX)
                .map_err(|e| EnvelopeError::Keyid { index, reason: e.to_string() })?;
            if self.signatures[..index].iter().any(|o| o.keyid == s.keyid) {
                return Err(EnvelopeError::DuplicateKeyid { index, keyid: s.keyid.clone() });
            }
        }
        Ok(())
    }

    /// Signs `payload` with `key`: one signature over PAE(PAYLOAD_TYPE, payload).
    pub fn sign(payload: Vec<u8>, key: &SignerKey) -> DecodedEnvelope {
        let sig = key.sign(&pae(PAYLOAD_TYPE, &payload));
        DecodedEnvelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload,
            signatures: vec![Signature { keyid: key.keyid(), sig }],
        }
    }

    /// The JSON form with standard base64.
    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            payload_type: self.payload_type.clone(),
            payload: b64::encode_std(&self.payload),
            signatures: self
                .signatures
                .iter()
                .map(|s| EnvelopeSignature { keyid: s.keyid.clone(), sig: b64::encode_std(&s.sig) })
                .collect(),
        }
    }

    /// Compact JSON bytes of [`Self::to_envelope`].
    pub fn to_json(&self) -> Vec<u8> {
        // Written by hand so that it is infallible and its field order fixed.
        let env = self.to_envelope();
        let mut out = String::from("{\"payloadType\":");
        out.push_str(&json_string(&env.payload_type));
        out.push_str(",\"payload\":");
        out.push_str(&json_string(&env.payload));
        out.push_str(",\"signatures\":");
        push_signatures(&mut out, &env.signatures);
        out.push('}');
        out.into_bytes()
    }

    /// PAE bytes this envelope's signatures cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// True iff some signature has `key.keyid()` and verifies (strict Ed25519) over PAE.
    ///
    /// The check is the one [`verify_many`] applies, so one envelope and a batch agree.
    pub fn verify_with(&self, key: &VerifierKey) -> bool {
        verify_many(&[(self, key)])[0]
    }

    /// The signature by `key`'s keyid, if any.
    fn signature_by(&self, key: &VerifierKey) -> Option<&Signature> {
        let keyid = key.keyid();
        self.signatures.iter().find(|s| s.keyid == keyid)
    }
}

/// Signatures per Ed25519 batch: large enough to halve the cost per signature, small enough
/// that a failing batch is cheap to re-check one by one.
pub const VERIFY_BATCH_MAX: usize = 64;

/// Verifies each envelope's signature by its key (the first signature carrying the key's
/// keyid), with Ed25519 batch verification in chunks of [`VERIFY_BATCH_MAX`]; a chunk that
/// fails is re-checked one signature at a time to find the bad ones.
///
/// Semantics: a signature is valid iff a batch holding only it verifies (the cofactored
/// equation of ed25519-dalek's `verify_batch`), and the key is not of small order. Ingest and
/// `assay verify` both use this function, so the ledger never refuses at verification what it
/// accepted at ingest. (Strict single verification differs only on signatures with torsion
/// components, which only the key's holder can make.)
pub fn verify_many(items: &[(&DecodedEnvelope, &VerifierKey)]) -> Vec<bool> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(VERIFY_BATCH_MAX) {
        let prepared: Vec<Option<(Vec<u8>, ed25519_dalek::Signature, ed25519_dalek::VerifyingKey)>> = chunk
            .iter()
            .map(|(env, key)| {
                let sig = env.signature_by(key)?;
                if key.ed25519().is_weak() {
                    return None;
                }
                Some((env.pae(), ed25519_dalek::Signature::from_bytes(&sig.sig), *key.ed25519()))
            })
            .collect();
        let batch_ok = prepared.iter().all(Option::is_some) && {
            let msgs: Vec<&[u8]> = prepared.iter().flatten().map(|p| p.0.as_slice()).collect();
            let sigs: Vec<ed25519_dalek::Signature> = prepared.iter().flatten().map(|p| p.1).collect();
            let keys: Vec<ed25519_dalek::VerifyingKey> = prepared.iter().flatten().map(|p| p.2).collect();
            ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
        };
        if batch_ok {
            out.extend(std::iter::repeat_n(true, chunk.len()));
            continue;
        }
        out.extend(prepared.iter().map(|p| {
            p.as_ref().is_some_and(|(msg, sig, key)| {
                ed25519_dalek::verify_batch(&[msg.as_slice()], &[*sig], &[*key]).is_ok()
            })
        }));
    }
    out
}

/// The canonical signatures JSON that the record leaf hashes:
/// `[{"keyid":"<keyid>","sig":"<standard padded base64>"}]`, compact, in envelope order,
/// keys in that order, strings JSON-escaped as serde_json does.
///
/// Written straight into one buffer (no copy of a keyid, no string per signature): it is
/// built for every record that is appended, verified or exported.
pub fn signatures_canonical_json(sigs: &[Signature]) -> Vec<u8> {
    // An Ed25519 signature is 88 characters of padded base64.
    const SIG_B64: usize = 88;
    let mut out = Vec::with_capacity(2 + sigs.iter().map(|s| s.keyid.len() + SIG_B64 + 20).sum::<usize>());
    out.push(b'[');
    for (i, s) in sigs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"keyid\":");
        // Escaped as serde_json escapes it: serializing a `str` into a `Vec` cannot fail.
        serde_json::to_writer(&mut out, &s.keyid).expect("a string serializes into memory");
        // Standard base64 holds no character JSON escapes, so it goes between the quotes as is.
        out.extend_from_slice(b",\"sig\":\"");
        let at = out.len();
        out.resize(at + SIG_B64, 0);
        let written = b64::encode_std_into(&s.sig, &mut out[at..]);
        debug_assert_eq!(written, SIG_B64);
        out.extend_from_slice(b"\"}");
    }
    out.push(b']');
    out
}

/// Parses [`signatures_canonical_json`] output back (as stored).
pub fn signatures_from_json(json: &[u8]) -> Result<Vec<Signature>, EnvelopeError> {
    let sigs: Vec<borrowed::EnvelopeSignature<'_>> = match crate::json::from_text(json) {
        Some(sigs) => sigs,
        None => serde_json::from_slice(json).map_err(|e| EnvelopeError::Json(e.to_string()))?,
    };
    sigs.into_iter()
        .enumerate()
        .map(|(index, s)| decode_signature(index, s.keyid.into_owned(), &s.sig))
        .collect()
}

/// An [`EnvelopeSignature`] read in place from the JSON that holds it: stored records are read
/// by the million (replay, verify, export), and neither string needs a copy of its own on the
/// way to being decoded. Same name (serde's messages name the type), fields, rules and errors.
mod borrowed {
    use std::borrow::Cow;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct EnvelopeSignature<'a> {
        #[serde(borrow)]
        pub keyid: Cow<'a, str>,
        #[serde(borrow)]
        pub sig: Cow<'a, str>,
    }
}

fn decode_signatures(sigs: &[EnvelopeSignature]) -> Result<Vec<Signature>, EnvelopeError> {
    sigs.iter().enumerate().map(|(index, s)| decode_signature(index, s.keyid.clone(), &s.sig)).collect()
}

/// Signature `index` of an envelope: `sig` decoded from base64, 64 bytes.
fn decode_signature(index: usize, keyid: String, sig: &str) -> Result<Signature, EnvelopeError> {
    if let Some(sig) = b64::decode_any_64(sig) {
        return Ok(Signature { keyid, sig });
    }
    // Not 64 bytes of base64: decoded again only to say what is wrong.
    let raw = b64::decode_any(sig)
        .map_err(|e| EnvelopeError::SignatureEncoding { index, reason: e.to_string() })?;
    let sig: [u8; 64] = raw.as_slice().try_into().map_err(|_| EnvelopeError::SignatureEncoding {
        index,
        reason: format!("Ed25519 signatures are 64 bytes, got {}", raw.len()),
    })?;
    Ok(Signature { keyid, sig })
}

/// `[{"keyid":…,"sig":…},…]`, compact.
fn push_signatures(out: &mut String, sigs: &[EnvelopeSignature]) {
    out.push('[');
    for (i, s) in sigs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"keyid\":");
        out.push_str(&json_string(&s.keyid));
        out.push_str(",\"sig\":");
        out.push_str(&json_string(&s.sig));
        out.push('}');
    }
    out.push(']');
}

/// A JSON string literal escaped exactly as serde_json escapes it (its Display is infallible).
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("malformed envelope JSON: {0}")]
    Json(String),
    #[error("payloadType must be {expected:?}, got {got:?}")]
    PayloadType { expected: &'static str, got: String },
    #[error("payload: {0}")]
    PayloadBase64(crate::b64::Base64Error),
    #[error("signatures[{index}].sig: {reason}")]
    SignatureEncoding { index: usize, reason: String },
    #[error("envelope has no signatures")]
    NoSignatures,
    #[error("envelope has {got} signatures; the limit is {max}")]
    TooManySignatures { got: usize, max: usize },
    #[error("signatures[{index}].keyid: {reason}")]
    Keyid { index: usize, reason: String },
    #[error("signatures[{index}].keyid {keyid:?} signs twice: each key signs an envelope once")]
    DuplicateKeyid { index: usize, keyid: String },
}

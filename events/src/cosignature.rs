//! C2SP `tlog-cosignature` (https://c2sp.org/tlog-cosignature), the Ed25519 type
//! `cosignature/v1`: a witness's timestamped statement that a checkpoint is the largest
//! consistent tree head it has seen for that origin.
//!
//! - key id = first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key);
//! - signature line = `— <name> base64(key id ‖ u64 timestamp (big-endian) ‖ Ed25519 signature)`;
//! - signed message = `cosignature/v1\ntime <timestamp>\n` ‖ the whole checkpoint body.
//!
//! Key text forms follow signed-note with signature type 0x04: verifier
//! `<name>+<hexid>+base64(0x04 ‖ public key)` (a C2SP vkey), signer
//! `PRIVATE+KEY+<name>+<hexid>+base64(0x04 ‖ seed)`. The type byte keeps a witness key from
//! being mistaken for a note key, and the id differs from the same key's note id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;

use crate::keys::{
    KeyError, key_id_for, parse_signer, parse_verifier, signer_from_seed, signer_text, verifier_text,
};
use crate::note::{Note, NoteSignature};

/// The signature type byte of `cosignature/v1`.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// C2SP: the timestamp must not exceed 2^63 − 1.
pub const TIMESTAMP_MAX: u64 = (1 << 63) - 1;
/// Key id (4) + timestamp (8) + Ed25519 signature (64).
const BLOB_LEN: usize = 4 + 8 + 64;

/// The key id of a `cosignature/v1` key.
pub fn key_id(name: &str, pubkey: &[u8; 32]) -> u32 {
    key_id_for(name, ALG_COSIGNATURE_V1, pubkey)
}

/// The message a `cosignature/v1` signs: header line, time line, then the checkpoint body
/// (the note text, ending in '\n', without signature lines).
pub fn signed_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A witness's signing key.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    id: u32,
    signing: ed25519_dalek::SigningKey,
}

/// A witness's public key, as a log client or verifier is configured with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignerVerifier {
    name: String,
    id: u32,
    verifying: ed25519_dalek::VerifyingKey,
}

impl Cosigner {
    /// A key from a 32-byte seed (the caller draws the randomness).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Cosigner, KeyError> {
        let (name, id, signing) = signer_from_seed(name, ALG_COSIGNATURE_V1, seed)?;
        Ok(Cosigner { name, id, signing })
    }

    /// Parses `PRIVATE+KEY+<name>+<hexid>+base64(0x04 ‖ seed)`; checks the id.
    pub fn parse(text: &str) -> Result<Cosigner, KeyError> {
        let (name, id, signing) = parse_signer(text.trim_end(), ALG_COSIGNATURE_V1, "witness key")?;
        Ok(Cosigner { name, id, signing })
    }

    pub fn to_text(&self) -> String {
        signer_text(ALG_COSIGNATURE_V1, &self.name, self.id, &self.signing)
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn verifier(&self) -> CosignerVerifier {
        CosignerVerifier { name: self.name.clone(), id: self.id, verifying: self.signing.verifying_key() }
    }

    /// One cosignature line (ending in '\n') over a checkpoint `body` at `timestamp`.
    ///
    /// # Panics
    /// If `timestamp` exceeds [`TIMESTAMP_MAX`] (C2SP forbids it; a clock never gives one).
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        assert!(timestamp <= TIMESTAMP_MAX, "a cosignature timestamp must fit in 63 bits");
        let sig = self.signing.sign(signed_message(body, timestamp).as_bytes()).to_bytes();
        let mut blob = Vec::with_capacity(BLOB_LEN);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&sig);
        format!("\u{2014} {} {}\n", self.name, STANDARD.encode(blob))
    }
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cosigner({}+{:08x})", self.name, self.id)
    }
}

impl CosignerVerifier {
    /// Parses a vkey `<name>+<hexid>+base64(0x04 ‖ public key)`; checks the id.
    pub fn parse(text: &str) -> Result<CosignerVerifier, KeyError> {
        let (name, id, verifying) = parse_verifier(text.trim_end(), ALG_COSIGNATURE_V1)?;
        Ok(CosignerVerifier { name, id, verifying })
    }

    pub fn to_text(&self) -> String {
        verifier_text(ALG_COSIGNATURE_V1, &self.name, self.id, &self.verifying)
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn id(&self) -> u32 {
        self.id
    }
    /// `name+hexid`.
    pub fn keyid(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// Whether a signature line claims to be this witness's (name and key id both match);
    /// C2SP clients ignore every other line.
    pub fn claims(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.id == self.id
    }

    /// Checks one signature line that [`claims`](Self::claims) to be this key's over `body`;
    /// returns its timestamp.
    pub fn verify(&self, body: &str, sig: &NoteSignature) -> Result<u64, CosignatureError> {
        if !self.claims(sig) {
            return Err(CosignatureError::NotThisKey(self.keyid()));
        }
        // NoteSignature.sig is the blob after the key id: timestamp ‖ signature.
        let Ok(rest) = <&[u8; BLOB_LEN - 4]>::try_from(sig.sig.as_slice()) else {
            return Err(CosignatureError::Length { keyid: self.keyid(), len: sig.sig.len() + 4 });
        };
        let (ts, signature) = rest.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().expect("split at 8"));
        if timestamp > TIMESTAMP_MAX {
            return Err(CosignatureError::Timestamp { keyid: self.keyid(), timestamp });
        }
        let signature = ed25519_dalek::Signature::from_bytes(signature.try_into().expect("64 bytes"));
        // verify_strict, as for note keys: no verifier accepts what another rejects.
        self.verifying
            .verify_strict(signed_message(body, timestamp).as_bytes(), &signature)
            .map_err(|_| CosignatureError::BadSignature(self.keyid()))?;
        Ok(timestamp)
    }

    /// The timestamp of this witness's valid cosignature on `note`, if it carries one. A line
    /// that claims to be this key and fails is an error (tampering, not a stranger's line).
    pub fn find(&self, note: &Note) -> Result<Option<u64>, CosignatureError> {
        let mut found = None;
        for sig in note.signatures.iter().filter(|s| self.claims(s)) {
            let ts = self.verify(&note.text, sig)?;
            found = Some(found.map_or(ts, |t: u64| t.max(ts)));
        }
        Ok(found)
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CosignatureError {
    #[error("signature line is not by witness {0}")]
    NotThisKey(String),
    #[error("cosignature by {keyid} is {len} bytes, not 76 (key id, timestamp, Ed25519 signature)")]
    Length { keyid: String, len: usize },
    #[error("cosignature by {keyid} has timestamp {timestamp} beyond 2^63-1")]
    Timestamp { keyid: String, timestamp: u64 },
    #[error("cosignature by {0} does not verify")]
    BadSignature(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note;

    const BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn message_matches_the_spec_example() {
        assert_eq!(
            signed_message(BODY, 1679315147),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    #[test]
    fn the_spec_example_line_has_the_v1_layout() {
        // The example cosignature of c2sp.org/tlog-cosignature: 76 bytes, timestamp 1679315147.
        let example = format!(
            "{BODY}\n\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        );
        let sig = &note::parse(&example).unwrap().signatures[0];
        assert_eq!(sig.sig.len() + 4, BLOB_LEN);
        assert_eq!(u64::from_be_bytes(sig.sig[..8].try_into().unwrap()), 1679315147);
    }

    #[test]
    fn cosign_round_trip_and_tamper() {
        let w = Cosigner::from_seed("witness.example/w1", [7; 32]).unwrap();
        let w2 = Cosigner::parse(&w.to_text()).unwrap();
        let v = CosignerVerifier::parse(&w2.verifier().to_text()).unwrap();
        assert_eq!(v, w.verifier());
        let line = w.cosign(BODY, 1679315147);
        let parsed = note::parse(&format!("{BODY}\n{line}")).unwrap();
        assert_eq!(v.find(&parsed), Ok(Some(1679315147)));
        // Another body: the same line no longer verifies.
        let other = BODY.replace("20852163", "20852164");
        let forged = note::parse(&format!("{other}\n{line}")).unwrap();
        assert!(matches!(v.find(&forged), Err(CosignatureError::BadSignature(_))));
        // A stranger's line is ignored.
        let stranger = Cosigner::from_seed("witness.example/w2", [8; 32]).unwrap();
        let n = note::parse(&format!("{BODY}\n{}", stranger.cosign(BODY, 1))).unwrap();
        assert_eq!(v.find(&n), Ok(None));
    }

    #[test]
    fn ids_differ_from_note_keys_and_types_are_checked() {
        let w = Cosigner::from_seed("w", [1; 32]).unwrap();
        let note_key = crate::keys::SignerKey::from_seed("w", [1; 32]).unwrap();
        assert_ne!(w.verifier().id(), note_key.id());
        // A note key's text is not a witness key, and the other way round.
        assert_eq!(CosignerVerifier::parse(&note_key.verifier().to_text()), Err(KeyError::Algorithm(1)));
        assert!(matches!(
            crate::keys::VerifierKey::parse(&w.verifier().to_text()),
            Err(KeyError::Algorithm(4))
        ));
    }
}

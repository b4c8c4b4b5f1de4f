//! Ed25519 keys in C2SP signed-note text form (https://c2sp.org/signed-note).
//!
//! signer:   `PRIVATE+KEY+<name>+<hexid>+<base64(0x01 ‖ seed)>`
//! verifier: `<name>+<hexid>+<base64(0x01 ‖ public key)>`
//! key id = first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).

use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};

use crate::b64;

/// The algorithm byte for Ed25519.
pub const ALG_ED25519: u8 = 0x01;

/// A key name is valid iff it is non-empty, has no Unicode whitespace and no `+` (C2SP), and
/// no control character (Assay's rule for identifiers, [`crate::text`]: a key name becomes a
/// `keyid`, a `source` and a `subject`).
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// First 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey), as a big-endian u32.
pub fn key_id(name: &str, pubkey: &[u8; 32]) -> u32 {
    key_id_for(name, ALG_ED25519, pubkey)
}

/// First 4 bytes of SHA-256(name ‖ 0x0A ‖ alg ‖ pubkey): the key id of signed-note keys of any
/// signature type (0x01 Ed25519 notes, 0x04 `cosignature/v1`).
pub(crate) fn key_id_for(name: &str, alg: u8, pubkey: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(pubkey);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

#[derive(Clone)]
pub struct SignerKey {
    name: String,
    id: u32,
    signing: ed25519_dalek::SigningKey,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    verifying: ed25519_dalek::VerifyingKey,
}

impl SignerKey {
    /// A key from a 32-byte seed (the caller draws the randomness).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SignerKey, KeyError> {
        if !valid_key_name(name) {
            return Err(KeyError::Name(name.to_owned()));
        }
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let id = key_id(name, signing.verifying_key().as_bytes());
        Ok(SignerKey { name: name.to_owned(), id, signing })
    }

    /// Parses the signer text form; checks the id matches.
    pub fn parse(text: &str) -> Result<SignerKey, KeyError> {
        // At most 4 splits: the base64 tail may itself contain '+'.
        let parts: Vec<&str> = text.splitn(5, '+').collect();
        let [private, key, name, hexid, material] = parts[..] else {
            return Err(KeyError::Malformed("expected PRIVATE+KEY+<name>+<id>+<key>".into()));
        };
        if private != "PRIVATE" || key != "KEY" {
            return Err(KeyError::Malformed("signer key must start with PRIVATE+KEY+".into()));
        }
        let given = parse_hex_id(hexid)?;
        let seed = decode_material(material)?;
        let signer = SignerKey::from_seed(name, seed)?;
        if signer.id != given {
            return Err(KeyError::IdMismatch { given, expected: signer.id });
        }
        Ok(signer)
    }

    pub fn to_text(&self) -> String {
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, encode_material(&self.signing.to_bytes()))
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn id(&self) -> u32 {
        self.id
    }
    /// `name+hexid` (8 lowercase hex digits): the DSSE keyid.
    pub fn keyid(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey { name: self.name.clone(), id: self.id, verifying: self.signing.verifying_key() }
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({})", self.keyid())
    }
}

impl VerifierKey {
    /// Parses the verifier text form (split on '+' at most 2 times: base64 may hold '+');
    /// rejects wrong lengths, unknown algorithms and an id that does not match.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        let [name, hexid, material] = parts[..] else {
            return Err(KeyError::Malformed("expected <name>+<id>+<key>".into()));
        };
        if !valid_key_name(name) {
            return Err(KeyError::Name(name.to_owned()));
        }
        let given = parse_hex_id(hexid)?;
        let public = decode_material(material)?;
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| KeyError::Malformed("not a valid Ed25519 public key".into()))?;
        let expected = key_id(name, &public);
        if given != expected {
            return Err(KeyError::IdMismatch { given, expected });
        }
        Ok(VerifierKey { name: name.to_owned(), id: expected, verifying })
    }

    pub fn to_text(&self) -> String {
        format!("{}+{:08x}+{}", self.name, self.id, encode_material(self.verifying.as_bytes()))
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
    pub fn public_bytes(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }
    pub fn ed25519(&self) -> &ed25519_dalek::VerifyingKey {
        &self.verifying
    }
    /// Strict Ed25519 verification.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        // verify_strict rejects small-order keys and non-canonical signatures, so a
        // signature that one verifier accepts cannot be rejected by another.
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.verifying.verify_strict(msg, &sig).is_ok()
    }
}

/// Exactly 8 hex digits. `u32::from_str_radix` alone would also accept a sign or fewer digits.
pub(crate) fn parse_hex_id(s: &str) -> Result<u32, KeyError> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::Malformed(format!("key id {s:?} is not 8 hex digits")));
    }
    u32::from_str_radix(s, 16).map_err(|e| KeyError::Malformed(format!("key id {s:?}: {e}")))
}

/// base64(0x01 ‖ 32 bytes) → the 32 bytes.
fn decode_material(s: &str) -> Result<[u8; 32], KeyError> {
    decode_material_for(s, ALG_ED25519)
}

/// base64(alg ‖ 32 bytes) → the 32 bytes; any other algorithm byte is [`KeyError::Algorithm`].
pub(crate) fn decode_material_for(s: &str, want: u8) -> Result<[u8; 32], KeyError> {
    let raw = b64::decode_any(s).map_err(|e| KeyError::Malformed(e.to_string()))?;
    let Some((&alg, rest)) = raw.split_first() else {
        return Err(KeyError::Length(0));
    };
    if alg != want {
        return Err(KeyError::Algorithm(alg));
    }
    rest.try_into().map_err(|_| KeyError::Length(rest.len()))
}

fn encode_material(key: &[u8; 32]) -> String {
    encode_material_for(ALG_ED25519, key)
}

pub(crate) fn encode_material_for(alg: u8, key: &[u8; 32]) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(alg);
    raw.extend_from_slice(key);
    b64::encode_std(&raw)
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    #[error("key text is malformed: {0}")]
    Malformed(String),
    #[error("invalid key name {0:?}: must be non-empty, without spaces or '+'")]
    Name(String),
    #[error(
        "unexpected key algorithm {0:#04x} (note keys are Ed25519, 0x01; witness keys cosignature/v1, 0x04)"
    )]
    Algorithm(u8),
    #[error("key material has the wrong length: {0} bytes")]
    Length(usize),
    #[error("key id {given:08x} does not match the key (expected {expected:08x})")]
    IdMismatch { given: u32, expected: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_key_name("runner-gpu0"));
        assert!(valid_key_name("example.com/abc"));
        for bad in ["", "a b", "a+b", "a\u{2003}b", "a\nb", "a\0b", "\u{1}", "a\u{7f}"] {
            assert!(!valid_key_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn text_round_trip() {
        let k = SignerKey::from_seed("runner-gpu0", [9; 32]).unwrap();
        let k2 = SignerKey::parse(&k.to_text()).unwrap();
        assert_eq!(k2.keyid(), k.keyid());
        assert_eq!(k2.sign(b"m"), k.sign(b"m"));
        let v = VerifierKey::parse(&k.verifier().to_text()).unwrap();
        assert_eq!(v, k.verifier());
        assert_eq!(v.keyid(), k.keyid());
        assert!(v.verify(b"m", &k.sign(b"m")));
        assert!(!v.verify(b"n", &k.sign(b"m")));
    }

    #[test]
    fn parse_errors() {
        let k = SignerKey::from_seed("a", [1; 32]).unwrap();
        let vt = k.verifier().to_text();
        let (_, rest) = vt.split_once('+').unwrap();
        assert!(matches!(VerifierKey::parse(&format!("b+{rest}")), Err(KeyError::IdMismatch { .. })));
        assert!(matches!(VerifierKey::parse("a+1234"), Err(KeyError::Malformed(_))));
        assert!(matches!(VerifierKey::parse("a++1234567+AQ=="), Err(KeyError::Malformed(_))));
        assert!(matches!(VerifierKey::parse("a+0000000g+AQ=="), Err(KeyError::Malformed(_))));
        assert!(matches!(VerifierKey::parse("a+00000000+AQ=="), Err(KeyError::Length(0))));
        assert!(matches!(VerifierKey::parse("a+00000000+"), Err(KeyError::Length(0))));
        assert!(matches!(VerifierKey::parse("a+00000000+Ag=="), Err(KeyError::Algorithm(2))));
        assert!(matches!(SignerKey::parse(&vt), Err(KeyError::Malformed(_))));
        assert!(matches!(SignerKey::from_seed("a b", [0; 32]), Err(KeyError::Name(_))));
        let st = k.to_text().replacen("+a+", "+z+", 1);
        assert!(matches!(SignerKey::parse(&st), Err(KeyError::IdMismatch { .. })));
    }
}

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
        let (name, id, signing) = signer_from_seed(name, ALG_ED25519, seed)?;
        Ok(SignerKey { name, id, signing })
    }

    /// Parses the signer text form; checks the id matches.
    pub fn parse(text: &str) -> Result<SignerKey, KeyError> {
        let (name, id, signing) = parse_signer(text, ALG_ED25519, "signer key")?;
        Ok(SignerKey { name, id, signing })
    }

    pub fn to_text(&self) -> String {
        signer_text(ALG_ED25519, &self.name, self.id, &self.signing)
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
        let (name, id, verifying) = parse_verifier(text, ALG_ED25519)?;
        Ok(VerifierKey { name, id, verifying })
    }

    pub fn to_text(&self) -> String {
        verifier_text(ALG_ED25519, &self.name, self.id, &self.verifying)
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

// The text forms, the name rule and the id rule are the same for every signed-note signature
// type; only the type byte differs. Note keys (0x01, above) and witness keys (0x04,
// `crate::cosignature`) are both made and read by these.

/// A key of signature type `alg` from a 32-byte seed: its name, id and signing key.
pub(crate) fn signer_from_seed(
    name: &str,
    alg: u8,
    seed: [u8; 32],
) -> Result<(String, u32, ed25519_dalek::SigningKey), KeyError> {
    if !valid_key_name(name) {
        return Err(KeyError::Name(name.to_owned()));
    }
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let id = key_id_for(name, alg, signing.verifying_key().as_bytes());
    Ok((name.to_owned(), id, signing))
}

/// Parses `PRIVATE+KEY+<name>+<hexid>+base64(alg ‖ seed)`; checks the id. `what` names the
/// kind of key in the error.
pub(crate) fn parse_signer(
    text: &str,
    alg: u8,
    what: &str,
) -> Result<(String, u32, ed25519_dalek::SigningKey), KeyError> {
    // At most 4 splits: the base64 tail may itself contain '+'.
    let parts: Vec<&str> = text.splitn(5, '+').collect();
    let [private, key, name, hexid, material] = parts[..] else {
        return Err(KeyError::Malformed("expected PRIVATE+KEY+<name>+<id>+<key>".into()));
    };
    if private != "PRIVATE" || key != "KEY" {
        return Err(KeyError::Malformed(format!("{what} must start with PRIVATE+KEY+")));
    }
    let given = parse_hex_id(hexid)?;
    let seed = decode_material_for(material, alg)?;
    let signer = signer_from_seed(name, alg, seed)?;
    if signer.1 != given {
        return Err(KeyError::IdMismatch { given, expected: signer.1 });
    }
    Ok(signer)
}

/// Parses `<name>+<hexid>+base64(alg ‖ public key)` (split on '+' at most 2 times: base64 may
/// hold '+'); rejects wrong lengths, other types and an id that does not match.
pub(crate) fn parse_verifier(
    text: &str,
    alg: u8,
) -> Result<(String, u32, ed25519_dalek::VerifyingKey), KeyError> {
    let parts: Vec<&str> = text.splitn(3, '+').collect();
    let [name, hexid, material] = parts[..] else {
        return Err(KeyError::Malformed("expected <name>+<id>+<key>".into()));
    };
    if !valid_key_name(name) {
        return Err(KeyError::Name(name.to_owned()));
    }
    let given = parse_hex_id(hexid)?;
    let public = decode_material_for(material, alg)?;
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|_| KeyError::Malformed("not a valid Ed25519 public key".into()))?;
    let expected = key_id_for(name, alg, &public);
    if given != expected {
        return Err(KeyError::IdMismatch { given, expected });
    }
    Ok((name.to_owned(), expected, verifying))
}

pub(crate) fn signer_text(alg: u8, name: &str, id: u32, signing: &ed25519_dalek::SigningKey) -> String {
    format!("PRIVATE+KEY+{name}+{id:08x}+{}", encode_material_for(alg, &signing.to_bytes()))
}

pub(crate) fn verifier_text(alg: u8, name: &str, id: u32, verifying: &ed25519_dalek::VerifyingKey) -> String {
    format!("{name}+{id:08x}+{}", encode_material_for(alg, verifying.as_bytes()))
}

/// Exactly 8 hex digits. `u32::from_str_radix` alone would also accept a sign or fewer digits.
fn parse_hex_id(s: &str) -> Result<u32, KeyError> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::Malformed(format!("key id {s:?} is not 8 hex digits")));
    }
    u32::from_str_radix(s, 16).map_err(|e| KeyError::Malformed(format!("key id {s:?}: {e}")))
}

/// base64(alg ‖ 32 bytes) → the 32 bytes; any other algorithm byte is [`KeyError::Algorithm`].
fn decode_material_for(s: &str, want: u8) -> Result<[u8; 32], KeyError> {
    let raw = b64::decode_any(s).map_err(|e| KeyError::Malformed(e.to_string()))?;
    let Some((&alg, rest)) = raw.split_first() else {
        return Err(KeyError::Length(0));
    };
    if alg != want {
        return Err(KeyError::Algorithm(alg));
    }
    rest.try_into().map_err(|_| KeyError::Length(rest.len()))
}

fn encode_material_for(alg: u8, key: &[u8; 32]) -> String {
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

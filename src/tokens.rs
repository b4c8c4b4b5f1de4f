//! Bearer tokens for reading over HTTP beyond loopback. A token is shown once when created;
//! the store keeps only its SHA-256, by name.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every token starts with this, so one is recognisable in a file or a leak scanner.
pub const TOKEN_PREFIX: &str = "assay_";

/// A fresh token: the prefix and 32 random bytes, hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// What the store keeps of a token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Tokens listed in a file: one per line; blank lines and `#` comments are skipped.
pub fn parse_file(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

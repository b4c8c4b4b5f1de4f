//! A 32-byte hash (blake3 or SHA-256), shown as lowercase hex.

use std::fmt;
use std::str::FromStr;

/// 32 bytes of hash output. `Display`/`FromStr` use lowercase hex; serde uses the hex string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    pub const ZERO: Hash32 = Hash32([0; 32]);
    /// blake3 of `bytes`.
    pub fn blake3(bytes: &[u8]) -> Hash32 {
        Hash32(*blake3::hash(bytes).as_bytes())
    }
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Hash32, HashParseError> {
        // Check the length in characters first so that a short string gets a length
        // error rather than a confusing "odd length" from the hex decoder.
        if s.len() != 64 {
            return Err(HashParseError::Length(s.chars().count()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| HashParseError::NotHex(e.to_string()))?;
        Ok(Hash32(out))
    }
    /// From a slice that must be exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Hash32, HashParseError> {
        let arr: [u8; 32] = b.try_into().map_err(|_| HashParseError::ByteLength(b.len()))?;
        Ok(Hash32(arr))
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashParseError {
    #[error("expected 64 hex characters, got {0}")]
    Length(usize),
    #[error("not hex: {0}")]
    NotHex(String),
    #[error("expected 32 bytes, got {0}")]
    ByteLength(usize),
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Hash32 {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Hash32, HashParseError> {
        Hash32::from_hex(s)
    }
}

impl From<[u8; 32]> for Hash32 {
    fn from(b: [u8; 32]) -> Hash32 {
        Hash32(b)
    }
}

impl AsRef<[u8]> for Hash32 {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl serde::Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hash32, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Hash32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-character hex string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hash32, E> {
                Hash32::from_hex(v).map_err(E::custom)
            }
        }
        d.deserialize_str(HexVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let h = Hash32::blake3(b"abc");
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(format!("{h:?}"), s);
        assert_eq!(s.parse::<Hash32>().unwrap(), h);
        assert_eq!(Hash32::from_hex(&s.to_uppercase()).unwrap(), h);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Hash32::from_hex("ab"), Err(HashParseError::Length(2)));
        assert!(matches!(Hash32::from_hex(&"zz".repeat(32)), Err(HashParseError::NotHex(_))));
        // A multi-byte character must not slice through a char boundary.
        assert!(Hash32::from_hex(&"é".repeat(32)).is_err());
        assert!(Hash32::from_slice(&[0; 31]).is_err());
        assert_eq!(Hash32::from_slice(&[7; 32]).unwrap(), Hash32([7; 32]));
    }

    #[test]
    fn serde_as_hex_string() {
        let h = Hash32([0xab; 32]);
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(j, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Hash32>(&j).unwrap(), h);
        assert!(serde_json::from_str::<Hash32>("\"00\"").is_err());
        assert!(serde_json::from_str::<Hash32>("5").is_err());
    }
}

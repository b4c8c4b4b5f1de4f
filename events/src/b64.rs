//! Base64 as DSSE and C2SP use it.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

// DSSE lets producers pick either alphabet, with or without padding; accept all four.
const DECODE_CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, DECODE_CONFIG);
const URL_ANY_PAD: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, DECODE_CONFIG);

/// Decodes standard or URL-safe base64, padded or not.
pub fn decode_any(s: &str) -> Result<Vec<u8>, Base64Error> {
    // The alphabets differ only in two characters; a string with '-' or '_' can only be
    // URL-safe, anything else is decoded as standard. Mixing both alphabets is an error.
    // Standard is tried first, without a scan for those two (a char-pattern search cost about
    // as much as the decode itself): it fails on any string that holds one of them, and only
    // then is the string looked at, so each string gets the answer and the error it always
    // got (`decode_by_alphabet`, which the tests compare with this).
    match STD_ANY_PAD.decode(s) {
        Ok(bytes) => Ok(bytes),
        Err(_) if s.as_bytes().iter().any(|&b| b == b'-' || b == b'_') => {
            URL_ANY_PAD.decode(s).map_err(|e| Base64Error(e.to_string()))
        }
        Err(e) => Err(Base64Error(e.to_string())),
    }
}

/// Standard alphabet, padded.
pub fn encode_std(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// [`encode_std`] into `out`, which must hold the encoded length (4 characters per 3 bytes,
/// rounded up); returns the number of bytes written.
pub fn encode_std_into(bytes: &[u8], out: &mut [u8]) -> usize {
    base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, out)
        .expect("the output holds the encoded length")
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid base64: {0}")]
pub struct Base64Error(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_forms_decode() {
        // 0xfb 0xff encodes to characters that differ between the alphabets.
        let bytes = [0xfbu8, 0xff, 0xfe, 0x00, 0x01];
        for s in ["+//+AAE=", "+//+AAE", "-__-AAE=", "-__-AAE"] {
            assert_eq!(decode_any(s).unwrap(), bytes, "{s}");
        }
        assert_eq!(encode_std(&bytes), "+//+AAE=");
    }

    /// The rule as first written: the alphabet picked by looking for '-' or '_'.
    fn decode_by_alphabet(s: &str) -> Result<Vec<u8>, Base64Error> {
        let engine = if s.contains(['-', '_']) { &URL_ANY_PAD } else { &STD_ANY_PAD };
        engine.decode(s).map_err(|e| Base64Error(e.to_string()))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Every string, of either alphabet, both, or neither, padded or not, gets the same
        /// bytes or the same error as by the rule as first written.
        #[test]
        fn the_same_answer_as_picking_the_alphabet_first(s in "[A-Za-z0-9+/_=-]{0,12}|[A-Za-z0-9+/= !-]{0,12}") {
            proptest::prop_assert_eq!(decode_any(&s), decode_by_alphabet(&s));
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_any("+_").is_err());
        assert!(decode_any("a").is_err());
        assert!(decode_any("ab!c").is_err());
        assert!(decode_any("ab c").is_err());
        assert_eq!(decode_any("").unwrap(), Vec::<u8>::new());
    }
}

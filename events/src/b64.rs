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

/// [`decode_any`] of a string that decodes to exactly 64 bytes (an Ed25519 signature), into an
/// array: no allocation (whole-log reads decode a signature a record). `None` for any other
/// string, valid or not: [`decode_any`] then says what it holds.
pub fn decode_any_64(s: &str) -> Option<[u8; 64]> {
    // Room for the engine's estimate of the output (3 bytes per 4 characters, rounded up: 66
    // for the 88 characters of a padded signature).
    let mut buf = [0u8; 66];
    // The alphabet as `decode_any` picks it: standard, URL-safe only where that fails on a
    // string holding '-' or '_'.
    let n = match STD_ANY_PAD.decode_slice(s, &mut buf) {
        Ok(n) => n,
        Err(_) if s.as_bytes().iter().any(|&b| b == b'-' || b == b'_') => {
            URL_ANY_PAD.decode_slice(s, &mut buf).ok()?
        }
        Err(_) => return None,
    };
    let mut out = [0u8; 64];
    out.copy_from_slice(buf.get(..64).filter(|_| n == 64)?);
    Some(out)
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
    fn sixty_four_bytes_decode_into_an_array_as_decode_any_does() {
        let sig: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xfb).collect();
        let forms = [
            base64::engine::general_purpose::STANDARD.encode(&sig),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&sig),
            base64::engine::general_purpose::URL_SAFE.encode(&sig),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig),
        ];
        for f in &forms {
            assert_eq!(decode_any_64(f).map(Vec::from), Some(decode_any(f).expect("valid")), "{f}");
        }
        // Other lengths and invalid strings are left to `decode_any`.
        for n in [0usize, 48, 63, 65, 66, 96] {
            let text = encode_std(&vec![7u8; n]);
            assert_eq!(decode_any_64(&text), None, "{n} bytes");
        }
        // Wherever `decode_any` gives 64 bytes this gives them too, and nowhere else.
        let odd = [
            format!("{}-_", &forms[0][..85]),
            forms[0][..87].to_owned(),
            format!("{}=", forms[0]),
            format!("{}A", forms[1]),
            format!(" {}", forms[0]),
        ];
        for f in &odd {
            let expected = decode_any(f).ok().filter(|v| v.len() == 64);
            assert_eq!(decode_any_64(f).map(Vec::from), expected, "{f:?}");
        }
    }

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

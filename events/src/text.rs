//! The one rule for strings the ledger keeps as identifiers: the CloudEvents attributes that
//! become store columns (`id`, `source`, `type`, `subject`, `time`), signature key ids, and the
//! query parameters compared with them. Such a string holds no control character (Unicode
//! general category Cc: U+0000–U+001F, U+007F–U+009F) and is at most a bounded number of
//! characters. PostgreSQL `text` cannot hold U+0000 at all; the rest are refused because no
//! identifier needs them and they hide in logs, terminals and pages.

/// `id`: at most this many characters.
pub const ID_CHARS_MAX: usize = 256;
/// `source` (`assay:key/<name>`): at most this many characters.
pub const SOURCE_CHARS_MAX: usize = 256;
/// `type`: at most this many characters.
pub const TYPE_CHARS_MAX: usize = 128;
/// `subject`: at most this many characters.
pub const SUBJECT_CHARS_MAX: usize = 256;
/// A signature's `keyid` (`name+hexid`): at most this many characters.
pub const KEYID_CHARS_MAX: usize = 256;
/// `time` (RFC 3339): at most this many characters.
pub const TIME_CHARS_MAX: usize = 64;

/// Why a string is not an acceptable identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    #[error("holds the control character U+{code:04X} at character {index}")]
    Control { index: usize, code: u32 },
    #[error("is {chars} characters long; the limit is {max}")]
    TooLong { chars: usize, max: usize },
}

/// Checks `s` against the rule: no control character, at most `max_chars` characters.
/// (Emptiness is the caller's rule: CloudEvents attributes must not be empty, a query
/// parameter may be.)
pub fn check_text(s: &str, max_chars: usize) -> Result<(), TextError> {
    let mut chars = 0;
    for (index, c) in s.chars().enumerate() {
        if c.is_control() {
            return Err(TextError::Control { index, code: u32::from(c) });
        }
        chars = index + 1;
    }
    if chars > max_chars {
        return Err(TextError::TooLong { chars, max: max_chars });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_length() {
        assert_eq!(check_text("run/r-1", 8), Ok(()));
        assert_eq!(check_text("", 8), Ok(()));
        assert_eq!(check_text("ééé", 3), Ok(()), "characters, not bytes");
        assert_eq!(check_text("abcd", 3), Err(TextError::TooLong { chars: 4, max: 3 }));
        for (s, index, code) in
            [("a\0b", 1, 0), ("\u{1}", 0, 1), ("x\ny", 1, 10), ("\u{7f}", 0, 0x7f), ("é\u{85}", 1, 0x85)]
        {
            assert_eq!(check_text(s, 100), Err(TextError::Control { index, code }), "{s:?}");
        }
        assert!(check_text("a\0", 1).unwrap_err().to_string().contains("U+0000"));
    }
}

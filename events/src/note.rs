//! C2SP signed notes (https://c2sp.org/signed-note).
//!
//! A note is text ending in '\n', a blank line, then signature lines
//! `— <name> <base64(4-byte key id ‖ signature)>\n` (the dash is U+2014).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::keys::{SignerKey, VerifierKey, valid_key_name};

/// Prefix of every signature line: em dash, space.
const SIG_PREFIX: &str = "\u{2014} ";
/// More signature lines than this make the note malformed. C2SP asks verifiers to accept
/// at least 16; the bound keeps a hostile note from costing unbounded work.
pub const MAX_SIGNATURES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: u32,
    pub sig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in '\n'.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// Signs `text` (must be non-empty, end in '\n' and hold no ASCII control character but
/// '\n', as C2SP requires) and returns the whole note.
///
/// C2SP lets the text hold empty lines (the last blank line of a note separates text from
/// signatures), so they are allowed.
pub fn sign(text: &str, key: &SignerKey) -> Result<String, NoteError> {
    check_text(text)?;
    let mut blob = key.id().to_be_bytes().to_vec();
    blob.extend_from_slice(&key.sign(text.as_bytes()));
    Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", key.name(), STANDARD.encode(blob)))
}

/// Splits a note into text and signature lines without checking any signature.
pub fn parse(note: &str) -> Result<Note, NoteError> {
    if let Some(c) = note.chars().find(|&c| c < ' ' && c != '\n') {
        return Err(malformed(format!("control character {:#04x}", c as u32)));
    }
    // The last blank line separates text and signatures; signature lines never are blank.
    let split = note.rfind("\n\n").ok_or_else(|| malformed("no blank line before signatures"))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(malformed("no signature lines"));
    }
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(malformed("signature block does not end in a newline"));
    };
    let lines: Vec<&str> = sigs.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(malformed(format!("more than {MAX_SIGNATURES} signatures")));
    }
    let signatures = lines.into_iter().map(parse_sig_line).collect::<Result<_, _>>()?;
    Ok(Note { text: text.to_owned(), signatures })
}

/// Parses and requires a valid signature by `key` (matching name and id); signatures by other
/// keys are ignored. Returns the note.
pub fn open(note: &str, key: &VerifierKey) -> Result<Note, NoteError> {
    let parsed = parse(note)?;
    let mut verified = false;
    for s in parsed.signatures.iter().filter(|s| s.name == key.name() && s.id == key.id()) {
        // A signature that claims to be this key but fails rejects the whole note, as C2SP
        // recommends: it means tampering, not an unknown co-signer.
        let ok =
            <&[u8; 64]>::try_from(s.sig.as_slice()).is_ok_and(|sig| key.verify(parsed.text.as_bytes(), sig));
        if !ok {
            return Err(NoteError::BadSignature(key.keyid()));
        }
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoSignatureByKey(key.keyid()));
    }
    Ok(parsed)
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(malformed("text must be non-empty and end in a newline"));
    }
    if let Some(c) = text.chars().find(|&c| c < ' ' && c != '\n') {
        return Err(malformed(format!("control character {:#04x} in text", c as u32)));
    }
    Ok(())
}

fn parse_sig_line(line: &str) -> Result<NoteSignature, NoteError> {
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or_else(|| malformed(format!("signature line does not start with \"— \": {line:?}")))?;
    let (name, b64) =
        rest.split_once(' ').ok_or_else(|| malformed(format!("signature line has no space: {line:?}")))?;
    if !valid_key_name(name) {
        return Err(malformed(format!("invalid key name {name:?}")));
    }
    // C2SP uses standard, padded base64 here.
    let blob = STANDARD.decode(b64).map_err(|e| malformed(format!("signature by {name}: {e}")))?;
    if blob.len() < 5 {
        return Err(malformed(format!("signature by {name} is too short")));
    }
    let (id, sig) = blob.split_at(4);
    let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    Ok(NoteSignature { name: name.to_owned(), id, sig: sig.to_vec() })
}

fn malformed(msg: impl Into<String>) -> NoteError {
    NoteError::Malformed(msg.into())
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("note has no signature by {0}")]
    NoSignatureByKey(String),
    #[error("note signature by {0} does not verify")]
    BadSignature(String),
}

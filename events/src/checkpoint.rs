//! C2SP `tlog-checkpoint` (https://c2sp.org/tlog-checkpoint): `<origin>\n<size>\n<base64 root>\n`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Hash32;
use crate::keys::{SignerKey, VerifierKey};
use crate::note;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash32,
}

/// An origin is valid iff it is non-empty and holds no ASCII control character (so it is
/// one line of a note). The ledger checks its origin with this once, at initialization.
pub fn valid_origin(origin: &str) -> bool {
    !origin.is_empty() && !origin.chars().any(|c| c < ' ')
}

impl Checkpoint {
    /// The checkpoint body (three lines; no extension lines).
    pub fn to_text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root.0))
    }

    /// Parses a body; extension lines after the root are allowed and ignored.
    pub fn from_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(malformed("body does not end in a newline"));
        };
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if !valid_origin(origin) {
            return Err(malformed(format!("invalid origin line {origin:?}")));
        }
        let size = parse_size(lines.next().ok_or_else(|| malformed("no size line"))?)?;
        let root = parse_root(lines.next().ok_or_else(|| malformed("no root line"))?)?;
        // tlog-checkpoint: extension lines must be non-empty.
        if lines.any(str::is_empty) {
            return Err(malformed("empty extension line"));
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root })
    }

    /// The signed note.
    ///
    /// # Panics
    /// If the origin is not [`valid_origin`]; [`Checkpoint::try_sign`] returns an error instead.
    pub fn sign(&self, key: &SignerKey) -> String {
        // Signing a body that would read back differently must never happen silently.
        self.try_sign(key).expect("checkpoint origin must be valid_origin")
    }

    /// The signed note, or an error if the origin would not make a valid body.
    pub fn try_sign(&self, key: &SignerKey) -> Result<String, CheckpointError> {
        if !valid_origin(&self.origin) {
            return Err(malformed(format!("invalid origin {:?}", self.origin)));
        }
        Ok(note::sign(&self.to_text(), key)?)
    }

    /// Verifies the note against `key` and parses its body.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::from_text(&note::open(note, key)?.text)
    }

    /// Parses the body of a note without checking signatures.
    pub fn parse_unverified(note: &str) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::from_text(&note::parse(note)?.text)
    }
}

/// ASCII decimal without sign or leading zeros, so each size has one spelling.
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(malformed(format!("size {line:?} is not a decimal number")));
    }
    line.parse().map_err(|e| malformed(format!("size {line:?}: {e}")))
}

fn parse_root(line: &str) -> Result<Hash32, CheckpointError> {
    let raw = STANDARD.decode(line).map_err(|e| malformed(format!("root: {e}")))?;
    Hash32::from_slice(&raw).map_err(|e| malformed(format!("root: {e}")))
}

fn malformed(msg: impl Into<String>) -> CheckpointError {
    CheckpointError::Malformed(msg.into())
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] crate::note::NoteError),
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
}

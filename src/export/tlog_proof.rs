//! `c2sp.org/tlog-proof@v1` (https://c2sp.org/tlog-proof): an offline-verifiable proof that an
//! entry is in a log — the header line, optional `extra <base64>`, `index <n>`, the inclusion
//! proof (one base64 SHA-256 hash per line, leaf's sibling first), an empty line, then the
//! checkpoint note verbatim.
//!
//! Assay puts the record's 128-byte leaf in `extra` (the data needed to rebuild the leaf hash),
//! and a bundle's sidecar holds one proof per event, concatenated: each starts with the header.
//! One file rather than one per proof, so that a bundle's proofs travel whole and from one
//! checkpoint (the README says why); [`parse_many`] splits at each header line.

use assay_events::Hash32;
use assay_events::b64::{self, Base64Error};
use assay_events::hash::HashParseError;

pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub hashes: Vec<Hash32>,
    /// The checkpoint note, verbatim (ends in a newline).
    pub checkpoint: String,
}

/// Why a text is not a `c2sp.org/tlog-proof@v1` proof (or a concatenation of them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlogProofError {
    #[error("no empty line before the checkpoint")]
    NoEmptyLine,
    #[error("the first line is not {HEADER}")]
    NoHeader,
    #[error("no index line")]
    NoIndexLine,
    #[error("extra: {0}")]
    Extra(Base64Error),
    /// The line found where the index line belongs.
    #[error("expected an index line, got {0:?}")]
    ExpectedIndex(String),
    #[error("index {0:?} is not a decimal number")]
    IndexNotDecimal(String),
    #[error("index {index:?}: {error}")]
    IndexRange { index: String, error: std::num::ParseIntError },
    #[error("proof hash {line:?}: {error}")]
    HashBase64 { line: String, error: Base64Error },
    #[error("proof hash {line:?}: {error}")]
    HashLength { line: String, error: HashParseError },
    #[error("no checkpoint")]
    NoCheckpoint,
    /// A concatenation that does not begin with a proof.
    #[error("does not start with {HEADER}")]
    NoFirstHeader,
    /// The `index`-th proof of a concatenation (from 0).
    #[error("proof {index}: {error}")]
    InProof { index: usize, error: Box<TlogProofError> },
}

impl TlogProof {
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", b64::encode_std(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&b64::encode_std(&h.0));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses one proof.
    pub fn parse(text: &str) -> Result<TlogProof, TlogProofError> {
        let (head, checkpoint) = text.split_once("\n\n").ok_or(TlogProofError::NoEmptyLine)?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(TlogProofError::NoHeader);
        }
        let mut line = lines.next().ok_or(TlogProofError::NoIndexLine)?;
        let mut extra = None;
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(b64::decode_any(e).map_err(TlogProofError::Extra)?);
            line = lines.next().ok_or(TlogProofError::NoIndexLine)?;
        }
        let index =
            line.strip_prefix("index ").ok_or_else(|| TlogProofError::ExpectedIndex(line.to_owned()))?;
        let canonical = !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && (index == "0" || !index.starts_with('0'));
        if !canonical {
            return Err(TlogProofError::IndexNotDecimal(index.to_owned()));
        }
        let index =
            index.parse().map_err(|error| TlogProofError::IndexRange { index: index.to_owned(), error })?;
        let hashes = lines
            .map(|l| {
                let raw = b64::decode_any(l)
                    .map_err(|error| TlogProofError::HashBase64 { line: l.to_owned(), error })?;
                Hash32::from_slice(&raw)
                    .map_err(|error| TlogProofError::HashLength { line: l.to_owned(), error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if checkpoint.is_empty() {
            return Err(TlogProofError::NoCheckpoint);
        }
        Ok(TlogProof { extra, index, hashes, checkpoint: checkpoint.to_owned() })
    }
}

/// Parses proofs concatenated one after another (each starting with the header line).
pub fn parse_many(text: &str) -> Result<Vec<TlogProof>, TlogProofError> {
    let mut starts = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches('\n') == HEADER {
            starts.push(at);
        }
        at += line.len();
    }
    if starts.first() != Some(&0) {
        return Err(TlogProofError::NoFirstHeader);
    }
    starts.push(text.len());
    starts
        .windows(2)
        .enumerate()
        .map(|(index, w)| {
            TlogProof::parse(&text[w[0]..w[1]])
                .map_err(|error| TlogProofError::InProof { index, error: Box::new(error) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_many() {
        let cp = "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} example.com/log AAAA\n";
        let a = TlogProof {
            extra: Some(vec![1, 2, 3]),
            index: 0,
            hashes: vec![Hash32([7; 32])],
            checkpoint: cp.into(),
        };
        let b = TlogProof { extra: None, index: 12, hashes: vec![], checkpoint: cp.into() };
        let text = format!("{}{}", a.to_text(), b.to_text());
        assert_eq!(parse_many(&text).unwrap(), vec![a.clone(), b]);
        assert!(a.to_text().starts_with("c2sp.org/tlog-proof@v1\nextra AQID\nindex 0\n"));
        assert!(TlogProof::parse(&a.to_text().replace("index 0", "index 00")).is_err());
        assert!(parse_many("garbage").is_err());
    }
}

//! `c2sp.org/tlog-proof@v1` (https://c2sp.org/tlog-proof): an offline-verifiable proof that an
//! entry is in a log — the header line, optional `extra <base64>`, `index <n>`, the inclusion
//! proof (one base64 SHA-256 hash per line, leaf's sibling first), an empty line, then the
//! checkpoint note verbatim.
//!
//! Assay puts the record's 128-byte leaf in `extra` (the data needed to rebuild the leaf hash),
//! and a bundle's sidecar holds one proof per event, concatenated: each starts with the header.

use assay_events::Hash32;
use assay_events::b64;

pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub hashes: Vec<Hash32>,
    /// The checkpoint note, verbatim (ends in a newline).
    pub checkpoint: String,
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
    pub fn parse(text: &str) -> Result<TlogProof, String> {
        let (head, checkpoint) = text.split_once("\n\n").ok_or("no empty line before the checkpoint")?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(format!("the first line is not {HEADER}"));
        }
        let mut line = lines.next().ok_or("no index line")?;
        let mut extra = None;
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(b64::decode_any(e).map_err(|e| format!("extra: {e}"))?);
            line = lines.next().ok_or("no index line")?;
        }
        let index =
            line.strip_prefix("index ").ok_or_else(|| format!("expected an index line, got {line:?}"))?;
        let canonical = !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && (index == "0" || !index.starts_with('0'));
        if !canonical {
            return Err(format!("index {index:?} is not a decimal number"));
        }
        let index = index.parse().map_err(|e| format!("index {index:?}: {e}"))?;
        let hashes = lines
            .map(|l| {
                let raw = b64::decode_any(l).map_err(|e| format!("proof hash {l:?}: {e}"))?;
                Hash32::from_slice(&raw).map_err(|e| format!("proof hash {l:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if checkpoint.is_empty() {
            return Err("no checkpoint".into());
        }
        Ok(TlogProof { extra, index, hashes, checkpoint: checkpoint.to_owned() })
    }
}

/// Parses proofs concatenated one after another (each starting with the header line).
pub fn parse_many(text: &str) -> Result<Vec<TlogProof>, String> {
    let mut starts = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches('\n') == HEADER {
            starts.push(at);
        }
        at += line.len();
    }
    if starts.first() != Some(&0) {
        return Err(format!("does not start with {HEADER}"));
    }
    starts.push(text.len());
    starts
        .windows(2)
        .enumerate()
        .map(|(i, w)| TlogProof::parse(&text[w[0]..w[1]]).map_err(|e| format!("proof {i}: {e}")))
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

//! The body of C2SP tlog-witness `add-checkpoint`: `old <size>\n`, at most 63 consistency
//! proof lines (base64 hashes), an empty line, then the checkpoint note.

use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// C2SP: a client must not send more than 63 proof lines.
pub const PROOF_LINES_MAX: usize = 63;

/// The largest body taken: 63 proof lines, a checkpoint with extension lines and up to
/// [`assay_events::note::MAX_SIGNATURES`] signature lines fit well inside.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// The `Content-Type` of a 409 naming the recorded size.
pub const TLOG_SIZE: &str = "text/x.tlog.size";

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash32>,
    /// The proof lines as sent (kept as evidence).
    pub proof_text: String,
    /// The checkpoint note as sent.
    pub note: String,
    /// Its body, parsed without checking signatures.
    pub checkpoint: Checkpoint,
}

/// Why a body is malformed (400).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    #[error("the body is not UTF-8")]
    Utf8,
    #[error("the first line must be `old <size>` (ASCII decimal, no leading zero): {0:?}")]
    OldLine(String),
    #[error("more than {PROOF_LINES_MAX} consistency proof lines")]
    TooManyProofLines,
    #[error("proof line {line}: not a base64 SHA-256 hash: {detail}")]
    ProofLine { line: usize, detail: String },
    #[error("no empty line before the checkpoint")]
    NoBlankLine,
    #[error("not a checkpoint: {0}")]
    Checkpoint(String),
}

impl AddCheckpoint {
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, RequestError> {
        let body = std::str::from_utf8(body).map_err(|_| RequestError::Utf8)?;
        let (old_line, rest) = body.split_once('\n').ok_or_else(|| RequestError::OldLine(body.into()))?;
        let old = old_line
            .strip_prefix("old ")
            .filter(|d| {
                !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && (*d == "0" || !d.starts_with('0'))
            })
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| RequestError::OldLine(old_line.into()))?;
        let mut proof = Vec::new();
        let mut rest = rest;
        let mut proof_len = 0;
        loop {
            let (line, after) = rest.split_once('\n').ok_or(RequestError::NoBlankLine)?;
            if line.is_empty() {
                rest = after;
                break;
            }
            if proof.len() == PROOF_LINES_MAX {
                return Err(RequestError::TooManyProofLines);
            }
            let bytes = STANDARD
                .decode(line)
                .map_err(|e| RequestError::ProofLine { line: proof.len() + 1, detail: e.to_string() })?;
            let hash = Hash32::from_slice(&bytes)
                .map_err(|e| RequestError::ProofLine { line: proof.len() + 1, detail: e.to_string() })?;
            proof.push(hash);
            proof_len += line.len() + 1;
            rest = after;
        }
        let proof_text = body[old_line.len() + 1..old_line.len() + 1 + proof_len].to_owned();
        let checkpoint =
            Checkpoint::parse_unverified(rest).map_err(|e| RequestError::Checkpoint(e.to_string()))?;
        Ok(AddCheckpoint { old, proof, proof_text, note: rest.to_owned(), checkpoint })
    }

    /// The checkpoint's signed text (what a cosignature signs).
    pub fn checkpoint_body(&self) -> String {
        let split = self.note.rfind("\n\n").map_or(self.note.len(), |i| i + 1);
        self.note[..split].to_owned()
    }

    /// The body for `old`, `proof` (base64 lines) and `note`.
    pub fn body(old: u64, proof: &[String], note: &str) -> String {
        let mut body = format!("old {old}\n");
        for line in proof {
            body.push_str(line);
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

    #[test]
    fn parses_the_spec_example_and_round_trips() {
        let proof = [
            "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=".to_owned(),
            "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=".to_owned(),
        ];
        let body = AddCheckpoint::body(20852014, &proof, NOTE);
        let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!((req.old, req.proof.len(), req.checkpoint.size), (20852014, 2, 20852163));
        assert_eq!(req.note, NOTE);
        assert_eq!(req.proof_text, format!("{}\n{}\n", proof[0], proof[1]));
    }

    #[test]
    fn refuses_malformed_bodies_naming_the_fault() {
        let line = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=";
        let cases = [
            (format!("old 01\n\n{NOTE}"), "old <size>"),
            (format!("old -1\n\n{NOTE}"), "old <size>"),
            (format!("new 1\n\n{NOTE}"), "old <size>"),
            (format!("old 1\nnot base64!\n\n{NOTE}"), "proof line 1"),
            (format!("old 1\nAAAA\n\n{NOTE}"), "proof line 1"),
            (format!("old 1\n{}\n{NOTE}", vec![line; 64].join("\n")), "more than 63"),
            ("old 1\n\nnot a checkpoint\n".to_owned(), "not a checkpoint"),
            ("old 1\n".to_owned(), "no empty line"),
        ];
        for (body, want) in cases {
            let err = AddCheckpoint::parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{body:?}: {err}");
        }
        assert_eq!(AddCheckpoint::parse(b"old 0\n\xff\n"), Err(RequestError::Utf8));
        let ok = format!("old 1\n{}\n\n{NOTE}", vec![line; 63].join("\n"));
        assert_eq!(AddCheckpoint::parse(ok.as_bytes()).unwrap().proof.len(), 63);
    }
}

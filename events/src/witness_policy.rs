//! A witness policy: which witnesses a verifier trusts and how many of them must have cosigned a
//! checkpoint before the verifier believes it (a quorum K of N).
//!
//! The file is line-based, like the policies of other transparency-log clients:
//!
//! ```text
//! # comments and blank lines are ignored
//! witness witness.example/w1+1a2b3c4d+BF...=
//! witness witness.example/w2+5e6f7a8b+BG...=
//! quorum 2
//! ```
//!
//! Each `witness` line holds one `cosignature/v1` verifier key (its name is the key's name);
//! `quorum` appears once, 1 ≤ K ≤ the number of witnesses.

use crate::cosignature::{CosignatureError, CosignerVerifier};
use crate::keys::KeyError;
use crate::note::Note;

/// Witnesses one policy may list. A note holds at most [`crate::note::MAX_SIGNATURES`] lines,
/// so more could never all be met.
pub const POLICY_WITNESSES_MAX: usize = 64;
/// Bytes a policy file may hold (64 keys of ~100 bytes with room for comments).
pub const POLICY_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    witnesses: Vec<CosignerVerifier>,
    quorum: usize,
}

/// What a checkpoint met: the witnesses whose cosignatures verified (with their timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMet {
    pub cosigned: Vec<(String, u64)>,
    pub quorum: usize,
}

impl WitnessPolicy {
    pub fn new(witnesses: Vec<CosignerVerifier>, quorum: usize) -> Result<WitnessPolicy, PolicyError> {
        if witnesses.is_empty() {
            return Err(PolicyError::Invalid("no witness lines".into()));
        }
        if witnesses.len() > POLICY_WITNESSES_MAX {
            return Err(PolicyError::Invalid(format!("more than {POLICY_WITNESSES_MAX} witnesses")));
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i].iter().any(|o| o.name() == w.name()) {
                return Err(PolicyError::Invalid(format!("witness {} is listed twice", w.name())));
            }
        }
        if quorum == 0 || quorum > witnesses.len() {
            return Err(PolicyError::Invalid(format!(
                "quorum {quorum} must be between 1 and the {} witnesses listed",
                witnesses.len()
            )));
        }
        Ok(WitnessPolicy { witnesses, quorum })
    }

    /// Parses the policy text (see the module docs); errors name the line.
    pub fn parse(text: &str) -> Result<WitnessPolicy, PolicyError> {
        if text.len() > POLICY_BYTES_MAX {
            return Err(PolicyError::Invalid(format!("more than {POLICY_BYTES_MAX} bytes")));
        }
        let mut witnesses = Vec::new();
        let mut quorum = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |e: String| PolicyError::Line { line: i + 1, reason: e };
            match line.split_once(char::is_whitespace).map(|(k, v)| (k, v.trim())) {
                Some(("witness", key)) => {
                    if witnesses.len() == POLICY_WITNESSES_MAX {
                        return Err(at(format!("more than {POLICY_WITNESSES_MAX} witnesses")));
                    }
                    witnesses.push(CosignerVerifier::parse(key).map_err(|e: KeyError| at(e.to_string()))?);
                }
                Some(("quorum", k)) => {
                    if quorum.is_some() {
                        return Err(at("a second quorum line".into()));
                    }
                    let k: usize =
                        k.parse().map_err(|_| at(format!("quorum {k:?} is not a whole number")))?;
                    quorum = Some(k);
                }
                _ => return Err(at(format!("expected `witness <vkey>` or `quorum <K>`, found {line:?}"))),
            }
        }
        let quorum = quorum.ok_or_else(|| PolicyError::Invalid("no quorum line".into()))?;
        WitnessPolicy::new(witnesses, quorum)
    }

    pub fn witnesses(&self) -> &[CosignerVerifier] {
        &self.witnesses
    }
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Whether `note` carries valid cosignatures from at least K listed witnesses. Lines by
    /// unlisted keys are ignored; a line that claims a listed key and fails is an error.
    pub fn check(&self, note: &Note) -> Result<QuorumMet, PolicyError> {
        let mut cosigned = Vec::new();
        let mut missing = Vec::new();
        for w in &self.witnesses {
            match w.find(note).map_err(PolicyError::Cosignature)? {
                Some(ts) => cosigned.push((w.name().to_owned(), ts)),
                None => missing.push(w.name().to_owned()),
            }
        }
        if cosigned.len() < self.quorum {
            return Err(PolicyError::Quorum { have: cosigned.len(), need: self.quorum, missing });
        }
        Ok(QuorumMet { cosigned, quorum: self.quorum })
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("witness policy line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("witness policy: {0}")]
    Invalid(String),
    #[error("checkpoint has {have} of the {need} witness cosignatures the policy requires; missing: {}", missing.join(", "))]
    Quorum { have: usize, need: usize, missing: Vec<String> },
    #[error(transparent)]
    Cosignature(CosignatureError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::Cosigner;
    use crate::note;

    const BODY: &str = "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn w(n: u8) -> Cosigner {
        Cosigner::from_seed(&format!("w{n}.example"), [n; 32]).unwrap()
    }

    fn policy(k: usize) -> WitnessPolicy {
        let text = format!(
            "# test\nwitness {}\n\nwitness {}\nwitness {}\nquorum {k}\n",
            w(1).verifier().to_text(),
            w(2).verifier().to_text(),
            w(3).verifier().to_text()
        );
        WitnessPolicy::parse(&text).unwrap()
    }

    #[test]
    fn quorum_counts_listed_valid_cosignatures_and_names_the_missing() {
        let stranger = Cosigner::from_seed("stranger", [9; 32]).unwrap();
        let text = format!(
            "{BODY}\n{}{}{}",
            w(1).cosign(BODY, 10),
            stranger.cosign(BODY, 11),
            w(3).cosign(BODY, 12)
        );
        let n = note::parse(&text).unwrap();
        let met = policy(2).check(&n).unwrap();
        assert_eq!(met.cosigned, vec![("w1.example".into(), 10), ("w3.example".into(), 12)]);
        assert_eq!(
            policy(3).check(&n),
            Err(PolicyError::Quorum { have: 2, need: 3, missing: vec!["w2.example".into()] })
        );
        assert!(policy(3).check(&n).unwrap_err().to_string().contains("missing: w2.example"));
    }

    #[test]
    fn a_listed_witness_line_over_another_body_is_refused() {
        let other = BODY.replace("\n5\n", "\n6\n");
        let text = format!("{BODY}\n{}", w(1).cosign(&other, 10));
        let n = note::parse(&text).unwrap();
        assert!(matches!(
            policy(1).check(&n),
            Err(PolicyError::Cosignature(CosignatureError::BadSignature(_)))
        ));
    }

    #[test]
    fn bad_policies_name_what_is_wrong() {
        let k1 = w(1).verifier().to_text();
        let cases = [
            (format!("witness {k1}\n"), "no quorum line"),
            (format!("witness {k1}\nquorum 2\n"), "quorum 2 must be between 1 and the 1"),
            (format!("witness {k1}\nquorum 0\n"), "quorum 0"),
            (format!("witness {k1}\nwitness {k1}\nquorum 1\n"), "listed twice"),
            ("quorum 1\n".to_owned(), "no witness lines"),
            (format!("witness {k1}\nquorum x\n"), "line 2: quorum \"x\" is not a whole number"),
            ("witnes abc\n".to_owned(), "line 1: expected"),
            ("witness abc\n".to_owned(), "line 1: key text is malformed"),
        ];
        for (text, want) in cases {
            let err = WitnessPolicy::parse(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}

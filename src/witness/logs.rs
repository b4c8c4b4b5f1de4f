//! The logs a witness cosigns for (`--logs logs.toml`): each origin with the note verifier
//! keys whose signatures it accepts.
//!
//! ```toml
//! [[log]]
//! origin = "lab.example/assay"
//! vkeys = ["lab.example/assay+0a1b2c3d+AQ..."]
//! ```

use std::collections::HashMap;

use assay_events::checkpoint::valid_origin;
use assay_events::keys::VerifierKey;
use serde::Deserialize;

/// Logs one witness takes, and keys per log.
pub const LOGS_MAX: usize = 10_000;
pub const KEYS_PER_LOG_MAX: usize = 16;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogsError {
    #[error("not a logs file: {0}")]
    Toml(String),
    #[error("log {index}: invalid origin {origin:?} (empty or holding a control character)")]
    Origin { index: usize, origin: String },
    #[error("log {origin}: no vkeys (a witness must check the log's signature)")]
    NoKeys { origin: String },
    #[error("log {origin}: more than {KEYS_PER_LOG_MAX} vkeys")]
    TooManyKeys { origin: String },
    #[error("log {origin}: vkey {index}: {source}")]
    Key { origin: String, index: usize, source: assay_events::keys::KeyError },
    #[error("log {0} is listed twice")]
    Duplicate(String),
    #[error("more than {LOGS_MAX} logs")]
    TooMany,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    log: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    origin: String,
    vkeys: Vec<String>,
}

/// The known logs by origin.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    by_origin: HashMap<String, Vec<VerifierKey>>,
}

impl Logs {
    pub fn parse(text: &str) -> Result<Logs, LogsError> {
        let file: File = toml::from_str(text).map_err(|e| LogsError::Toml(e.to_string()))?;
        if file.log.len() > LOGS_MAX {
            return Err(LogsError::TooMany);
        }
        let mut by_origin = HashMap::new();
        for (index, e) in file.log.into_iter().enumerate() {
            if !valid_origin(&e.origin) {
                return Err(LogsError::Origin { index, origin: e.origin });
            }
            if e.vkeys.is_empty() {
                return Err(LogsError::NoKeys { origin: e.origin });
            }
            if e.vkeys.len() > KEYS_PER_LOG_MAX {
                return Err(LogsError::TooManyKeys { origin: e.origin });
            }
            let keys = e
                .vkeys
                .iter()
                .enumerate()
                .map(|(index, k)| {
                    VerifierKey::parse(k.trim()).map_err(|source| LogsError::Key {
                        origin: e.origin.clone(),
                        index,
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if by_origin.insert(e.origin.clone(), keys).is_some() {
                return Err(LogsError::Duplicate(e.origin));
            }
        }
        Ok(Logs { by_origin })
    }

    /// One log.
    pub fn single(origin: &str, keys: Vec<VerifierKey>) -> Logs {
        Logs { by_origin: HashMap::from([(origin.to_owned(), keys)]) }
    }

    /// The keys trusted for `origin`; None: an unknown log.
    pub fn keys(&self, origin: &str) -> Option<&[VerifierKey]> {
        self.by_origin.get(origin).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_origin.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_origin.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_logs_and_names_what_is_wrong() {
        let key = assay_events::keys::SignerKey::from_seed("log.example/a", [3; 32]).unwrap();
        let text =
            format!("[[log]]\norigin = \"log.example/a\"\nvkeys = [\"{}\"]\n", key.verifier().to_text());
        let logs = Logs::parse(&text).unwrap();
        assert_eq!(logs.keys("log.example/a").unwrap(), &[key.verifier()]);
        assert!(logs.keys("log.example/b").is_none());
        let twice = format!("{text}{text}");
        assert!(matches!(Logs::parse(&twice), Err(LogsError::Duplicate(o)) if o == "log.example/a"));
        let bad = "[[log]]\norigin = \"x\"\nvkeys = [\"nope\"]\n";
        assert!(Logs::parse(bad).unwrap_err().to_string().starts_with("log x: vkey 0:"));
        assert!(matches!(
            Logs::parse("[[log]]\norigin = \"x\"\nvkeys = []\n"),
            Err(LogsError::NoKeys { .. })
        ));
        assert!(matches!(Logs::parse("[[log]]\norigin = \"x\"\nkeys = []\n"), Err(LogsError::Toml(_))));
    }
}

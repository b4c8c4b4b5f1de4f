//! The key registry: which keys are trusted, with which roles, at each seq (DESIGN §2).
//! Who may sign what, given the registry, is [`crate::authorize`].

use std::collections::BTreeMap;

use assay_events::keys::VerifierKey;
use assay_events::record::Record;
use assay_events::roles::Role;
use assay_events::{EventType, Hash32};
use serde::Serialize;

/// One key the ledger knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyEntry {
    /// C2SP verifier key text.
    pub vkey: String,
    pub roles: Vec<Role>,
    pub registered_seq: u64,
    pub revoked_seq: Option<u64>,
    #[serde(skip)]
    pub verifier: VerifierKey,
}

/// Why a key may not sign. Not `non_exhaustive`: ingest gives each its own rejection code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("unknown key {0}: it was never registered")]
    Unknown(String),
    #[error("key {keyid} was revoked at seq {seq}")]
    Revoked { keyid: String, seq: u64 },
}

/// Keys by DSSE keyid (`name+hexid`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyRegistry {
    keys: BTreeMap<String, KeyEntry>,
    /// The ledger's own key (from genesis).
    ledger_keyid: Option<String>,
    origin: Option<String>,
    /// Role grants per keyid in seq order (registration, then each re-registration), so
    /// that the roles a key held when it signed a record can be asked later.
    grants: BTreeMap<String, Vec<RoleGrant>>,
}

/// The roles a key was given at `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleGrant {
    pub seq: u64,
    pub roles: Vec<Role>,
}

impl KeyRegistry {
    pub fn new() -> KeyRegistry {
        KeyRegistry::default()
    }

    /// Folds one record. Records are already authorized by the sequencer; data that does not
    /// parse is ignored here (the schema and the sequencer rejected it before it was stored).
    pub fn apply(&mut self, record: &Record) {
        let data = &record.event.data;
        let Some(ty) = record.event_type() else { return };
        match ty {
            EventType::LedgerInitialized => {
                self.origin = data["origin"].as_str().map(str::to_owned);
                if let Some(v) = data["ledger_key"].as_str().and_then(parse_vkey) {
                    self.ledger_keyid = Some(v.keyid());
                    self.insert(v, vec![Role::Ledger], record.seq);
                }
                for text in data["admin_keys"].as_array().into_iter().flatten() {
                    if let Some(v) = text.as_str().and_then(parse_vkey) {
                        self.insert(v, vec![Role::Admin], record.seq);
                    }
                }
            }
            EventType::KeyRegistered => {
                let Some(v) = data["vkey"].as_str().and_then(parse_vkey) else { return };
                let mut roles: Vec<Role> = data["roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().and_then(Role::parse_grantable))
                    .collect();
                roles.sort();
                roles.dedup();
                self.insert(v, roles, record.seq);
            }
            EventType::KeyRevoked => {
                let Some(v) = data["vkey"].as_str().and_then(parse_vkey) else { return };
                if let Some(entry) = self.keys.get_mut(&v.keyid()) {
                    entry.revoked_seq.get_or_insert(record.seq);
                }
            }
            _ => {}
        }
    }

    fn insert(&mut self, verifier: VerifierKey, roles: Vec<Role>, seq: u64) {
        let keyid = verifier.keyid();
        match self.keys.get_mut(&keyid) {
            // Re-registration replaces the roles of a live key; a revoked key stays revoked.
            Some(entry) if entry.revoked_seq.is_none() => {
                entry.roles = roles.clone();
                self.grants.entry(keyid).or_default().push(RoleGrant { seq, roles });
            }
            Some(_) => {}
            None => {
                self.grants.entry(keyid.clone()).or_default().push(RoleGrant { seq, roles: roles.clone() });
                self.keys.insert(
                    keyid,
                    KeyEntry {
                        vkey: verifier.to_text(),
                        roles,
                        registered_seq: seq,
                        revoked_seq: None,
                        verifier,
                    },
                );
            }
        }
    }

    /// The live key for `keyid`, or why it may not sign.
    pub fn live(&self, keyid: &str) -> Result<&KeyEntry, KeyProblem> {
        match self.keys.get(keyid) {
            None => Err(KeyProblem::Unknown(keyid.to_owned())),
            Some(KeyEntry { revoked_seq: Some(seq), .. }) => {
                Err(KeyProblem::Revoked { keyid: keyid.to_owned(), seq: *seq })
            }
            Some(entry) => Ok(entry),
        }
    }

    /// Any entry, live or revoked.
    pub fn get(&self, keyid: &str) -> Option<&KeyEntry> {
        self.keys.get(keyid)
    }

    /// True iff `keyid` is live and holds one of `roles`. The runner role includes
    /// everything a worker may emit; `allowed_roles` already lists both where that applies.
    pub fn may_emit(&self, keyid: &str, roles: &[Role]) -> bool {
        self.live(keyid).is_ok_and(|e| e.roles.iter().any(|r| roles.contains(r)))
    }

    /// True iff `keyid` held one of `roles` when record `seq` was appended: registered at or
    /// before `seq`, not revoked at or before `seq`, and its grant in force at `seq` names one
    /// of `roles`. Revocation stops trust from its record on; earlier records stay valid.
    pub fn held_role_at(&self, keyid: &str, roles: &[Role], seq: u64) -> bool {
        let Some(entry) = self.keys.get(keyid) else { return false };
        if entry.registered_seq > seq || entry.revoked_seq.is_some_and(|r| r <= seq) {
            return false;
        }
        let granted = self
            .grants
            .get(keyid)
            .and_then(|g| g.iter().rev().find(|g| g.seq <= seq))
            .map_or(entry.roles.as_slice(), |g| g.roles.as_slice());
        granted.iter().any(|r| roles.contains(r))
    }

    pub fn ledger_keyid(&self) -> Option<&str> {
        self.ledger_keyid.as_deref()
    }

    pub fn ledger_key(&self) -> Option<&VerifierKey> {
        self.ledger_keyid.as_deref().and_then(|k| self.keys.get(k)).map(|e| &e.verifier)
    }

    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    pub fn keys(&self) -> impl Iterator<Item = (&String, &KeyEntry)> {
        self.keys.iter()
    }

    pub fn digest(&self) -> Hash32 {
        crate::digest::state_digest(self)
    }
}

fn parse_vkey(text: &str) -> Option<VerifierKey> {
    VerifierKey::parse(text).ok()
}

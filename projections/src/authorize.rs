//! Who may sign what (DESIGN §2): the one authorization rule. Ingest applies it to each new
//! envelope ([`authorize_submission`]), `assay verify` and export verification to each stored
//! record ([`authorize_record`], [`RecordAuthorizer`]).
//!
//! Pure: the caller hands in the key registry as of the record's seq (folded from the records
//! before it). A record is authorized when the key its `source` names signed it, that key is
//! registered and not revoked, and it holds a role that may emit the record's type; record 0,
//! and only record 0, is genesis, signed by the ledger key it names. New envelopes meet more
//! rules than stored records, as new events meet more rules than stored ones: a producer may
//! not send a type only the ledger writes, every co-signer must be live too, and a key change
//! must make sense for the key it names (revocation is final, the ledger key stays as it is).

use assay_events::EventType;
use assay_events::cloudevent::CloudEvent;
use assay_events::dsse::Signature;
use assay_events::keys::{KeyError, VerifierKey};
use assay_events::record::Record;
use assay_events::roles::{Role, allowed_roles};
use assay_events::source::{signature_by_name, source_key_name};

use crate::keys::{KeyEntry, KeyProblem, KeyRegistry};

/// The type of record 0, and of no other record.
pub const GENESIS: EventType = EventType::LedgerInitialized;
/// [`GENESIS`] as it is written in events.
pub const GENESIS_TYPE: &str = GENESIS.as_str();

/// Why a record may not stand where it is, or a new envelope may not be appended.
///
/// Not `non_exhaustive`: ingest maps every reason to a rejection code, so a new reason must be
/// mapped where it is added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("source {0:?} names no key")]
    SourceNamesNoKey(String),
    #[error("no signature by the source's key {0}")]
    NoSourceSignature(String),
    /// Record 0 of another type (ingest: the ledger is not initialized).
    #[error("record 0 is not ledger.initialized")]
    NotGenesis,
    /// Genesis past record 0 (ingest: a producer sent `ledger.initialized`).
    #[error("a second ledger.initialized")]
    SecondGenesis,
    /// A record past 0 with no genesis authorized before it (a bundle without record 0).
    #[error("no genesis (record 0) before this record")]
    NoGenesis,
    #[error("genesis ledger_key: {0}")]
    GenesisKey(KeyError),
    #[error("genesis names ledger key {named}, not the trusted key {trusted}")]
    GenesisNotTrusted { named: String, trusted: String },
    #[error("genesis is not signed by the ledger key it names")]
    GenesisNotSelfSigned,
    /// Ingest: genesis must name, and be signed by, the key of the ledger being initialized.
    #[error("genesis must name and be signed by this ledger's key")]
    GenesisNotThisLedger,
    #[error("genesis must name the origin {0:?}")]
    GenesisOrigin(String),
    #[error("genesis is signed by the ledger key alone")]
    GenesisCosigned,
    #[error("unknown type {0}")]
    UnknownType(String),
    /// Ingest: a type only the ledger writes, sent by a producer.
    #[error("{0} is written only by the ledger itself")]
    LedgerOnly(String),
    #[error(transparent)]
    Key(#[from] KeyProblem),
    #[error("signature by {0} does not verify")]
    BadSignature(String),
    /// `needed`: the roles any of which would do.
    #[error("key {keyid} may not emit {ty}")]
    RoleNotAllowed { keyid: String, ty: String, needed: &'static [Role] },
    /// A stored record of a type only the ledger writes, signed by another key. The registry
    /// grants the ledger role to the ledger key alone, so the role check refuses such a record
    /// first; this says so again where the rule is stated.
    #[error("{0} not signed by the ledger key")]
    NotLedgerKey(String),
    #[error("data.vkey: {0}")]
    KeyChangeVkey(KeyError),
    #[error("{0} is the ledger key; its roles cannot change")]
    LedgerKeyChange(String),
    #[error("{keyid} was revoked at seq {seq}; revocation is final")]
    RevocationFinal { keyid: String, seq: u64 },
    #[error("{0} is not registered")]
    NotRegistered(String),
    #[error("{0} is already revoked")]
    AlreadyRevoked(String),
}

/// Which ledger key a stored genesis may name.
#[derive(Debug, Clone, Copy)]
pub enum GenesisTrust<'a> {
    /// Whichever key it names (`assay verify`: the stored ledger's own genesis).
    Named,
    /// The key the verifier holds (`verify-export`, `verify-bundle`).
    Trusted(&'a VerifierKey),
}

/// Authorizes the stored `record` against `keys`, the registry as of its seq. Ok is the key
/// whose signature the record needs; the caller checks the signatures (in Ed25519 batches).
pub fn authorize_record(
    keys: &KeyRegistry,
    trust: GenesisTrust<'_>,
    record: &Record,
) -> Result<VerifierKey, AuthError> {
    let event = &record.event;
    let name =
        source_key_name(&event.source).ok_or_else(|| AuthError::SourceNamesNoKey(event.source.clone()))?;
    let signer = signature_by_name(name, &record.signatures)
        .ok_or_else(|| AuthError::NoSourceSignature(name.to_owned()))?;
    let ty = event.ty.as_str();
    if record.seq == 0 {
        return recorded_genesis(trust, event, &signer.keyid);
    }
    if keys.ledger_keyid().is_none() {
        return Err(AuthError::NoGenesis);
    }
    if event.event_type() == Some(GENESIS) {
        return Err(AuthError::SecondGenesis);
    }
    let roles = roles_for(ty)?;
    let entry = live_with_role(keys, &signer.keyid, ty, roles, |_, _, _| true)?;
    if roles == [Role::Ledger] && keys.ledger_keyid() != Some(signer.keyid.as_str()) {
        return Err(AuthError::NotLedgerKey(ty.to_owned()));
    }
    Ok(entry.verifier.clone())
}

/// Record 0: genesis, naming a ledger key (the trusted one, if there is one) that signed it.
fn recorded_genesis(
    trust: GenesisTrust<'_>,
    event: &CloudEvent,
    signer: &str,
) -> Result<VerifierKey, AuthError> {
    if event.event_type() != Some(GENESIS) {
        return Err(AuthError::NotGenesis);
    }
    let named = VerifierKey::parse(event.data["ledger_key"].as_str().unwrap_or_default())
        .map_err(AuthError::GenesisKey)?;
    if let GenesisTrust::Trusted(trusted) = trust
        && named != *trusted
    {
        return Err(AuthError::GenesisNotTrusted { named: named.keyid(), trusted: trusted.keyid() });
    }
    if named.keyid() != signer {
        return Err(AuthError::GenesisNotSelfSigned);
    }
    Ok(named)
}

/// Stored records in seq order, each authorized against the registry the records before it
/// built, then folded into it (`assay verify`, `verify-export`, `verify-bundle`).
#[derive(Debug, Clone, Default)]
pub struct RecordAuthorizer {
    keys: KeyRegistry,
    trusted: Option<VerifierKey>,
}

impl RecordAuthorizer {
    /// `trusted`: the ledger key genesis must name, if the verifier holds one.
    pub fn new(trusted: Option<VerifierKey>) -> RecordAuthorizer {
        RecordAuthorizer { keys: KeyRegistry::new(), trusted }
    }

    /// [`authorize_record`] against the records authorized so far; then folds `record`.
    /// Records must come in seq order, genesis first; a refused record is not folded.
    pub fn authorize(&mut self, record: &Record) -> Result<VerifierKey, AuthError> {
        let trust = self.trusted.as_ref().map_or(GenesisTrust::Named, GenesisTrust::Trusted);
        let key = authorize_record(&self.keys, trust, record)?;
        self.keys.apply(record);
        Ok(key)
    }

    /// The registry as of the records authorized so far (its ledger key and origin are
    /// genesis's).
    pub fn keys(&self) -> &KeyRegistry {
        &self.keys
    }
}

/// The ledger a new envelope is appended to: genesis must name its key and origin.
#[derive(Debug, Clone, Copy)]
pub struct LedgerIdentity<'a> {
    pub key: &'a VerifierKey,
    pub origin: &'a str,
}

/// A new envelope, to be appended at `seq`.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    pub seq: u64,
    pub event: &'a CloudEvent,
    /// The keyid of the signature by the key `source` names ([`assay_events::source`]).
    pub signer: &'a str,
    pub signatures: &'a [Signature],
}

/// Authorizes a new envelope against `keys`, the registry as of `submission.seq`.
///
/// `verifies(keyid, vkey_text, key)` says whether the signature by `keyid` verifies under
/// `key` (whose text form is `vkey_text`); it is asked for each signature in turn, once the
/// key is known to be live, so a signature is never reported bad before its key is checked.
pub fn authorize_submission(
    keys: &KeyRegistry,
    ledger: LedgerIdentity<'_>,
    submission: Submission<'_>,
    verifies: impl FnMut(&str, &str, &VerifierKey) -> bool,
) -> Result<(), AuthError> {
    let Submission { seq, event, signer, signatures } = submission;
    if event.event_type() == Some(GENESIS) {
        return submitted_genesis(ledger, submission, verifies);
    }
    if seq == 0 {
        return Err(AuthError::NotGenesis);
    }
    authorize_signers(keys, &event.ty, signer, signatures, verifies)?;
    match event.event_type() {
        Some(EventType::KeyRegistered | EventType::KeyRevoked) => key_change(keys, event),
        _ => Ok(()),
    }
}

/// The signers of a new event of type `ty`: a type a producer may send, the source's key
/// (`signer`) live, verifying and holding a role for it, then each co-signer live and
/// verifying. Ok is the signer's entry.
pub fn authorize_signers<'k>(
    keys: &'k KeyRegistry,
    ty: &str,
    signer: &str,
    signatures: &[Signature],
    mut verifies: impl FnMut(&str, &str, &VerifierKey) -> bool,
) -> Result<&'k KeyEntry, AuthError> {
    let roles = roles_for(ty)?;
    if roles == [Role::Ledger] {
        return Err(AuthError::LedgerOnly(ty.to_owned()));
    }
    let entry = live_with_role(keys, signer, ty, roles, &mut verifies)?;
    // A signature the ledger cannot check would be stored as if it meant something.
    for s in signatures.iter().filter(|s| s.keyid != signer) {
        let co = keys.live(&s.keyid)?;
        if !verifies(&s.keyid, &co.vkey, &co.verifier) {
            return Err(AuthError::BadSignature(s.keyid.clone()));
        }
    }
    Ok(entry)
}

/// A new genesis: record 0, naming this ledger's key and origin, signed by that key alone.
fn submitted_genesis(
    ledger: LedgerIdentity<'_>,
    submission: Submission<'_>,
    mut verifies: impl FnMut(&str, &str, &VerifierKey) -> bool,
) -> Result<(), AuthError> {
    let Submission { seq, event, signer, signatures } = submission;
    if seq != 0 {
        return Err(AuthError::SecondGenesis);
    }
    let text = ledger.key.to_text();
    if event.data["ledger_key"].as_str().unwrap_or_default() != text || signer != ledger.key.keyid() {
        return Err(AuthError::GenesisNotThisLedger);
    }
    if event.data["origin"].as_str() != Some(ledger.origin) {
        return Err(AuthError::GenesisOrigin(ledger.origin.to_owned()));
    }
    if signatures.len() != 1 {
        return Err(AuthError::GenesisCosigned);
    }
    if !verifies(signer, &text, ledger.key) {
        return Err(AuthError::BadSignature(signer.to_owned()));
    }
    Ok(())
}

/// A new `key.registered` / `key.revoked`: the key it names is not the ledger's, a revoked
/// key is not registered again, and only a live registered key is revoked.
fn key_change(keys: &KeyRegistry, event: &CloudEvent) -> Result<(), AuthError> {
    let text = event.data["vkey"].as_str().unwrap_or_default();
    let keyid = VerifierKey::parse(text).map_err(AuthError::KeyChangeVkey)?.keyid();
    if keys.ledger_keyid() == Some(keyid.as_str()) {
        return Err(AuthError::LedgerKeyChange(keyid));
    }
    let revoked = keys.get(&keyid).map(|e| e.revoked_seq);
    match (event.event_type(), revoked) {
        (Some(EventType::KeyRegistered), Some(Some(seq))) => Err(AuthError::RevocationFinal { keyid, seq }),
        (Some(EventType::KeyRevoked), None) => Err(AuthError::NotRegistered(keyid)),
        (Some(EventType::KeyRevoked), Some(Some(_))) => Err(AuthError::AlreadyRevoked(keyid)),
        _ => Ok(()),
    }
}

/// The roles any of which may emit `ty`.
fn roles_for(ty: &str) -> Result<&'static [Role], AuthError> {
    allowed_roles(ty).ok_or_else(|| AuthError::UnknownType(ty.to_owned()))
}

/// `keyid` is registered and not revoked, its signature verifies, and it holds one of `roles`.
fn live_with_role<'k>(
    keys: &'k KeyRegistry,
    keyid: &str,
    ty: &str,
    roles: &'static [Role],
    mut verifies: impl FnMut(&str, &str, &VerifierKey) -> bool,
) -> Result<&'k KeyEntry, AuthError> {
    let entry = keys.live(keyid)?;
    if !verifies(keyid, &entry.vkey, &entry.verifier) {
        return Err(AuthError::BadSignature(keyid.to_owned()));
    }
    if !entry.roles.iter().any(|r| roles.contains(r)) {
        return Err(AuthError::RoleNotAllowed { keyid: keyid.to_owned(), ty: ty.to_owned(), needed: roles });
    }
    Ok(entry)
}

#[cfg(test)]
mod tests;

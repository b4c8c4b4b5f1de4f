//! Offline authorization of records, as `assay verify` does it for a stored ledger: genesis
//! bound to the ledger key the verifier trusts, keys and roles replayed from the key events seen
//! so far, the source bound to the signer, the schema and the subject. Used by `verify-export`
//! (every record) and `verify-bundle` (a subset in seq order, which must hold every key event
//! its signers depend on).

use assay_events::keys::VerifierKey;
use assay_events::record::Record;
use assay_events::roles::{Role, allowed_roles};
use assay_projections::KeyRegistry;

use crate::ledger::prepare::expected_subject;

/// The key registry replayed from the records authorized so far.
pub struct Authorizer {
    trusted: VerifierKey,
    keys: KeyRegistry,
    origin: Option<String>,
}

impl Authorizer {
    /// `trusted`: the ledger key the user holds; genesis must name it and be signed by it.
    pub fn new(trusted: VerifierKey) -> Authorizer {
        Authorizer { trusted, keys: KeyRegistry::new(), origin: None }
    }

    /// The origin genesis names (None before genesis).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    pub fn trusted(&self) -> &VerifierKey {
        &self.trusted
    }

    /// The key whose signature `record` needs, after checking the key is live and holds a role
    /// that may emit the record's type; then folds the record into the registry if it is a key
    /// event. Records must come in seq order, genesis first.
    pub fn authorize(&mut self, record: &Record) -> Result<VerifierKey, String> {
        let ty = record.event.ty.as_str();
        let name = record
            .event
            .source
            .strip_prefix("assay:key/")
            .ok_or_else(|| format!("source {:?} names no key", record.event.source))?;
        let signer = record
            .signatures
            .iter()
            .find(|s| s.keyid.rsplit_once('+').is_some_and(|(n, _)| n == name))
            .ok_or_else(|| format!("no signature by the source's key {name}"))?;
        let key = if record.seq == 0 {
            if ty != "ledger.initialized" {
                return Err("record 0 is not ledger.initialized".into());
            }
            let named = VerifierKey::parse(record.event.data["ledger_key"].as_str().unwrap_or_default())
                .map_err(|e| format!("genesis ledger_key: {e}"))?;
            if named != self.trusted {
                return Err(format!(
                    "genesis names ledger key {}, not the trusted key {}",
                    named.keyid(),
                    self.trusted.keyid()
                ));
            }
            if named.keyid() != signer.keyid {
                return Err("genesis is not signed by the ledger key it names".into());
            }
            self.origin = Some(record.event.data["origin"].as_str().unwrap_or_default().to_owned());
            named
        } else {
            if self.origin.is_none() {
                return Err("no genesis (record 0) before this record".into());
            }
            if ty == "ledger.initialized" {
                return Err("a second ledger.initialized".into());
            }
            let roles = allowed_roles(ty).ok_or_else(|| format!("unknown type {ty}"))?;
            let entry = self.keys.live(&signer.keyid).map_err(|p| p.to_string())?;
            if !entry.roles.iter().any(|r| roles.contains(r)) {
                return Err(format!("key {} may not emit {ty}", signer.keyid));
            }
            if roles == [Role::Ledger] && self.keys.ledger_keyid() != Some(signer.keyid.as_str()) {
                return Err(format!("{ty} not signed by the ledger key"));
            }
            entry.verifier.clone()
        };
        if ty.starts_with("key.") || record.seq == 0 {
            self.keys.apply(record);
        }
        Ok(key)
    }
}

/// Checks of one record's content that need nothing else: the schema of its `data` and its
/// subject.
pub fn check_content(record: &Record) -> Result<(), String> {
    let e = &record.event;
    crate::schema::validate_recorded(&e.ty, &e.data).map_err(|err| err.to_string())?;
    if let Some(expected) = expected_subject(e)
        && e.subject.as_deref() != Some(expected.as_str())
    {
        return Err(format!("subject must be {expected}"));
    }
    Ok(())
}

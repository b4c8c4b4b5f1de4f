//! Each reason the authorizer gives, and the records it accepts: stored records
//! ([`authorize_record`]) and new envelopes ([`authorize_submission`]).

use assay_events::dsse::Signature;
use assay_events::keys::VerifierKey;
use assay_events::record::Record;
use assay_events::roles::Role;
use serde_json::json;

use super::*;
use crate::keys::{KeyProblem, KeyRegistry};
use crate::testkit::{Ledger, ev, genesis, key, key_registered, key_revoked, metric, run_queued};

const ORIGIN: &str = "assay.test/ledger";

fn vkey(name: &str) -> VerifierKey {
    key(name).verifier()
}

fn keyid(name: &str) -> String {
    vkey(name).keyid()
}

/// The registry folded from every record of `ledger`.
fn registry(ledger: &Ledger) -> KeyRegistry {
    let mut keys = KeyRegistry::new();
    ledger.records().iter().for_each(|r| keys.apply(r));
    keys
}

/// `record` judged as a stored record against the registry `ledger` folds to.
fn stored(ledger: &Ledger, record: &Record) -> Result<VerifierKey, AuthError> {
    authorize_record(&registry(ledger), GenesisTrust::Named, record)
}

/// `record` judged as a new envelope at its seq, every signature verifying.
fn submitted(ledger: &Ledger, record: &Record) -> Result<(), AuthError> {
    submitted_verifying(ledger, record, |_, _, _| true)
}

fn submitted_verifying(
    ledger: &Ledger,
    record: &Record,
    verifies: impl FnMut(&str, &str, &VerifierKey) -> bool,
) -> Result<(), AuthError> {
    let this = vkey("ledger");
    let signer = record.source_signature().map_or("", |s| s.keyid.as_str());
    let submission =
        Submission { seq: record.seq, event: &record.event, signer, signatures: &record.signatures };
    authorize_submission(
        &registry(ledger),
        LedgerIdentity { key: &this, origin: ORIGIN },
        submission,
        verifies,
    )
}

/// `record` with a second signature, by `name` (the bytes do not matter here).
fn cosigned(mut record: Record, name: &str) -> Record {
    record.signatures.push(Signature { keyid: keyid(name), sig: [7; 64] });
    record
}

fn unknown(name: &str) -> AuthError {
    AuthError::Key(KeyProblem::Unknown(keyid(name)))
}

// Stored records.

#[test]
fn a_stored_record_by_a_live_key_with_a_role_for_its_type_is_authorized() {
    let ledger = Ledger::new();
    assert_eq!(stored(&ledger, &ledger.build(metric("r1", "loss", 1, 0.5))), Ok(vkey("worker")));
    // A runner may emit what a worker may.
    let by_runner = ledger.build(metric("r1", "loss", 1, 0.5).signed_by("runner"));
    assert_eq!(stored(&ledger, &by_runner), Ok(vkey("runner")));
    // The ledger's own types, signed by the ledger key.
    let decided = ledger.build(
        ev(
            "dispatch.decided",
            json!({"run": "r1", "request": "0".repeat(64), "accepted": false, "reasons": ["paused"]}),
        )
        .unchecked(),
    );
    assert_eq!(stored(&ledger, &decided), Ok(vkey("ledger")));
}

#[test]
fn a_stored_record_needs_a_source_that_names_its_signing_key() {
    let ledger = Ledger::new();
    let mut record = ledger.build(metric("r1", "loss", 1, 0.5));
    record.event.source = "worker".into();
    let refused = stored(&ledger, &record);
    assert_eq!(refused, Err(AuthError::SourceNamesNoKey("worker".into())));
    assert_eq!(refused.unwrap_err().to_string(), "source \"worker\" names no key");

    let mut record = ledger.build(metric("r1", "loss", 1, 0.5));
    record.signatures = vec![Signature { keyid: keyid("runner"), sig: [0; 64] }];
    let refused = stored(&ledger, &record);
    assert_eq!(refused, Err(AuthError::NoSourceSignature("worker".into())));
    assert_eq!(refused.unwrap_err().to_string(), "no signature by the source's key worker");
}

#[test]
fn record_zero_is_genesis_signed_by_the_key_it_names() {
    let bare = Ledger::bare();
    assert_eq!(stored(&bare, &bare.build(genesis())), Ok(vkey("ledger")));
    assert_eq!(stored(&bare, &bare.build(run_queued("r1", "p", false))), Err(AuthError::NotGenesis));
    let self_named = bare.build(
        ev("ledger.initialized", json!({"origin": ORIGIN, "ledger_key": vkey("admin").to_text(), "admin_keys": [vkey("author").to_text()]}))
            .signed_by("admin"),
    );
    assert_eq!(stored(&bare, &self_named), Ok(vkey("admin")), "whichever key it names, if that key signed");
    let signed_by_another = bare.build(genesis().signed_by("admin"));
    assert_eq!(stored(&bare, &signed_by_another), Err(AuthError::GenesisNotSelfSigned));
    let bad_key =
        bare.build(ev("ledger.initialized", json!({"origin": ORIGIN, "ledger_key": "junk"})).unchecked());
    let refused = stored(&bare, &bad_key).unwrap_err();
    assert!(matches!(refused, AuthError::GenesisKey(_)), "{refused:?}");
    assert!(refused.to_string().starts_with("genesis ledger_key: "), "{refused}");
}

#[test]
fn a_trusted_ledger_key_is_the_only_one_genesis_may_name() {
    let bare = Ledger::bare();
    let record = bare.build(genesis());
    let keys = KeyRegistry::new();
    let ledger = vkey("ledger");
    assert_eq!(authorize_record(&keys, GenesisTrust::Trusted(&ledger), &record), Ok(vkey("ledger")));
    let other = vkey("admin");
    let refused = authorize_record(&keys, GenesisTrust::Trusted(&other), &record);
    assert_eq!(
        refused,
        Err(AuthError::GenesisNotTrusted { named: keyid("ledger"), trusted: keyid("admin") })
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!("genesis names ledger key {}, not the trusted key {}", keyid("ledger"), keyid("admin"))
    );
}

#[test]
fn past_record_zero_there_is_no_genesis_and_nothing_without_one() {
    let ledger = Ledger::new();
    assert_eq!(stored(&ledger, &ledger.build(genesis())), Err(AuthError::SecondGenesis));
    // A record past 0 judged without the genesis before it (a bundle that lacks record 0).
    let record = ledger.build(metric("r1", "loss", 1, 0.5));
    assert_eq!(
        authorize_record(&KeyRegistry::new(), GenesisTrust::Named, &record),
        Err(AuthError::NoGenesis)
    );
}

#[test]
fn a_stored_record_of_an_unknown_type_is_refused() {
    let ledger = Ledger::new();
    let record = ledger.build(ev("run.exploded", json!({"run": "r1"})).signed_by("admin").unchecked());
    let refused = stored(&ledger, &record);
    assert_eq!(refused, Err(AuthError::UnknownType("run.exploded".into())));
    assert_eq!(refused.unwrap_err().to_string(), "unknown type run.exploded");
}

#[test]
fn a_stored_record_by_an_unknown_or_revoked_key_is_refused() {
    let mut ledger = Ledger::new();
    let refused = stored(&ledger, &ledger.build(metric("r1", "loss", 1, 0.5).signed_by("stranger")));
    assert_eq!(refused, Err(unknown("stranger")));
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!("unknown key {}: it was never registered", keyid("stranger"))
    );

    let revoked_at = ledger.push(key_revoked("worker")).seq;
    let refused = stored(&ledger, &ledger.build(metric("r1", "loss", 1, 0.5)));
    assert_eq!(refused, Err(AuthError::Key(KeyProblem::Revoked { keyid: keyid("worker"), seq: revoked_at })));
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!("key {} was revoked at seq {revoked_at}", keyid("worker"))
    );
}

#[test]
fn a_stored_record_needs_a_role_for_its_type_as_of_its_seq() {
    let mut ledger = Ledger::new();
    let refused = stored(&ledger, &ledger.build(run_queued("r1", "p", false).signed_by("worker")));
    assert_eq!(
        refused,
        Err(AuthError::RoleNotAllowed {
            keyid: keyid("worker"),
            ty: "run.queued".into(),
            needed: &[Role::Dispatcher]
        })
    );
    assert_eq!(refused.unwrap_err().to_string(), format!("key {} may not emit run.queued", keyid("worker")));
    // Re-registration replaces the roles from its seq on.
    ledger.push(key_registered("worker", &["dispatcher"]));
    assert_eq!(
        stored(&ledger, &ledger.build(run_queued("r1", "p", false).signed_by("worker"))),
        Ok(vkey("worker"))
    );
    let refused = stored(&ledger, &ledger.build(metric("r1", "loss", 1, 0.5)));
    assert!(matches!(refused, Err(AuthError::RoleNotAllowed { .. })), "{refused:?}");
    // Only the ledger key holds the ledger role.
    let decided = ledger.build(
        ev(
            "dispatch.decided",
            json!({"run": "r1", "request": "0".repeat(64), "accepted": true, "reasons": []}),
        )
        .signed_by("admin")
        .unchecked(),
    );
    assert!(matches!(stored(&ledger, &decided), Err(AuthError::RoleNotAllowed { .. })));
}

#[test]
fn the_record_authorizer_folds_what_it_authorizes_and_keeps_earlier_records_valid() {
    let mut ledger = Ledger::new();
    let before = ledger.push(metric("r1", "loss", 1, 0.5));
    ledger.push(key_revoked("worker"));
    let after = ledger.push(metric("r1", "loss", 2, 0.4));
    let mut auth = RecordAuthorizer::new(Some(vkey("ledger")));
    let results: Vec<_> = ledger.records().iter().map(|r| auth.authorize(r)).collect();
    assert!(results[..results.len() - 1].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(results[before.seq as usize], Ok(vkey("worker")), "signed before the revocation");
    assert!(matches!(results[after.seq as usize], Err(AuthError::Key(KeyProblem::Revoked { .. }))));
    assert_eq!(auth.keys().origin(), Some(ORIGIN));
    assert_eq!(auth.keys().ledger_keyid(), Some(keyid("ledger").as_str()));
    // A refused genesis is not folded: nothing after it is authorized.
    let mut wrong = RecordAuthorizer::new(Some(vkey("admin")));
    assert!(matches!(wrong.authorize(&ledger.records()[0]), Err(AuthError::GenesisNotTrusted { .. })));
    assert_eq!(wrong.authorize(&ledger.records()[1]), Err(AuthError::NoGenesis));
}

// New envelopes.

#[test]
fn a_new_envelope_by_a_live_key_with_a_role_for_its_type_is_authorized() {
    let ledger = Ledger::new();
    assert_eq!(submitted(&ledger, &ledger.build(metric("r1", "loss", 1, 0.5))), Ok(()));
    assert_eq!(submitted(&ledger, &cosigned(ledger.build(metric("r1", "loss", 1, 0.5)), "author")), Ok(()));
    assert_eq!(submitted(&ledger, &ledger.build(key_registered("stranger", &["worker"]))), Ok(()));
    // Re-registering a live key changes its roles.
    assert_eq!(submitted(&ledger, &ledger.build(key_registered("worker", &["runner"]))), Ok(()));
}

#[test]
fn a_new_genesis_names_this_ledger_its_origin_and_is_signed_by_its_key_alone() {
    let bare = Ledger::bare();
    assert_eq!(submitted(&bare, &bare.build(genesis())), Ok(()));
    let ledger = Ledger::new();
    assert_eq!(submitted(&ledger, &ledger.build(genesis())), Err(AuthError::SecondGenesis));
    let other_key = bare.build(
        ev("ledger.initialized", json!({"origin": ORIGIN, "ledger_key": vkey("admin").to_text(), "admin_keys": [vkey("author").to_text()]}))
            .signed_by("admin"),
    );
    assert_eq!(submitted(&bare, &other_key), Err(AuthError::GenesisNotThisLedger));
    assert_eq!(
        submitted(&bare, &bare.build(genesis().signed_by("admin"))),
        Err(AuthError::GenesisNotThisLedger)
    );
    let elsewhere = bare.build(
        ev("ledger.initialized", json!({"origin": "elsewhere", "ledger_key": vkey("ledger").to_text(), "admin_keys": [vkey("author").to_text()]}))
            .signed_by("ledger"),
    );
    let refused = submitted(&bare, &elsewhere);
    assert_eq!(refused, Err(AuthError::GenesisOrigin(ORIGIN.into())));
    assert_eq!(refused.unwrap_err().to_string(), format!("genesis must name the origin {ORIGIN:?}"));
    assert_eq!(submitted(&bare, &cosigned(bare.build(genesis()), "admin")), Err(AuthError::GenesisCosigned));
    let refused = submitted_verifying(&bare, &bare.build(genesis()), |_, _, _| false);
    assert_eq!(refused, Err(AuthError::BadSignature(keyid("ledger"))));
    // Nothing comes before genesis.
    assert_eq!(submitted(&bare, &bare.build(run_queued("r1", "p", false))), Err(AuthError::NotGenesis));
}

#[test]
fn a_producer_may_not_send_an_unknown_type_or_one_only_the_ledger_writes() {
    let ledger = Ledger::new();
    let record = ledger.build(ev("run.exploded", json!({"run": "r1"})).signed_by("admin").unchecked());
    assert_eq!(submitted(&ledger, &record), Err(AuthError::UnknownType("run.exploded".into())));
    for by in ["ledger", "admin"] {
        let decided = ledger.build(
            ev("artifact.admitted", json!({"slug": "a", "version": 1, "request": "0".repeat(64)}))
                .signed_by(by)
                .unchecked(),
        );
        let refused = submitted(&ledger, &decided);
        assert_eq!(refused, Err(AuthError::LedgerOnly("artifact.admitted".into())), "signed by {by}");
        assert_eq!(
            refused.unwrap_err().to_string(),
            "artifact.admitted is written only by the ledger itself"
        );
    }
}

#[test]
fn a_new_envelope_needs_a_live_key_whose_signature_verifies_and_a_role_for_its_type() {
    let mut ledger = Ledger::new();
    let by_stranger = ledger.build(metric("r1", "loss", 1, 0.5).signed_by("stranger"));
    // The key is judged before its signature: an unknown key is not reported as a bad signature.
    assert_eq!(submitted_verifying(&ledger, &by_stranger, |_, _, _| false), Err(unknown("stranger")));
    let record = ledger.build(metric("r1", "loss", 1, 0.5));
    let refused = submitted_verifying(&ledger, &record, |_, _, _| false);
    assert_eq!(refused, Err(AuthError::BadSignature(keyid("worker"))));
    assert_eq!(refused.unwrap_err().to_string(), format!("signature by {} does not verify", keyid("worker")));
    // The signature is checked under the registered key, named by its keyid and text.
    let asked = std::cell::RefCell::new(Vec::new());
    submitted_verifying(&ledger, &record, |id, text, key| {
        asked.borrow_mut().push((id.to_owned(), text.to_owned(), key.clone()));
        true
    })
    .expect("authorized");
    assert_eq!(asked.into_inner(), vec![(keyid("worker"), vkey("worker").to_text(), vkey("worker"))]);
    // Its signature is checked before its role.
    let wrong_role = ledger.build(run_queued("r1", "p", false).signed_by("worker"));
    assert_eq!(
        submitted_verifying(&ledger, &wrong_role, |_, _, _| false),
        Err(AuthError::BadSignature(keyid("worker")))
    );
    assert_eq!(
        submitted(&ledger, &wrong_role),
        Err(AuthError::RoleNotAllowed {
            keyid: keyid("worker"),
            ty: "run.queued".into(),
            needed: &[Role::Dispatcher]
        })
    );
    let revoked_at = ledger.push(key_revoked("worker")).seq;
    assert_eq!(
        submitted(&ledger, &ledger.build(metric("r1", "loss", 1, 0.5))),
        Err(AuthError::Key(KeyProblem::Revoked { keyid: keyid("worker"), seq: revoked_at }))
    );
}

#[test]
fn every_co_signer_of_a_new_envelope_is_live_and_verifies() {
    let mut ledger = Ledger::new();
    let record = cosigned(ledger.build(metric("r1", "loss", 1, 0.5)), "stranger");
    assert_eq!(submitted(&ledger, &record), Err(unknown("stranger")));
    let record = cosigned(ledger.build(metric("r1", "loss", 1, 0.5)), "author");
    let author = keyid("author");
    assert_eq!(
        submitted_verifying(&ledger, &record, |id, _, _| id != author),
        Err(AuthError::BadSignature(keyid("author")))
    );
    let revoked_at = ledger.push(key_revoked("author")).seq;
    assert_eq!(
        submitted(&ledger, &cosigned(ledger.build(metric("r1", "loss", 1, 0.5)), "author")),
        Err(AuthError::Key(KeyProblem::Revoked { keyid: keyid("author"), seq: revoked_at }))
    );
}

#[test]
fn a_key_change_makes_sense_for_the_key_it_names() {
    let mut ledger = Ledger::new();
    let junk = ledger.build(ev("key.registered", json!({"vkey": "junk", "roles": ["worker"]})).unchecked());
    let refused = submitted(&ledger, &junk).unwrap_err();
    assert!(matches!(refused, AuthError::KeyChangeVkey(_)), "{refused:?}");
    assert!(refused.to_string().starts_with("data.vkey: "), "{refused}");
    for change in [key_registered("ledger", &["admin"]), key_revoked("ledger")] {
        let refused = submitted(&ledger, &ledger.build(change));
        assert_eq!(refused, Err(AuthError::LedgerKeyChange(keyid("ledger"))));
        assert_eq!(
            refused.unwrap_err().to_string(),
            format!("{} is the ledger key; its roles cannot change", keyid("ledger"))
        );
    }
    let refused = submitted(&ledger, &ledger.build(key_revoked("stranger")));
    assert_eq!(refused, Err(AuthError::NotRegistered(keyid("stranger"))));
    assert_eq!(refused.unwrap_err().to_string(), format!("{} is not registered", keyid("stranger")));
    let revoked_at = ledger.push(key_revoked("worker")).seq;
    let refused = submitted(&ledger, &ledger.build(key_registered("worker", &["worker"])));
    assert_eq!(refused, Err(AuthError::RevocationFinal { keyid: keyid("worker"), seq: revoked_at }));
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!("{} was revoked at seq {revoked_at}; revocation is final", keyid("worker"))
    );
    let refused = submitted(&ledger, &ledger.build(key_revoked("worker")));
    assert_eq!(refused, Err(AuthError::AlreadyRevoked(keyid("worker"))));
    assert_eq!(refused.unwrap_err().to_string(), format!("{} is already revoked", keyid("worker")));
    // Only an admin changes keys.
    let by_dispatcher = ledger.build(key_registered("stranger", &["worker"]).signed_by("dispatcher"));
    assert!(matches!(submitted(&ledger, &by_dispatcher), Err(AuthError::RoleNotAllowed { .. })));
}

#[test]
fn the_signers_check_alone_is_what_ingest_checks_before_the_key_change_rules() {
    let ledger = Ledger::new();
    let keys = registry(&ledger);
    let revoke_stranger = ledger.build(key_revoked("stranger"));
    let signer = revoke_stranger.source_signature().expect("signed").keyid.clone();
    let entry = authorize_signers(&keys, "key.revoked", &signer, &revoke_stranger.signatures, |_, _, _| true);
    assert_eq!(entry.map(|e| e.roles.clone()), Ok(vec![Role::Admin]));
    assert_eq!(
        authorize_signers(&keys, "dispatch.decided", &signer, &[], |_, _, _| true).map(|_| ()),
        Err(AuthError::LedgerOnly("dispatch.decided".into()))
    );
}

//! Tampering with the SQLite file directly, as an attacker with the disk would: `assay verify`
//! exits 1 and names the first bad seq, or the inconsistency with a checkpoint saved earlier.

mod support;

use assay_events::b64::encode_std;
use assay_events::checkpoint::Checkpoint;
use assay_events::merkle::verify_consistency;
use serde_json::Value;
use support::sql::{Db, rewind};
use support::{Lab, Verified, b64, b64_hash};

/// Records in the ledger [`setup`] builds: genesis, one registration, 3 × 200 metrics.
const RECORDS: u64 = 602;
/// The record the tests tamper with: inside the second append.
const TARGET: u64 = 250;

/// A ledger of [`RECORDS`] records appended in three invocations (checkpoints at 202, 402, 602).
fn setup() -> Lab {
    let lab = Lab::new();
    let w = lab.worker("w1");
    for i in 0..3 {
        lab.append_metrics(&w, "r-t", i * 200, 200);
    }
    assert_eq!(lab.records(), RECORDS);
    lab
}

/// Asserts that `verify` fails at `seq` (text and JSON forms) with a reason containing `why`.
#[track_caller]
fn assert_bad_at(lab: &Lab, seq: u64, why: &str) -> Verified {
    let text = lab.verify_text(None).status(1);
    let line = text.stdout.trim();
    assert!(line.starts_with(&format!("first bad seq {seq}: ")), "verify said: {line}");
    assert!(line.contains(why), "verify said: {line}, expected {why:?}");
    let v = lab.verify(&[]);
    assert_eq!((v.ok, v.code, v.first_bad_seq), (false, 1, Some(seq)), "{v:?}");
    assert!(v.reason.as_deref().is_some_and(|r| r.contains(why) && line.ends_with(r)), "{v:?}");
    v
}

#[test]
fn one_payload_byte_changed() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    let mut payload = db.blob(TARGET, "payload");
    // Still valid JSON, still schema-valid: the `step` number gains one in its first digit.
    let at = find(&payload, b"\"step\":") + 7;
    assert!(payload[at].is_ascii_digit() && payload[at] != b'9');
    payload[at] += 1;
    db.set_blob(TARGET, "payload", &payload);
    db.close();
    assert_bad_at(&lab, TARGET, "payload does not match its digest");
}

#[test]
fn payload_changed_with_digest_and_hashes_fixed_up() {
    // The attacker also rewrites the digest column and the record hash: the signature is
    // what cannot be redone without the producer's key.
    let lab = setup();
    let mut db = Db::open(&lab.db);
    let mut payload = db.blob(TARGET, "payload");
    let at = find(&payload, b"\"step\":") + 7;
    payload[at] = if payload[at] == b'9' { b'8' } else { payload[at] + 1 };
    db.set_blob(TARGET, "payload", &payload);
    db.set_blob(TARGET, "digest", &assay_events::cloudevent::event_digest(&payload).0);
    db.rehash(TARGET);
    db.close();
    assert_bad_at(&lab, TARGET, "signature does not verify");
}

#[test]
fn one_signature_changed() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    let sigs = flip_signature(&db.blob(TARGET, "signatures"));
    db.set_blob(TARGET, "signatures", &sigs);
    db.close();
    // The stored record hash commits to the signatures.
    assert_bad_at(&lab, TARGET, "record hash does not match");
}

#[test]
fn one_signature_changed_and_record_hash_fixed_up() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    let sigs = flip_signature(&db.blob(TARGET, "signatures"));
    db.set_blob(TARGET, "signatures", &sigs);
    db.rehash(TARGET);
    db.close();
    assert_bad_at(&lab, TARGET, "signature does not verify");
}

#[test]
fn one_record_deleted() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    assert_eq!(db.exec(&format!("DELETE FROM records WHERE seq = {TARGET}")), 1);
    db.close();
    assert_bad_at(&lab, TARGET, &format!("record {TARGET} is missing"));
}

#[test]
fn last_record_deleted() {
    let lab = setup();
    let last = RECORDS - 1;
    let mut db = Db::open(&lab.db);
    assert_eq!(db.exec(&format!("DELETE FROM records WHERE seq = {last}")), 1);
    db.close();
    // A checkpoint was signed over it.
    assert_bad_at(&lab, last, &format!("record {last} is missing"));
}

#[test]
fn two_records_payloads_swapped() {
    let lab = setup();
    let (a, b) = (TARGET, TARGET + 137);
    let mut db = Db::open(&lab.db);
    let (pa, pb) = (db.blob(a, "payload"), db.blob(b, "payload"));
    db.set_blob(a, "payload", &pb);
    db.set_blob(b, "payload", &pa);
    db.close();
    assert_bad_at(&lab, a, "payload does not match its digest");
}

#[test]
fn two_records_events_swapped_with_their_columns() {
    // A consistent swap of everything the event determines (payload, signatures, digest and
    // the indexed columns): each row is self-consistent except for the hashes the sequencer made.
    let lab = setup();
    let (a, b) = (TARGET, TARGET + 137);
    let mut db = Db::open(&lab.db);
    let cols = "payload, signatures, digest, source, event_id, type, subject, time";
    db.exec(&format!("CREATE TEMP TABLE swap AS SELECT seq, {cols} FROM records WHERE seq IN ({a}, {b})"));
    // Park the unique columns first so that the swap never holds two equal values.
    db.exec(&format!(
        "UPDATE records SET digest = record_hash, event_id = 'parked-' || seq WHERE seq IN ({a}, {b})"
    ));
    let changed = db.exec(&format!(
        "UPDATE records SET ({cols}) = (SELECT {cols} FROM swap WHERE swap.seq = \
         CASE records.seq WHEN {a} THEN {b} ELSE {a} END) WHERE seq IN ({a}, {b})"
    ));
    assert_eq!(changed, 2);
    db.close();
    assert_bad_at(&lab, a, "record hash does not match");
}

#[test]
fn chain_rewritten_around_a_changed_record() {
    // received_at is not signed by the producer; an attacker who moves it and re-links the
    // whole chain after it is caught by the tree against the next signed checkpoint.
    let lab = setup();
    let mut db = Db::open(&lab.db);
    let received: i64 = db.int(&format!("SELECT received_at FROM records WHERE seq = {TARGET}"));
    db.exec(&format!("UPDATE records SET received_at = {} WHERE seq = {TARGET}", received + 1));
    db.rechain_from(TARGET);
    db.close();
    // The first checkpoint over TARGET is the one at the end of the second append (size 402).
    assert_bad_at(&lab, 401, "does not match the checkpoint signed at that size");
}

#[test]
fn forged_tail_is_caught_only_by_a_saved_checkpoint() {
    let lab = setup();
    let w = lab.key("w1");
    // A witness saved these checkpoints: one before the part that will be rewritten, one after.
    let (early_file, early) = lab.save_checkpoint("early.txt");
    assert_eq!(early.size, RECORDS);
    lab.append_metrics(&w, "r-t", 600, 300);
    let (saved_file, saved) = lab.save_checkpoint("saved.txt");
    let n = saved.size;
    assert_eq!(n, RECORDS + 300);

    // The attacker holds the database and the admin key: rewinds to K and writes another history.
    let k = RECORDS + 120;
    rewind(&lab.db, k);
    assert_eq!(lab.records(), k, "the rewound ledger is internally consistent");
    let mallory = lab.new_key("mallory");
    lab.register(&mallory, &["worker"]);
    let forged = lab.append_metrics(&mallory, "r-t", 720, 400);
    assert_eq!(forged[0].0, k + 1, "forged records continue at K");
    let forged_size = k + 1 + 400;
    assert!(forged_size > n);

    // On its own the forgery verifies: every signature, role, link, tree and checkpoint holds.
    let v = lab.verify(&[]);
    assert!(v.ok, "{v:?}");
    assert_eq!(v.records, forged_size);
    let head = Checkpoint::open(&lab.checkpoint(), &lab.ledger_vkey()).expect("signed by the ledger key");
    assert_eq!(head.size, forged_size);

    // A checkpoint saved before the rewritten part still agrees: the prefix is untouched.
    assert!(lab.verify(&[&early_file]).ok);
    assert!(lab.verify_text(Some(&early_file)).ok().stdout.starts_with("ok: "));

    // The checkpoint saved at N does not.
    let text = lab.verify_text(Some(&saved_file)).status(1);
    assert!(text.stdout.contains("checkpoint inconsistency"), "verify said: {}", text.stdout);
    assert!(text.stdout.contains(&format!("first {n} records")), "verify said: {}", text.stdout);
    let v = lab.verify(&[&saved_file]);
    assert_eq!((v.ok, v.code, v.first_bad_seq, v.records), (false, 1, None, forged_size), "{v:?}");
    assert!(v.reason.as_deref().is_some_and(|r| r.starts_with("checkpoint inconsistency")), "{v:?}");

    // And a witness holding the saved note rejects any consistency proof the forger serves.
    let out = lab
        .db(&["proof", "consistency"], &[n.to_string().as_str(), &forged_size.to_string(), "--json"])
        .ok()
        .json();
    let proof: Vec<_> =
        out["proof"].as_array().unwrap().iter().map(|h| b64_hash(h.as_str().unwrap())).collect();
    assert_ne!(b64_hash(out["old_root"].as_str().unwrap()), saved.root);
    assert!(verify_consistency(n, forged_size, &saved.root, &head.root, &proof).is_err());
}

#[test]
fn truncated_tail_is_caught_only_by_a_saved_checkpoint() {
    let lab = setup();
    let (saved_file, saved) = lab.save_checkpoint("saved.txt");
    let k = TARGET;
    rewind(&lab.db, k);
    let v = lab.verify(&[]);
    assert!(v.ok && v.records == k, "a truncated ledger is internally consistent: {v:?}");

    let text = lab.verify_text(Some(&saved_file)).status(1);
    let line = text.stdout.trim();
    assert!(line.starts_with(&format!("first bad seq {k}: checkpoint inconsistency")), "verify said: {line}");
    assert!(line.contains(&format!("covers {} records", saved.size)), "verify said: {line}");
    let v = lab.verify(&[&saved_file]);
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(k)), "{v:?}");
}

#[test]
fn saved_checkpoint_must_be_signed_by_the_ledger() {
    // A saved note with a changed root does not open: verify refuses it rather than passing.
    let lab = setup();
    let (_, saved) = lab.save_checkpoint("saved.txt");
    let note = lab.checkpoint();
    let line = encode_std(&saved.root.0);
    let mut root = saved.root;
    root.0[0] ^= 1;
    let forged = lab.write("forged.txt", note.replace(&line, &encode_std(&root.0)));
    let v = lab.verify(&[&forged]);
    assert!(!v.ok && v.code == 1, "{v:?}");
    assert!(v.reason.as_deref().is_some_and(|r| r.starts_with("saved checkpoint")), "{v:?}");
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("present")
}

/// The stored signatures JSON with one bit of the first signature flipped.
fn flip_signature(json: &[u8]) -> Vec<u8> {
    let mut sigs: Value = serde_json::from_slice(json).expect("signatures JSON");
    let mut raw = b64(sigs[0]["sig"].as_str().expect("sig"));
    raw[10] ^= 0x01;
    sigs[0]["sig"] = encode_std(&raw).into();
    let out = serde_json::to_vec(&sigs).expect("JSON");
    assert_ne!(out, json);
    out
}

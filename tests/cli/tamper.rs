//! Tampering with the SQLite file directly, as an attacker with the disk would: `assay verify`
//! exits 1 and names the first bad seq, or the inconsistency with a checkpoint saved earlier.

use crate::support;

use assay_events::b64::encode_std;
use assay_events::checkpoint::Checkpoint;
use assay_events::merkle::verify_consistency;
use serde_json::Value;
use support::sql::{Bind, Db, rewind};
use support::{Lab, Verified, b64, b64_hash};

/// Records in the ledger [`setup`] builds: genesis, one registration, 3 × 200 metrics.
const RECORDS: u64 = 602;
/// The record the tests tamper with: inside the second append.
const TARGET: u64 = 250;

/// A ledger of [`RECORDS`] records appended in three invocations (checkpoints at 202, 402, 602),
/// its own copy for each test. The ledger is built once per test process, in SQLite, by the same
/// `init`, key registration and three appends as before (each of the 22 tests built it; a test
/// that builds it and runs two `verify` took 0.7 CPU-seconds), and each test gets a copy with its
/// own keys folder: the file as it lies, or on PostgreSQL a fresh schema holding the tables of
/// one that `assay copy` (verbatim and verified) made once per process
/// (`TestDb::from_sqlite_shared`). Every test still tampers with its own ledger and runs the same `verify`
/// and `append` checks on it; appending on PostgreSQL is exercised by the round-trip, crash and
/// whole-input tests.
fn setup() -> Lab {
    let base = support::built_once("tamper-base", |folder| {
        let lab = Lab::new_sqlite();
        let w = lab.worker("w1");
        for i in 0..3 {
            lab.append_metrics(&w, "r-t", i * 200, 200);
        }
        assert_eq!(lab.records(), RECORDS);
        lab.save_to(folder);
    });
    let lab = Lab::copy_of_saved(&base);
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

    // The attacker holds the database and the admin and ledger keys: rewinds to K, signs a
    // checkpoint there, and writes another history.
    let k = RECORDS + 120;
    rewind(&lab.db, k, Some(&lab.ledger_key()));
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
    // With the ledger key, the attacker signs a checkpoint at K.
    rewind(&lab.db, k, Some(&lab.ledger_key()));
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
fn truncated_tail_without_the_ledger_key_is_not_covered() {
    // Without the ledger key nobody can sign a checkpoint at K: the records past the last
    // checkpoint at most K are covered by none, and verify says so with no saved checkpoint.
    let lab = setup();
    rewind(&lab.db, TARGET, None);
    let v = assert_bad_at(&lab, 202, "no signed checkpoint covers record 202 or any after it");
    assert!(
        v.reason.as_deref().is_some_and(|r| r.contains("the last signed checkpoint is at size 202")),
        "{v:?}"
    );
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

// ---------------------------------------------------------------------------------------------
// The standing tamper matrix: every table and every head field, each changed, deleted or
// added to, on one ledger copied per case. Each case must make `verify` exit 1 and name the
// first bad seq (or the head field).

/// Where a case must make verify point.
#[derive(Debug, Clone, Copy)]
enum At {
    Seq(u64),
    /// A head field, with the seq it points at (if any).
    Head(&'static str, Option<u64>),
}

/// One tampering: a name, what it does to the database, where verify must point, and a part
/// of its reason.
struct Case {
    name: &'static str,
    tamper: fn(&mut Db, &Lab),
    at: At,
    why: &'static str,
}

/// A metric envelope for run r-t signed by w1 (a registered worker): what an attacker holding
/// a producer key, but not the ledger key, can write.
fn signed_by_w1(lab: &Lab, step: u64) -> String {
    let lines = lab.sign_only(&lab.key("w1"), &support::metric_lines("r-t", step, 1));
    lines.into_iter().next().expect("one envelope")
}

/// The first byte of a BLOB column of `table` (one row, chosen by `filter`) flipped.
fn flip_byte(db: &mut Db, table: &str, column: &str, filter: &str) {
    let mut value = db.bytes(&format!("SELECT {column} FROM {table} WHERE {filter}"));
    value[0] ^= 1;
    let n = db.run(&format!("UPDATE {table} SET {column} = ? WHERE {filter}"), &[Bind::Blob(&value)]);
    assert_eq!(n, 1, "{table}.{column} where {filter}");
}

const T: u64 = TARGET;

fn cases() -> Vec<Case> {
    vec![
        // records: each column
        Case {
            name: "records.seq renumbered",
            at: At::Seq(T),
            why: "record 250 is missing",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET seq = 100000 WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.digest changed",
            at: At::Seq(T),
            why: "payload does not match its digest",
            tamper: |db, _| flip_byte(db, "records", "digest", &format!("seq = {T}")),
        },
        Case {
            name: "records.source changed",
            at: At::Seq(T),
            why: "indexed columns disagree",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET source = 'assay:key/mallory' WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.event_id changed",
            at: At::Seq(T),
            why: "indexed columns disagree",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET event_id = 'other' WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.type changed",
            at: At::Seq(T),
            why: "indexed columns disagree",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET type = 'claim.made' WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.subject changed",
            at: At::Seq(T),
            why: "indexed columns disagree",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET subject = 'run/other' WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.subject nulled",
            at: At::Seq(T),
            why: "indexed columns disagree",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET subject = NULL WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.time changed",
            at: At::Seq(T),
            why: "indexed columns disagree",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET time = '2001-01-01T00:00:00Z' WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.received_at changed",
            at: At::Seq(T),
            why: "record hash does not match",
            tamper: |db, _| {
                db.exec(&format!("UPDATE records SET received_at = received_at + 1 WHERE seq = {T}"));
            },
        },
        Case {
            name: "records.payload changed",
            at: At::Seq(T),
            why: "payload does not match its digest",
            tamper: |db, _| flip_byte(db, "records", "payload", &format!("seq = {T}")),
        },
        Case {
            name: "records.signatures changed",
            at: At::Seq(T),
            why: "record hash does not match",
            tamper: |db, _| {
                let s = flip_signature(&db.blob(T, "signatures"));
                db.set_blob(T, "signatures", &s);
            },
        },
        Case {
            name: "records.prev_hash changed",
            at: At::Seq(T),
            why: "record hash does not match",
            tamper: |db, _| flip_byte(db, "records", "prev_hash", &format!("seq = {T}")),
        },
        Case {
            name: "records.record_hash changed",
            at: At::Seq(T),
            why: "record hash does not match",
            tamper: |db, _| flip_byte(db, "records", "record_hash", &format!("seq = {T}")),
        },
        Case {
            name: "records: a row deleted",
            at: At::Seq(T),
            why: "record 250 is missing",
            tamper: |db, _| {
                db.exec(&format!("DELETE FROM records WHERE seq = {T}"));
            },
        },
        Case {
            name: "records: the last row deleted",
            at: At::Seq(RECORDS - 1),
            why: "record 601 is missing",
            tamper: |db, _| {
                db.exec(&format!("DELETE FROM records WHERE seq = {}", RECORDS - 1));
            },
        },
        Case {
            name: "records: a signed tail record, chain, tree and head recomputed",
            at: At::Seq(RECORDS),
            why: "no signed checkpoint covers record 602",
            tamper: |db, lab| {
                db.append_forged(&signed_by_w1(lab, 9000), true);
            },
        },
        Case {
            name: "records: a signed tail record beyond the head",
            at: At::Seq(RECORDS),
            why: "record 602 is stored beyond the head (602 records) and no signed checkpoint covers it",
            tamper: |db, lab| {
                db.append_forged(&signed_by_w1(lab, 9000), false);
            },
        },
        Case {
            name: "records: a signed tail record with a checkpoint row copied to its size",
            at: At::Seq(RECORDS),
            why: "does not match the checkpoint signed at that size",
            tamper: |db, lab| {
                db.append_forged(&signed_by_w1(lab, 9000), true);
                let note = db.note(RECORDS);
                let root = db.head_frontier().root();
                db.insert_checkpoint(RECORDS + 1, &root, &note);
                db.exec(&format!("UPDATE head SET checkpoint_size = {}", RECORDS + 1));
            },
        },
        // merkle_nodes
        Case {
            name: "merkle_nodes.hash changed",
            at: At::Seq(T),
            why: "stored tree node (level 0, index 250)",
            tamper: |db, _| flip_byte(db, "merkle_nodes", "hash", &format!("level = 0 AND idx = {T}")),
        },
        Case {
            name: "merkle_nodes.idx moved",
            at: At::Seq(T),
            why: "stored tree node (level 0, index 250)",
            tamper: |db, _| {
                db.exec(&format!("UPDATE merkle_nodes SET idx = 100000 WHERE level = 0 AND idx = {T}"));
            },
        },
        Case {
            name: "merkle_nodes.level changed",
            at: At::Seq(255),
            why: "stored tree node (level 3, index 31)",
            tamper: |db, _| {
                db.exec("UPDATE merkle_nodes SET level = 40 WHERE level = 3 AND idx = 31");
            },
        },
        Case {
            name: "merkle_nodes: a row deleted",
            at: At::Seq(255),
            why: "stored tree node (level 3, index 31)",
            tamper: |db, _| {
                db.exec("DELETE FROM merkle_nodes WHERE level = 3 AND idx = 31");
            },
        },
        Case {
            name: "merkle_nodes: a spare leaf beyond the head",
            at: At::Seq(RECORDS),
            why: "tree node (level 0, index 602) is stored beyond the log's 602 records",
            tamper: |db, _| db.insert_node(0, RECORDS, &assay_events::Hash32([7; 32])),
        },
        Case {
            name: "merkle_nodes: a spare subtree over the head",
            at: At::Seq(RECORDS),
            why: "tree node (level 10, index 0) is stored beyond the log's 602 records",
            tamper: |db, _| db.insert_node(10, 0, &assay_events::Hash32([7; 32])),
        },
        // checkpoints
        Case {
            name: "checkpoints.note changed",
            at: At::Seq(401),
            why: "checkpoint at size 402:",
            tamper: |db, _| {
                let note = db.note(402);
                let sig_line = note.lines().last().expect("a signature line").to_owned();
                let mut sig = b64(sig_line.rsplit(' ').next().expect("base64"));
                sig[8] ^= 1;
                let forged = note.replace(
                    &sig_line,
                    &format!("{} {}", sig_line.rsplit_once(' ').expect("").0, encode_std(&sig)),
                );
                db.run("UPDATE checkpoints SET note = ? WHERE size = 402", &[Bind::Text(&forged)]);
            },
        },
        Case {
            name: "checkpoints.root changed",
            at: At::Seq(401),
            why: "does not match the checkpoint signed at that size",
            tamper: |db, _| flip_byte(db, "checkpoints", "root", "size = 402"),
        },
        Case {
            name: "checkpoints.size changed",
            at: At::Seq(402),
            why: "does not match the checkpoint signed at that size",
            tamper: |db, _| {
                db.exec("UPDATE checkpoints SET size = 403 WHERE size = 402");
            },
        },
        Case {
            name: "checkpoints: the last row deleted",
            at: At::Seq(402),
            why: "no signed checkpoint covers record 402",
            tamper: |db, _| {
                db.exec(&format!("DELETE FROM checkpoints WHERE size = {RECORDS}"));
            },
        },
        Case {
            name: "checkpoints: every row past 202 deleted",
            at: At::Seq(202),
            why: "no signed checkpoint covers record 202",
            tamper: |db, _| {
                db.exec("DELETE FROM checkpoints WHERE size > 202");
            },
        },
        Case {
            name: "checkpoints: every row deleted",
            at: At::Seq(0),
            why: "(no checkpoint is stored)",
            tamper: |db, _| {
                db.exec("DELETE FROM checkpoints");
            },
        },
        Case {
            name: "checkpoints: a row added beyond the head",
            at: At::Seq(RECORDS),
            why: "record 602 is missing: a checkpoint was signed at size 700",
            tamper: |db, _| {
                let note = db.note(RECORDS);
                db.insert_checkpoint(700, &assay_events::Hash32([7; 32]), &note);
            },
        },
        Case {
            name: "checkpoints: a row added inside the log",
            at: At::Seq(299),
            why: "does not match the checkpoint signed at that size",
            tamper: |db, _| {
                let note = db.note(402);
                db.insert_checkpoint(300, &assay_events::Hash32([7; 32]), &note);
            },
        },
        // head: every field, and the row
        Case {
            name: "head.size lowered",
            at: At::Head("size", Some(RECORDS - 1)),
            why: "head.size says 601 records, but record 601 is stored and a checkpoint is signed at size 602",
            tamper: |db, _| {
                db.exec(&format!("UPDATE head SET size = {}", RECORDS - 1));
            },
        },
        Case {
            name: "head.size raised",
            at: At::Head("size", Some(RECORDS)),
            why: "head.size says 603 records, the log holds 602",
            tamper: |db, _| {
                db.exec(&format!("UPDATE head SET size = {}", RECORDS + 1));
            },
        },
        Case {
            name: "head.record_hash changed",
            at: At::Head("record_hash", Some(RECORDS - 1)),
            why: "head.record_hash does not match the last record",
            tamper: |db, _| flip_byte(db, "head", "record_hash", "id = 0"),
        },
        Case {
            name: "head.frontier changed",
            at: At::Head("frontier", None),
            why: "head.frontier does not match the tree",
            tamper: |db, _| flip_byte(db, "head", "frontier", "id = 0"),
        },
        Case {
            name: "head.frontier emptied",
            at: At::Head("frontier", None),
            why: "head.frontier does not match the tree",
            tamper: |db, _| {
                db.run("UPDATE head SET frontier = ?", &[Bind::Blob(&[])]);
            },
        },
        Case {
            name: "head.checkpoint_size changed",
            at: At::Head("checkpoint_size", None),
            why: "head.checkpoint_size is 402, but the last signed checkpoint is at size 602",
            tamper: |db, _| {
                db.exec("UPDATE head SET checkpoint_size = 402");
            },
        },
        Case {
            name: "head: the row deleted",
            at: At::Seq(0),
            why: "records exist but the head is missing",
            tamper: |db, _| {
                db.exec("DELETE FROM head");
            },
        },
    ]
}

#[test]
fn tamper_matrix() {
    let base = setup();
    let mut failures = Vec::new();
    for case in cases() {
        let lab = base.copy();
        let mut db = Db::open(&lab.db);
        (case.tamper)(&mut db, &lab);
        db.close();
        if let Err(e) = std::panic::catch_unwind(|| check_case(&lab, &case)) {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[track_caller]
fn check_case(lab: &Lab, case: &Case) {
    match case.at {
        At::Seq(seq) => {
            let v = assert_bad_at(lab, seq, case.why);
            assert_eq!(v.head_field, None, "{v:?}");
        }
        At::Head(field, seq) => {
            let text = lab.verify_text(None).status(1);
            let line = text.stdout.trim();
            assert!(line.contains(case.why), "verify said: {line}, expected {:?}", case.why);
            let v = lab.verify(&[]);
            assert_eq!((v.ok, v.code, v.first_bad_seq), (false, 1, seq), "{v:?}");
            assert_eq!(v.head_field.as_deref(), Some(field), "{v:?}");
            assert!(v.reason.as_deref().is_some_and(|r| r.contains(case.why)), "{v:?}");
        }
    }
}

#[test]
fn what_verify_cannot_see() {
    // Two rows carry nothing the ledger signed and nothing the records depend on: a checkpoint
    // between two others (every record stays covered by the later one; only proofs at its size
    // go) and the time a checkpoint was signed at. Changing them leaves a log that verifies.
    let base = setup();
    let lab = base.copy();
    let mut db = Db::open(&lab.db);
    assert_eq!(db.exec("DELETE FROM checkpoints WHERE size = 402"), 1);
    assert_eq!(db.exec("UPDATE checkpoints SET signed_at = 1 WHERE size = 202"), 1);
    db.close();
    assert!(lab.verify(&[]).ok);
}

// ---------------------------------------------------------------------------------------------
// What no checkpoint covers is not extended: appends refuse with the way out, and `assay
// recover --truncate-to SIZE` takes it, keeping what it removes in a file.

/// The advice every refused open gives.
fn advice(size: u64) -> String {
    format!("run `assay verify`, then `assay recover --truncate-to {size}`")
}

/// Appending refuses (exit 2) with `found` and the recover advice for `size`; the log is unchanged.
#[track_caller]
fn assert_append_refused(lab: &Lab, found: &str, size: u64) {
    let before = lab.verify(&[]);
    let file = lab.write("refused.ndjson", support::metric_lines("r-t", 50_000, 3));
    let out = lab.append_ndjson(&lab.key("w1"), &file, &[]).status(2);
    assert!(out.stderr.contains(found), "append said: {}", out.stderr);
    assert!(out.stderr.contains(&advice(size)), "append said: {}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing acknowledged: {}", out.stdout);
    // Nor does an admin's key registration get through.
    let out =
        lab.register_with(&lab.admin(), &lab.new_key(&format!("k{}", before.records)), &["worker"]).status(2);
    assert!(out.stderr.contains(&advice(size)), "key register said: {}", out.stderr);
    assert_eq!(lab.verify(&[]), before, "nothing was written");
}

fn recover(lab: &Lab, size: u64, extra: &[&str]) -> support::Out {
    let size = size.to_string();
    let mut rest = vec!["--truncate-to", size.as_str()];
    rest.extend_from_slice(extra);
    lab.db(&["recover"], &rest)
}

/// The lines of a file `recover` wrote, parsed.
fn removed_lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// Where `recover` puts its file by default (the lab's folder is the current one).
fn default_removed(lab: &Lab, size: u64, head: u64) -> std::path::PathBuf {
    let name = format!("removed-{size}-{head}.ndjson");
    if support::store::is_postgres() {
        lab.path(&format!("assay-{name}"))
    } else {
        format!("{}.{name}", lab.db).into()
    }
}

/// After recovery the log verifies and takes appends again, continuing at `size`.
#[track_caller]
fn assert_recovered(lab: &Lab, size: u64) {
    let v = lab.verify(&[]);
    assert!(v.ok && v.records == size, "{v:?}");
    let acks = lab.append_metrics(&lab.key("w1"), "r-t", 60_000, 5);
    assert_eq!(acks[0].0, size, "appends continue at the recovered size");
    assert_eq!(lab.records(), size + 5);
}

#[test]
fn a_signed_tail_record_is_refused_then_recovered_into_a_file() {
    let lab = setup();
    let (saved_file, _) = lab.save_checkpoint("saved.txt");
    let envelope = signed_by_w1(&lab, 9000);
    let mut db = Db::open(&lab.db);
    assert_eq!(db.append_forged(&envelope, true), RECORDS);
    db.close();

    // verify names it, with and without the saved checkpoint (which the prefix agrees with).
    assert_bad_at(&lab, RECORDS, "no signed checkpoint covers record 602");
    let v = lab.verify(&[&saved_file]);
    assert_eq!((v.ok, v.code, v.first_bad_seq), (false, 1, Some(RECORDS)), "{v:?}");
    assert_append_refused(&lab, "the head holds 603 records but its last checkpoint is at size 602", RECORDS);

    // recover takes only the size of a signed checkpoint.
    let out = recover(&lab, 300, &[]).status(2);
    assert!(out.stderr.contains("no checkpoint is stored at size 300"), "{}", out.stderr);
    assert!(out.stderr.contains("the nearest below is at size 202"), "{}", out.stderr);
    let out = recover(&lab, 0, &[]).status(2);
    assert!(out.stderr.contains("genesis stays"), "{}", out.stderr);

    let out = recover(&lab, RECORDS, &[]).ok();
    let file = default_removed(&lab, RECORDS, RECORDS + 1);
    assert!(
        out.stdout.contains("removed 1 records, 0 checkpoints, 0 cosignatures and 1 tree nodes"),
        "{}",
        out.stdout
    );
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(out.stdout.contains(name), "{}", out.stdout);
    let lines = removed_lines(&file);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!((lines[0]["kind"].as_str(), lines[0]["size"].as_u64()), (Some("head"), Some(RECORDS + 1)));
    assert_eq!(lines[0]["truncated_to"].as_u64(), Some(RECORDS));
    assert_eq!((lines[1]["kind"].as_str(), lines[1]["seq"].as_u64()), (Some("record"), Some(RECORDS)));
    let forged: Value = serde_json::from_str(&envelope).unwrap();
    assert_eq!(lines[1]["envelope"], forged, "the removed envelope, as signed");
    assert!(lab.verify(&[&saved_file]).ok);
    // Again: nothing beyond, nothing to do, no file.
    let out = recover(&lab, RECORDS, &[]).ok();
    assert!(out.stdout.starts_with("nothing to remove"), "{}", out.stdout);

    // The removed envelope was validly signed by a registered producer: appended for real
    // now, it gets a record that a checkpoint covers.
    let env_file = lab.write("removed.jsonl", format!("{}\n", lines[1]["envelope"]));
    let acks = lab.append_envelopes(&env_file, &["--json"]).ok().acks();
    assert_eq!(acks[0].0, RECORDS);
    assert_recovered(&lab, RECORDS + 1);
}

#[test]
fn a_record_beyond_the_head_is_refused_then_recovered() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    db.append_forged(&signed_by_w1(&lab, 9000), false);
    db.close();
    assert_append_refused(&lab, "record 602 is stored beyond the head's 602 records", RECORDS);
    let out_file = lab.path("kept.ndjson");
    let out = recover(&lab, RECORDS, &["--out", out_file.to_str().unwrap()]).ok();
    assert!(
        out.stdout.contains("removed 1 records, 0 checkpoints, 0 cosignatures and 1 tree nodes"),
        "{}",
        out.stdout
    );
    let lines = removed_lines(&out_file);
    assert_eq!(lines[1]["seq"].as_u64(), Some(RECORDS));
    assert_recovered(&lab, RECORDS);
}

#[test]
fn a_spare_tree_node_is_refused_then_recovered() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    db.insert_node(0, RECORDS, &assay_events::Hash32([7; 32]));
    db.close();
    assert_append_refused(
        &lab,
        "tree node (level 0, index 602) is stored beyond the head's 602 records",
        RECORDS,
    );
    let out = recover(&lab, RECORDS, &[]).ok();
    assert!(
        out.stdout.contains("removed 0 records, 0 checkpoints, 0 cosignatures and 1 tree nodes"),
        "{}",
        out.stdout
    );
    assert_eq!(removed_lines(&default_removed(&lab, RECORDS, RECORDS)).len(), 1, "the head only");
    assert_recovered(&lab, RECORDS);
}

#[test]
fn deleted_checkpoints_are_refused_then_recovered() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    assert_eq!(db.exec("DELETE FROM checkpoints WHERE size > 202"), 2);
    db.close();
    assert_bad_at(&lab, 202, "no signed checkpoint covers record 202");
    assert_append_refused(&lab, "no checkpoint is stored at the head's size 602", 202);
    let out = recover(&lab, 402, &[]).status(2);
    assert!(out.stderr.contains("no checkpoint is stored at size 402"), "{}", out.stderr);
    let out = recover(&lab, 202, &[]).ok();
    assert!(out.stdout.contains("removed 400 records, 0 checkpoints, 0 cosignatures and "), "{}", out.stdout);
    let lines = removed_lines(&default_removed(&lab, 202, RECORDS));
    let seqs: Vec<u64> = lines[1..].iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (202..RECORDS).collect::<Vec<_>>());
    assert_recovered(&lab, 202);
}

#[test]
fn recover_keeps_signed_checkpoints_it_removes_and_refuses_a_prefix_that_does_not_verify() {
    let lab = setup();
    let mut db = Db::open(&lab.db);
    let mut payload = db.blob(TARGET, "payload");
    let at = find(&payload, b"\"step\":") + 7;
    payload[at] = if payload[at] == b'9' { b'8' } else { payload[at] + 1 };
    db.set_blob(TARGET, "payload", &payload);
    db.close();
    // The part to keep holds the changed record: exit 1, nothing removed.
    let out = recover(&lab, 402, &[]).status(1);
    assert!(
        out.stderr.contains("cannot truncate to 402: record 250 does not extend the chain"),
        "{}",
        out.stderr
    );
    assert_bad_at(&lab, TARGET, "payload does not match its digest");
    // An existing file is never overwritten.
    let taken = lab.write("taken.ndjson", "mine\n");
    let out = recover(&lab, 202, &["--out", taken.to_str().unwrap()]).status(2);
    assert!(out.stderr.contains("taken.ndjson"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "mine\n");
    assert_bad_at(&lab, TARGET, "payload does not match its digest");
    // Back to 202: the two signed checkpoints beyond are kept in the file, notes verbatim, each
    // followed by its witnesses' cosignatures, which leave the store with it (kept, they would
    // sit beside a later checkpoint of the same size and another root); 202's stay.
    let notes = {
        let mut db = Db::open(&lab.db);
        let notes = [db.note(402), db.note(RECORDS)];
        for (size, witness) in
            [(202, "w1+00000001"), (402, "w1+00000001"), (402, "w2+00000002"), (RECORDS, "w2+00000002")]
        {
            let sql = format!(
                "INSERT INTO cosignatures (size, witness, line, cosigned_at) VALUES ({size}, '{witness}', '— {witness} AAAA', 7)"
            );
            assert_eq!(db.exec(&sql), 1);
        }
        db.close();
        notes
    };
    let out = recover(&lab, 202, &[]).ok();
    assert!(out.stdout.contains("removed 400 records, 2 checkpoints, 3 cosignatures"), "{}", out.stdout);
    let lines = removed_lines(&default_removed(&lab, 202, RECORDS));
    let kept: Vec<&str> =
        lines.iter().filter(|l| l["kind"] == "checkpoint").map(|l| l["note"].as_str().unwrap()).collect();
    assert_eq!(kept, notes.iter().map(String::as_str).collect::<Vec<_>>());
    let cosigned: Vec<(u64, &str)> = lines
        .iter()
        .filter(|l| l["kind"] == "cosignature")
        .map(|l| (l["size"].as_u64().unwrap(), l["witness"].as_str().unwrap()))
        .collect();
    assert_eq!(cosigned, [(402, "w1+00000001"), (402, "w2+00000002"), (RECORDS, "w2+00000002")]);
    let mut db = Db::open(&lab.db);
    assert_eq!(db.int("SELECT COUNT(*) FROM cosignatures"), 1, "only the cosignature at 202 stays");
    assert_eq!(db.int("SELECT MAX(size) FROM cosignatures"), 202);
    db.close();
    assert_recovered(&lab, 202);
}

#[test]
fn a_running_ledger_stops_extending_once_a_row_appears_beyond_its_head() {
    use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
    let lab = setup();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w1 = assay::keyfile::read_signer(&lab.key("w1").key).unwrap();
    let metric = |step: u64| {
        let data = serde_json::json!({"run": "r-t", "name": "train/loss", "step": step, "value": 1.0});
        Incoming::Decoded(build_envelope(
            &w1,
            "metric.recorded",
            Some("run/r-t"),
            data,
            None,
            assay::clock::now_ns(),
        ))
    };
    let ledger = rt.block_on(async {
        let store = assay::store::Store::open(&lab.db, assay::store::Durability::Full, false).await.unwrap();
        let key = assay::keyfile::read_signer(&lab.ledger_key()).unwrap();
        Ledger::open(store, key, LedgerOptions::default()).await.unwrap()
    });
    rt.block_on(ledger.append(vec![metric(70_000)])).expect("appends while the log is sound");
    // A spare node where the next leaf goes: the next commit collides with it, and from then
    // on the ledger refuses with the advice instead of failing blindly.
    let mut db = Db::open(&lab.db);
    db.insert_node(0, RECORDS + 1, &assay_events::Hash32([7; 32]));
    db.close();
    let first = rt.block_on(ledger.append(vec![metric(70_001)])).expect_err("collides");
    assert!(matches!(first, assay::ledger::AppendError::Storage(_)), "{first}");
    let again = rt.block_on(ledger.append(vec![metric(70_002)])).expect_err("refused");
    assert!(
        again.to_string().contains("tree node (level 0, index 603) is stored beyond the head"),
        "{again}"
    );
    assert!(again.to_string().contains(&advice(RECORDS + 1)), "{again}");
    rt.block_on(ledger.shutdown());
    drop(rt);
    recover(&lab, RECORDS + 1, &[]).ok();
    assert_recovered(&lab, RECORDS + 1);
}

#[test]
fn two_writers_extend_each_others_commits_but_not_a_forged_tail() {
    use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
    let lab = setup();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w1 = assay::keyfile::read_signer(&lab.key("w1").key).unwrap();
    let metric = |step: u64| {
        let data = serde_json::json!({"run": "r-t", "name": "train/loss", "step": step, "value": 1.0});
        Incoming::Decoded(build_envelope(
            &w1,
            "metric.recorded",
            Some("run/r-t"),
            data,
            None,
            assay::clock::now_ns(),
        ))
    };
    // Two servers' ledgers on one database, each following the other's commits.
    let open = || async {
        let store = assay::store::Store::open(&lab.db, assay::store::Durability::Full, false).await.unwrap();
        let key = assay::keyfile::read_signer(&lab.ledger_key()).unwrap();
        let options = LedgerOptions { follow_poll_ms: Some(20), ..LedgerOptions::default() };
        Ledger::open(store, key, options).await.unwrap()
    };
    let (a, b) = rt.block_on(async { (open().await, open().await) });
    for step in 0..4 {
        let (first, second) = if step % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let acked = rt.block_on(first.append(vec![metric(80_000 + step)])).expect("an honest commit");
        assert_eq!(acked.acks[0].seq, RECORDS + 2 * step);
        let acked = rt.block_on(second.append(vec![metric(81_000 + step)])).expect("over the other's commit");
        assert_eq!(acked.acks[0].seq, RECORDS + 2 * step + 1);
    }
    let size = RECORDS + 8;
    let mut db = Db::open(&lab.db);
    db.append_forged(&signed_by_w1(&lab, 9000), true);
    db.close();
    // Following, each finds a head no checkpoint it can open covers, and says so.
    let unhealthy = rt.block_on(async {
        for _ in 0..250 {
            if !a.healthy() && !b.healthy() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    });
    assert!(unhealthy, "both writers stop at the forged tail");
    for ledger in [&a, &b] {
        let refused = rt.block_on(ledger.append(vec![metric(82_000)])).expect_err("refused");
        assert!(refused.to_string().contains(&advice(size)), "{refused}");
    }
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
    });
    drop(rt);
    assert_bad_at(&lab, size, &format!("no signed checkpoint covers record {size}"));
    recover(&lab, size, &[]).ok();
    assert_recovered(&lab, size);
}

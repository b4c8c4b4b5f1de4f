//! `--witness-policy FILE` of `assay verify`, `verify-bundle` and `verify-export`, with
//! cosignatures from real `assay witness serve` processes kept in the ledger's `cosignatures`
//! table as the log side keeps them: a quorum of listed witnesses passes (exit 0) and says who
//! cosigned which size; a listed witness that never cosigned is named (exit 1); when the head
//! is cosigned by too few, `verify` stands on the older checkpoint a quorum cosigned while a
//! bundle and an export taken at the head are refused, naming who is missing; a tampered
//! stored cosignature fails all three (exit 1), while the checks without a policy still pass;
//! a bad policy file exits 2.

use std::path::{Path, PathBuf};

use assay_events::cosignature::CosignerVerifier;
use assay_events::note;

use crate::support::export::{Demo, assay, s};
use crate::support::sql::{Bind, Db};
use crate::support::witness::{WitnessProc, add_checkpoint, body, new_witness_key};

/// The small demo both tests take a copy of: the seed most export tests use, so this process
/// builds it once for all of them (a build costs a few CPU-seconds; each test cosigns, stores
/// and tampers in its own copy).
const SEED: u64 = 7;

struct Witness {
    proc: WitnessProc,
    vkey: CosignerVerifier,
}

/// A witness of the demo's log (its origin, its ledger key).
fn witness(demo: &Demo, name: &str, origin: &str) -> Witness {
    let vkey = std::fs::read_to_string(demo.ledger_vkey()).expect("ledger.vkey");
    let logs = demo.path("logs.toml");
    std::fs::write(&logs, format!("[[log]]\norigin = \"{origin}\"\nvkeys = [\"{}\"]\n", vkey.trim()))
        .expect("logs.toml");
    let (key, vkey) =
        new_witness_key(demo.dir.path(), &format!("witness.test/{name}"), &format!("{name}.key"));
    let proc = WitnessProc::start(&key, &logs, &demo.path(&format!("{name}.db")), "127.0.0.1:0", false);
    Witness { proc, vkey }
}

/// The demo's latest checkpoint note.
fn head_note(demo: &Demo) -> String {
    assay(&["checkpoint", "--db", &demo.db()]).ok().stdout
}

/// Has `w` cosign `note` (its first checkpoint of this log: `old 0`) and stores the line the
/// way the log side does; returns the line.
fn cosign(demo: &Demo, w: &Witness, note: &str) -> String {
    cosign_from(demo, w, 0, note)
}

/// [`cosign`] of a later checkpoint, with the consistency proof from `old`, the size `w` cosigned.
fn cosign_from(demo: &Demo, w: &Witness, old: u64, note: &str) -> String {
    let url = w.proc.url.clone();
    let mut proof = Vec::new();
    if old > 0 {
        let new = note.lines().nth(1).expect("a size line");
        let p =
            assay(&["proof", "consistency", "--db", &demo.db(), &old.to_string(), new, "--json"]).ok().json();
        proof = p["proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|h| h.as_str().expect("base64").to_owned())
            .collect();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let (status, _, text) =
        rt.block_on(async { add_checkpoint(&reqwest::Client::new(), &url, body(old, &proof, note)).await });
    assert_eq!(status, 200, "{text}");
    let line = text.lines().find(|l| l.starts_with('\u{2014}')).expect("a cosignature line").to_owned();
    let parsed = note::parse(&format!("{note}{line}\n")).expect("the cosigned note");
    let sig = parsed.signatures.last().expect("the line");
    let at = w.vkey.verify(&parsed.text, sig).expect("the witness's line verifies");
    let size: i64 = note.lines().nth(1).expect("a size line").parse().expect("a size");
    let mut db = Db::open(&demo.db());
    let stored = db.run(
        "INSERT INTO cosignatures (size, witness, line, cosigned_at) VALUES (?, ?, ?, ?)",
        &[Bind::Int(size), Bind::Text(&w.vkey.keyid()), Bind::Text(&line), Bind::Int(at as i64)],
    );
    assert_eq!(stored, 1);
    line
}

/// A policy file listing `witnesses` with quorum `k`.
fn policy(demo: &Demo, name: &str, witnesses: &[&CosignerVerifier], k: usize) -> PathBuf {
    let mut text = "# the witnesses this auditor trusts\n".to_owned();
    for w in witnesses {
        text.push_str(&format!("witness {}\n", w.to_text()));
    }
    text.push_str(&format!("quorum {k}\n"));
    let path = demo.path(name);
    std::fs::write(&path, text).expect("the policy");
    path
}

/// A bundle and a Parquet export of the demo as it is now.
struct Files {
    bundle: PathBuf,
    export: PathBuf,
}

fn files(demo: &Demo, tag: &str) -> Files {
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    let slug = audit["artifacts"][0]["slug"].as_str().expect("an artifact").to_owned();
    let bundle = demo.path(&format!("{tag}.intoto.jsonl"));
    assay(&["export", "bundle", "--db", &demo.db(), "--artifact", &slug, "--out", &s(&bundle)]).ok();
    let export = demo.path(&format!("{tag}-export"));
    demo.export(&export, &[]).ok();
    Files { bundle, export }
}

/// `verify`, `verify-bundle` and `verify-export`, with `--witness-policy POLICY` when given:
/// (which, exit code, stdout + stderr).
fn checks(demo: &Demo, f: &Files, policy: Option<&Path>) -> Vec<(&'static str, i32, String)> {
    let key = s(&demo.ledger_vkey());
    let mut runs: Vec<(&'static str, Vec<String>)> = vec![
        ("verify", vec!["verify".into(), "--db".into(), demo.db()]),
        (
            "verify-bundle",
            vec![
                "verify-bundle".into(),
                s(&f.bundle),
                "--ledger-key".into(),
                key.clone(),
                "--authentic-only".into(),
            ],
        ),
        ("verify-export", vec!["verify-export".into(), s(&f.export), "--ledger-key".into(), key]),
    ];
    runs.iter_mut()
        .map(|(what, args)| {
            if let Some(p) = policy {
                args.extend(["--witness-policy".to_owned(), s(p)]);
            }
            let out = assay(args.as_slice());
            (*what, out.code, format!("{}{}", out.stdout, out.stderr))
        })
        .collect()
}

#[test]
fn a_quorum_passes_a_missing_witness_is_named_and_a_bad_policy_is_refused() {
    let demo = Demo::new(SEED);
    let note = head_note(&demo);
    let origin = note.lines().next().expect("an origin").to_owned();
    let (w1, w2) = (witness(&demo, "w1", &origin), witness(&demo, "w2", &origin));
    // w3's key is listed by one policy; it never cosigns anything.
    let (_, w3) = new_witness_key(demo.dir.path(), "witness.test/w3", "w3.key");
    cosign(&demo, &w1, &note);
    cosign(&demo, &w2, &note);
    let f = files(&demo, "cosigned");
    // The proofs' checkpoint carries both lines and still opens under the ledger key.
    let proofs = std::fs::read_to_string(format!("{}.proof", f.bundle.display())).expect("proofs");
    assert!(proofs.contains("\u{2014} witness.test/w1 ") && proofs.contains("\u{2014} witness.test/w2 "));
    let size = note.lines().nth(1).expect("a size");

    let both = policy(&demo, "both.policy", &[&w1.vkey, &w2.vkey], 2);
    for (what, code, out) in checks(&demo, &f, Some(&both)) {
        assert_eq!(code, 0, "{what}: {out}");
        assert!(
            out.contains(&format!("size {size} cosigned by witness.test/w1 (at "))
                && out.contains("witness.test/w2 (at ")
                && out.contains("quorum 2"),
            "{what}: {out}"
        );
        if what == "verify" {
            let stored =
                format!("largest size stored per witness: witness.test/w1 {size}, witness.test/w2 {size}");
            assert!(out.contains(&stored), "{out}");
        }
    }
    // `verify --json` carries what met the policy, for scripts.
    let json = |policy: &Path| {
        let out = assay(&["verify", "--db", &demo.db(), "--witness-policy", &s(policy), "--json"]);
        (out.code, serde_json::from_str::<serde_json::Value>(&out.stdout).expect("verify --json"))
    };
    let (code, v) = json(&both);
    assert_eq!((code, &v["ok"]), (0, &serde_json::json!(true)), "{v}");
    assert_eq!(v["witnessed"]["size"].as_u64(), Some(size.parse().expect("a size")), "{v}");
    assert_eq!(v["witnessed"]["quorum"].as_u64(), Some(2), "{v}");
    let names: Vec<&str> = v["witnessed"]["cosigned"]
        .as_array()
        .expect("cosigned")
        .iter()
        .map(|c| c[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["witness.test/w1", "witness.test/w2"], "{v}");
    let with_w3 = policy(&demo, "w3.policy", &[&w1.vkey, &w3, &w2.vkey], 3);
    let (code, v) = json(&with_w3);
    assert_eq!((code, &v["ok"]), (1, &serde_json::json!(false)), "{v}");
    assert!(v["reason"].as_str().unwrap_or_default().contains("missing: witness.test/w3"), "{v}");
    assert!(v.get("witnessed").is_none(), "no quorum, no `witnessed`: {v}");
    for (what, code, out) in checks(&demo, &f, Some(&with_w3)) {
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("2 of the 3") && out.contains("missing: witness.test/w3"), "{what}: {out}");
        assert!(!out.contains("missing: witness.test/w1"), "{what}: {out}");
    }
    // One of two listed is enough at quorum 1.
    let one = policy(&demo, "one.policy", &[&w3, &w1.vkey], 1);
    for (what, code, out) in checks(&demo, &f, Some(&one)) {
        assert_eq!(code, 0, "{what}: {out}");
    }
    let bad = demo.path("bad.policy");
    std::fs::write(&bad, format!("witness {}\nquorum 2\n", w1.vkey.to_text())).expect("a policy");
    for (what, code, out) in checks(&demo, &f, Some(&bad)) {
        assert_eq!(code, 2, "{what}: {out}");
        assert!(
            out.contains("--witness-policy") && out.contains("quorum 2 must be between"),
            "{what}: {out}"
        );
    }
    for (what, code, out) in checks(&demo, &f, None) {
        assert_eq!(code, 0, "{what}: {out}");
    }

    // The log grows; only w1 cosigns the new head. The ledger still meets the quorum at the
    // older size both cosigned; a bundle and an export taken at the new head do not.
    demo.append_metrics("late", 3);
    let later = head_note(&demo);
    let later_size = later.lines().nth(1).expect("a size").to_owned();
    assert_ne!(later_size, size);
    cosign_from(&demo, &w1, size.parse().expect("a size"), &later);
    let g = files(&demo, "later");
    let results = checks(&demo, &g, Some(&both));
    let (_, code, out) = &results[0];
    assert_eq!(*code, 0, "{out}");
    assert!(out.contains(&format!("size {size} cosigned by witness.test/w1")), "{out}");
    let stored =
        format!("largest size stored per witness: witness.test/w1 {later_size}, witness.test/w2 {size}");
    assert!(out.contains(&stored), "{out}");
    for (what, code, out) in &results[1..] {
        assert_eq!(*code, 1, "{what}: {out}");
        assert!(
            out.contains(&format!("size {later_size}")) && out.contains("missing: witness.test/w2"),
            "{what}: {out}"
        );
    }
}

#[test]
fn a_tampered_stored_cosignature_fails_every_check_with_the_policy() {
    let demo = Demo::new(SEED);
    let note = head_note(&demo);
    let origin = note.lines().next().expect("an origin").to_owned();
    let (w1, w2) = (witness(&demo, "w1", &origin), witness(&demo, "w2", &origin));
    cosign(&demo, &w1, &note);
    let line = cosign(&demo, &w2, &note);
    // One character of w2's signature changed (the length kept), in the store.
    let at = line.len() - 20;
    let flipped = if &line[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &line[..at], &line[at + 1..]);
    let mut db = Db::open(&demo.db());
    let changed = db.run(
        "UPDATE cosignatures SET line = ? WHERE witness = ?",
        &[Bind::Text(&tampered), Bind::Text(&w2.vkey.keyid())],
    );
    assert_eq!(changed, 1);
    drop(db);
    let f = files(&demo, "tampered");
    let both = policy(&demo, "both.policy", &[&w1.vkey, &w2.vkey], 2);
    for (what, code, out) in checks(&demo, &f, Some(&both)) {
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(&w2.vkey.keyid()), "{what}: {out}");
    }
    // Even a policy w1 alone meets refuses a listed witness's line that does not verify.
    let lenient = policy(&demo, "lenient.policy", &[&w1.vkey, &w2.vkey], 1);
    for (what, code, out) in checks(&demo, &f, Some(&lenient)) {
        assert_eq!(code, 1, "{what}: {out}");
    }
    // Without a policy the witnesses' lines are not the ledger key's business.
    for (what, code, out) in checks(&demo, &f, None) {
        assert_eq!(code, 0, "{what}: {out}");
    }
}

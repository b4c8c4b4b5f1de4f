//! Through the CLI: init → register → append 10,000 → verify, log, sign-only/envelopes
//! idempotency, and the checkpoint note.

use crate::support;

use std::collections::{BTreeSet, HashSet};

use assay_events::checkpoint::Checkpoint;
use assay_events::cloudevent::event_digest;
use assay_events::dsse::Envelope;
use assay_events::merkle::root_of;
use serde_json::{Value, json};
use support::{Lab, ORIGIN, leaf_hashes_from_log, metric_lines, metric_value};

const EVENTS: u64 = 10_000;
const RUNS: u64 = 8;

/// The 10,000 metric lines: RUNS runs, EVENTS / RUNS steps each.
fn big_input() -> String {
    (0..RUNS).map(|r| metric_lines(&format!("r-{r}"), 0, EVENTS / RUNS)).collect()
}

#[test]
fn init_register_append_10k_verify_log_checkpoint() {
    let lab = Lab::new();
    for f in ["ledger.key", "ledger.vkey", "admin.key", "admin.vkey"] {
        assert!(lab.keys.join(f).is_file(), "init wrote {f}");
    }
    assert_eq!(lab.records(), 1, "genesis only");

    // A second init refuses and leaves the ledger alone.
    let again = lab.db(&["init"], &["--origin", ORIGIN, "--keys", "keys"]).status(2);
    assert!(again.stderr.contains("refusing to re-initialize"), "{}", again.stderr);
    assert_eq!(lab.records(), 1);

    let w = lab.worker("w1");
    assert_eq!(lab.records(), 2);

    // Append 10,000 events in one invocation.
    let input = lab.write("metrics.ndjson", big_input());
    let acks = lab.append_ndjson(&w, &input, &[]).ok().acks();
    assert_eq!(acks.len() as u64, EVENTS);
    let seqs: Vec<u64> = acks.iter().map(|a| a.0).collect();
    assert_eq!(seqs, (2..2 + EVENTS).collect::<Vec<_>>(), "acks are gap-free, in input order");
    assert_eq!(
        acks.iter().map(|a| &a.1).collect::<HashSet<_>>().len() as u64,
        EVENTS,
        "digests are distinct"
    );

    // verify: exit 0, ok, every record counted.
    let v = lab.verify(&[]);
    assert!(v.ok && v.code == 0, "{v:?}");
    assert_eq!((v.records, v.first_bad_seq, v.reason.as_deref()), (EVENTS + 2, None, None));
    let text = lab.verify_text(None).ok();
    assert!(text.stdout.starts_with(&format!("ok: {} records", EVENTS + 2)), "{}", text.stdout);
    // Progress is for people: none when stderr is not a terminal; on a (pseudo-)terminal a
    // bar, then what was done, with rates rounded ("1.2k records/s", never "1234.5678/s").
    assert!(text.stderr.is_empty(), "no progress without a terminal: {}", text.stderr);
    let screen = on_a_terminal(&["verify", "--db", &lab.db]);
    assert!(screen.contains("verified 10.0k records in "), "{screen}");
    assert!(screen.contains(&format!("ok: {} records", EVENTS + 2)), "{screen}");
    assert_rates_rounded(&screen);

    // log --json: one line per record with exactly the documented fields.
    let log = lab.log(&[]);
    assert_eq!(log.len() as u64, EVENTS + 2);
    let fields: BTreeSet<&str> =
        ["seq", "digest", "type", "subject", "source", "id", "time", "received_at", "event", "envelope"]
            .into();
    for line in &log {
        let keys: BTreeSet<&str> = line.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(keys, fields, "fields of {line}");
    }
    assert_eq!(log[0]["type"], "ledger.initialized");
    assert_eq!(log[0]["subject"], "ledger");
    // The ledger's key is named after the origin (C2SP): genesis is its event.
    assert_eq!(log[0]["source"], format!("assay:key/{ORIGIN}"));
    assert_eq!(log[0]["event"]["data"]["origin"], ORIGIN);
    assert_eq!(log[1]["type"], "key.registered");
    assert_eq!(log[1]["subject"], "key/w1");
    assert_eq!(log[1]["event"]["data"]["vkey"], w.verifier().to_text());
    assert_eq!(log[1]["event"]["data"]["roles"], json!(["worker"]));

    let wkey = w.verifier();
    let expected: Vec<Value> = big_input().lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let mut ids = HashSet::new();
    for ((line, (seq, digest)), input) in log[2..].iter().zip(&acks).zip(&expected) {
        assert_eq!(line["seq"].as_u64(), Some(*seq));
        assert_eq!(line["digest"].as_str(), Some(digest.as_str()));
        assert_eq!(line["type"], "metric.recorded");
        assert_eq!(line["subject"], input["subject"]);
        assert_eq!(line["source"], "assay:key/w1");
        let event = &line["event"];
        assert_eq!(event["data"], input["data"], "seq {seq}");
        assert_eq!(event["specversion"], "1.0");
        // `assay append` names the schema `data` follows.
        assert_eq!(
            event["dataschema"],
            format!("https://assay.dev/schemas/events/{}.json", line["type"].as_str().expect("a type"))
        );
        assert_eq!(event["type"], line["type"]);
        assert_eq!(event["subject"], line["subject"]);
        assert_eq!(event["source"], line["source"]);
        assert_eq!(event["id"], line["id"]);
        assert_eq!(event["time"], line["time"]);
        assert!(ids.insert(line["id"].as_str().expect("id").to_owned()), "ids are unique");
        // The envelope is the signed original: its payload is the event, hashed to the digest.
        let env = Envelope::parse(line["envelope"].to_string().as_bytes()).expect("envelope");
        assert!(env.verify_with(&wkey), "seq {seq}: the envelope verifies with w1.vkey");
        assert_eq!(&event_digest(&env.payload).to_hex(), digest);
        assert_eq!(&serde_json::from_slice::<Value>(&env.payload).expect("payload"), event);
        assert!(
            chrono::DateTime::parse_from_rfc3339(line["received_at"].as_str().expect("received_at")).is_ok()
        );
    }
    // Spot-check the values themselves (the input order is run-major).
    let per_run = EVENTS / RUNS;
    assert_eq!(log[2 + per_run as usize + 5]["event"]["data"]["value"].as_f64(), Some(metric_value(5)));

    // Filters.
    assert_eq!(lab.log(&["--type", "metric.recorded"]).len() as u64, EVENTS);
    let r3 = lab.log(&["--subject", "run/r-3"]);
    assert_eq!(r3.len() as u64, per_run);
    assert!(r3.iter().all(|l| l["subject"] == "run/r-3"));
    let page = lab.log(&["--from", "5000", "--limit", "7"]);
    assert_eq!(
        page.iter().map(|l| l["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        (5000..5007).collect::<Vec<_>>()
    );
    assert_eq!(lab.log(&["--type", "key.registered"]).len(), 1);

    // The checkpoint: a note signed by the ledger key over every record, whose root a client
    // recomputes from `log --json` alone.
    let note = lab.checkpoint();
    let cp = Checkpoint::open(&note, &lab.ledger_vkey()).expect("the checkpoint opens with ledger.vkey");
    assert_eq!(cp.origin, ORIGIN);
    assert_eq!(cp.size, EVENTS + 2);
    assert_eq!(cp.root, root_of(&leaf_hashes_from_log(&log)), "the tree of the logged records");
    assert!(Checkpoint::open(&note, &support::read_verifier(&lab.keys.join("admin.vkey"))).is_err());
    assert!(note.starts_with(&format!("{ORIGIN}\n{}\n", EVENTS + 2)), "{note}");
    // Its signature line names the key by the origin, as C2SP tlog-checkpoint asks.
    let signature = note.lines().last().expect("a signature line");
    assert!(signature.starts_with(&format!("\u{2014} {ORIGIN} ")), "{note}");
    assert_eq!(lab.ledger_vkey().name(), ORIGIN);
}

/// A ledger made before keys were named after the origin (its key is named `ledger`) keeps
/// verifying, serving proofs and appending.
#[test]
fn a_ledger_whose_key_has_the_old_name_keeps_verifying() {
    use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
    let dir = tempfile::tempdir().expect("a folder");
    let db = support::store::TestDb::new(dir.path(), "old.db");
    let keys = dir.path().join("keys");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let ledger_key = assay::keyfile::generate("ledger").expect("a key");
    assay::keyfile::write_pair(&keys, &ledger_key).expect("ledger.key");
    let admin = assay::keyfile::generate("admin").expect("a key");
    let worker = assay::keyfile::generate("w-old").expect("a key");
    rt.block_on(async {
        let open = || assay::store::Store::open(&db.target, assay::store::Durability::Relaxed, true);
        let store = open().await.expect("a store");
        let ledger = Ledger::init(
            store.clone(),
            ORIGIN,
            ledger_key.clone(),
            &[admin.verifier()],
            LedgerOptions::default(),
        )
        .await
        .expect("genesis the old way");
        ledger.shutdown().await;
        // Reopened with the old-named key, it goes on signing checkpoints.
        let ledger =
            Ledger::open(store.clone(), ledger_key.clone(), LedgerOptions::default()).await.expect("reopens");
        let data = json!({"vkey": worker.verifier().to_text(), "roles": ["worker"]});
        let event = build_envelope(&admin, "key.registered", Some("key/w-old"), data, None, 1);
        ledger.append(vec![Incoming::Decoded(event)]).await.expect("appends");
        ledger.shutdown().await;
        store.close().await;
    });
    let lab = |args: &[&str]| {
        let out = support::command().args(args).output().expect("assay");
        support::Out::from_output(args.join(" "), out)
    };
    let log = lab(&["log", "--db", &db.target, "--json"]).ok();
    assert_eq!(log.json_lines()[0]["source"], "assay:key/ledger");
    let verified = lab(&["verify", "--db", &db.target]).ok();
    assert!(verified.stdout.contains("ok: 2 records"), "{}", verified.stdout);
    let note = lab(&["checkpoint", "--db", &db.target]).ok().stdout;
    assert!(note.lines().last().expect("a signature").starts_with("\u{2014} ledger "), "{note}");
    lab(&["proof", "consistency", "--db", &db.target, "1", "2"]).ok();
    let cp = Checkpoint::open(&note, &support::read_verifier(&keys.join("ledger.vkey"))).expect("opens");
    assert_eq!((cp.origin.as_str(), cp.size), (ORIGIN, 2));
}

#[test]
fn sign_only_envelopes_append_once() {
    let lab = Lab::new();
    let w = lab.worker("w1");
    let before = lab.records();

    let envelopes = lab.sign_only(&w, &metric_lines("r-env", 0, 50));
    assert_eq!(envelopes.len(), 50);
    for e in &envelopes {
        let env = Envelope::parse(e.as_bytes()).expect("one envelope per line");
        assert!(env.verify_with(&w.verifier()));
    }
    assert_eq!(lab.records(), before, "--sign-only appends nothing");
    let file = lab.write("signed.ndjson", envelopes.join("\n") + "\n");

    let first = lab.append_envelopes(&file, &[]).ok();
    let first: Vec<&str> = first.lines();
    assert_eq!(first.len(), 50);
    for (i, line) in first.iter().enumerate() {
        let want = format!("seq {} ", before + i as u64);
        assert!(line.starts_with(&want) && !line.contains("already present"), "{line}");
    }
    assert_eq!(lab.records(), before + 50);

    // The same bytes again: the same records, acknowledged as already present.
    let second = lab.append_envelopes(&file, &[]).ok();
    let second: Vec<&str> = second.lines();
    assert_eq!(second.len(), 50);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(format!("{a} (already present)"), *b);
    }
    let third = lab.append_envelopes(&file, &["--json"]).ok().acks();
    let firsts: Vec<(u64, String)> = first
        .iter()
        .map(|l| {
            let mut w = l.split(' ');
            (w.nth(1).unwrap().parse().unwrap(), w.next().unwrap().to_owned())
        })
        .collect();
    assert_eq!(third, firsts);
    assert_eq!(lab.records(), before + 50, "no second record");
}

#[test]
fn a_gpu_has_one_identity_whatever_form_its_events_hold() {
    let lab = Lab::new();
    let runner = lab.producer("runner-1", &["runner"]);
    // An older producer's telemetry in NVML's form, an Xid in the canonical form: one GPU.
    let telemetry = serde_json::json!({"type": "gpu.telemetry", "subject": "gpu/00000000:CA:00.0", "data": {
        "host": "node-1", "pci": "00000000:CA:00.0", "uuid": "GPU-34d7319c-5b19-1e75-186d-c187099e4fe5",
        "temp_c": 61, "power_mw": 287000, "util_gpu_pct": 97.0, "mem_used_bytes": 1024}});
    let xid = serde_json::json!({"type": "gpu.xid", "subject": "gpu/0000:ca:00.0", "data": {
        "host": "node-1", "pci": "0000:ca:00.0", "code": 79, "pid": null, "process": null,
        "message": "GPU has fallen off the bus.", "source": "kmsg", "severity": "hardware",
        "action": "RESET_GPU"}});
    let file = lab.write("gpu.ndjson", format!("{telemetry}\n{xid}\n"));
    lab.append_ndjson(&runner, &file, &[]).ok();
    for form in ["gpu/0000:ca:00.0", "gpu/00000000:CA:00.0", "gpu/0000:CA:00"] {
        let found = lab.log(&["--subject", form]);
        let types: Vec<&str> = found.iter().filter_map(|r| r["type"].as_str()).collect();
        assert_eq!(types, ["gpu.telemetry", "gpu.xid"], "--subject {form}");
    }
    let gpus = lab.db(&["gpus"], &["--json"]).ok().json();
    let text = gpus.to_string();
    assert!(text.contains("node-1/0000:ca:00"), "{text}");
    assert!(!text.contains("00000000:CA:00.0\""), "one key per GPU, in the canonical form: {text}");
}

/// Runs `assay ARGS…` on a pseudo-terminal (script(1)) and returns what it showed.
fn on_a_terminal(args: &[&str]) -> String {
    let quoted: Vec<String> = std::iter::once(support::bin())
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let out = std::process::Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_LOG")
        .env("COLUMNS", "100")
        .output()
        .expect("script(1) from util-linux runs the CLI on a pseudo-terminal");
    assert!(out.status.success(), "{quoted:?}: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `N UNIT/s` on the screen is rounded for people: at most four digits, or three
/// significant ones with k, M or G.
#[track_caller]
fn assert_rates_rounded(screen: &str) {
    let mut rates = 0;
    for (at, _) in screen.match_indices(" records/s") {
        let number = screen[..at].rsplit([' ', '(']).next().unwrap_or("");
        let (digits, unit) = match number.strip_suffix(['k', 'M', 'G']) {
            Some(d) => (d, true),
            None => (number, false),
        };
        let ok = if unit {
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            !int.is_empty()
                && int.len() + frac.len() <= 3
                && frac.len() <= 1
                && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        } else {
            !digits.is_empty() && digits.len() <= 4 && digits.chars().all(|c| c.is_ascii_digit())
        };
        assert!(ok, "rate {number:?} is not rounded for people in: {screen}");
        rates += 1;
    }
    assert!(rates > 0, "no rate shown: {screen}");
}

/// `assay completions SHELL` and `assay man` come from the command tree: each shell's script
/// names the subcommands, and the manual pages are roff with one page per (visible) command.
#[test]
fn completions_and_manual_pages() {
    let lab = Lab::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = lab.run(["completions", shell]).ok();
        assert!(out.stdout.len() > 1000, "{shell}: {} bytes", out.stdout.len());
        for word in ["verify-export", "append", "replay", "durability", "projection"] {
            assert!(out.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let bad = lab.run(["completions", "cmd.exe"]).status(2);
    assert!(bad.stderr.contains("invalid value 'cmd.exe'"), "{}", bad.stderr);

    let page = lab.run(["man"]).ok().stdout;
    assert!(page.contains("\n.TH assay 1 "), "a title header: {}", &page[..page.len().min(400)]);
    for sub in ["init", "append", "verify\\-export", "completions", "man"] {
        assert!(page.contains(&format!("assay\\-{sub}(1)")), "the page lists {sub}");
    }
    assert!(!page.contains("assay\\-help(1)"), "no page for `help`, which --help is");

    let dir = lab.path("man");
    let out = lab.run([std::ffi::OsStr::new("man"), std::ffi::OsStr::new("--out"), dir.as_os_str()]).ok();
    let mut pages: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    pages.sort();
    assert_eq!(out.stdout.trim(), format!("wrote {} pages to {}", pages.len(), dir.display()));
    for page in
        ["assay.1", "assay-append.1", "assay-key.1", "assay-key-new.1", "assay-run-exec.1", "assay-man.1"]
    {
        assert!(pages.contains(&page.to_owned()), "{page} in {pages:?}");
    }
    assert!(!pages.contains(&"assay-run-cell.1".to_owned()), "{pages:?}");
    let key_new = std::fs::read_to_string(dir.join("assay-key-new.1")).unwrap();
    assert!(key_new.contains(".TH assay-key-new 1"), "{key_new}");
    assert!(key_new.contains("\\-\\-out"), "the page describes the options: {key_new}");
}

//! Bad input through `assay append`: exit 2, an error naming the problem, nothing stored.
//! Identical bytes sent again are acknowledged with the same seq.

use crate::support;

use assay_events::b64::encode_std;
use assay_events::dsse::{Envelope, PAYLOAD_TYPE, pae};
use serde_json::{Value, json};
use support::{Key, Lab, Out, b64, metric_lines};

/// Asserts a refusal: exit status 2, stderr holding every needle, the record count unchanged.
#[track_caller]
fn assert_refused(lab: &Lab, before: u64, out: Out, needles: &[&str]) {
    let out = out.status(2);
    for n in needles {
        assert!(out.stderr.contains(n), "stderr lacks {n:?}: {}", out.stderr);
    }
    assert!(out.stdout.is_empty(), "nothing acknowledged: {}", out.stdout);
    assert_eq!(lab.records(), before, "nothing stored after: {}", out.stderr);
}

/// One event appended with `--type/--subject/--data`.
fn append_one(lab: &Lab, key: &Key, ty: &str, subject: &str, data: &Value, extra: &[&str]) -> Out {
    let key_path = key.key.to_string_lossy().into_owned();
    let data = data.to_string();
    let mut rest = vec![
        "--key",
        key_path.as_str(),
        "--type",
        ty,
        "--subject",
        subject,
        "--data",
        data.as_str(),
        "--json",
    ];
    rest.extend_from_slice(extra);
    lab.db(&["append"], &rest)
}

fn metric(run: &str, step: i64) -> Value {
    json!({"run": run, "name": "train/loss", "step": step, "value": 1.5})
}

/// A lab with a registered worker `w1`.
fn lab_with_worker() -> (Lab, Key) {
    let lab = Lab::new();
    let w = lab.worker("w1");
    (lab, w)
}

/// One envelope signed by `key` (via `--sign-only`), as a JSON object to tamper with.
fn signed_envelope(lab: &Lab, key: &Key, step: u64) -> Value {
    let lines = lab.sign_only(key, &metric_lines("r-env", step, 1));
    serde_json::from_str(&lines[0]).expect("envelope JSON")
}

fn envelope_file(lab: &Lab, name: &str, envelopes: &[Value]) -> std::path::PathBuf {
    let text: String = envelopes.iter().map(|e| format!("{e}\n")).collect();
    lab.write(name, text)
}

#[test]
fn malformed_json_line() {
    let (lab, w) = lab_with_worker();
    let before = lab.records();
    let mut text = metric_lines("r-1", 0, 3);
    text.insert_str(
        text.find('\n').unwrap() + 1,
        "{\"type\":\"metric.recorded\",\"subject\":\"run/r-1\",\"data\":\n",
    );
    let file = lab.write("bad.ndjson", text);
    assert_refused(&lab, before, lab.append_ndjson(&w, &file, &[]), &["line 2", "malformed JSON"]);

    // An unknown member of an input line is refused the same way.
    let file = lab.write("extra.ndjson", "{\"type\":\"metric.recorded\",\"data\":{},\"colour\":1}\n");
    assert_refused(&lab, before, lab.append_ndjson(&w, &file, &[]), &["line 1", "malformed JSON", "colour"]);

    // And a line of pre-signed envelopes that is not JSON.
    let good = signed_envelope(&lab, &w, 0);
    let file = lab.write("bad.env", format!("{good}\n{{\"payloadType\": oops}}\n"));
    assert_refused(
        &lab,
        before,
        lab.append_envelopes(&file, &[]),
        &["line 2", "[bad_envelope]", "malformed envelope JSON"],
    );
}

#[test]
fn bad_base64_in_an_envelope() {
    let (lab, w) = lab_with_worker();
    let before = lab.records();
    let good = signed_envelope(&lab, &w, 0);

    let mut bad = good.clone();
    let payload = bad["payload"].as_str().unwrap().to_owned();
    bad["payload"] = format!("{}!{}", &payload[..8], &payload[9..]).into();
    let file = envelope_file(&lab, "payload.env", &[good.clone(), bad]);
    assert_refused(
        &lab,
        before,
        lab.append_envelopes(&file, &[]),
        &["line 2", "[bad_envelope]", "payload", "base64"],
    );

    let mut bad = good.clone();
    let sig = bad["signatures"][0]["sig"].as_str().unwrap().to_owned();
    bad["signatures"][0]["sig"] = format!("*{}", &sig[1..]).into();
    let file = envelope_file(&lab, "sig.env", &[bad]);
    assert_refused(
        &lab,
        before,
        lab.append_envelopes(&file, &[]),
        &["[bad_envelope]", "signatures[0].sig", "base64"],
    );

    // URL-safe base64 is accepted (DSSE allows either alphabet): the same event appends.
    let mut url = good.clone();
    let p = url["payload"].as_str().unwrap().replace('+', "-").replace('/', "_");
    url["payload"] = p.trim_end_matches('=').into();
    let file = envelope_file(&lab, "url.env", &[url]);
    let acks = lab.append_envelopes(&file, &["--json"]).ok().acks();
    assert_eq!(acks.len(), 1);
    assert_eq!(lab.records(), before + 1);
}

#[test]
fn wrong_signature() {
    let (lab, w) = lab_with_worker();
    let w2 = lab.worker("w2");
    let before = lab.records();
    let good = signed_envelope(&lab, &w, 0);

    // One bit of the signature flipped.
    let mut bad = good.clone();
    let mut sig = b64(bad["signatures"][0]["sig"].as_str().unwrap());
    sig[0] ^= 0x80;
    bad["signatures"][0]["sig"] = encode_std(&sig).into();
    let file = envelope_file(&lab, "flip.env", &[bad]);
    assert_refused(
        &lab,
        before,
        lab.append_envelopes(&file, &[]),
        &["[bad_signature]", &w.verifier().keyid()],
    );

    // The payload changed after signing (a different metric value).
    let mut bad = good.clone();
    let payload = String::from_utf8(b64(bad["payload"].as_str().unwrap())).unwrap();
    assert!(payload.contains("\"step\":0"));
    bad["payload"] = encode_std(payload.replace("\"step\":0", "\"step\":1").as_bytes()).into();
    let file = envelope_file(&lab, "payload.env", &[bad]);
    assert_refused(&lab, before, lab.append_envelopes(&file, &[]), &["[bad_signature]"]);

    // Signed by another registered key but labelled with w1's key id.
    let mut bad = good.clone();
    let payload = b64(good["payload"].as_str().unwrap());
    let other = assay::keyfile::read_signer(&w2.key).unwrap().sign(&pae(PAYLOAD_TYPE, &payload));
    bad["signatures"][0]["sig"] = encode_std(&other).into();
    let file = envelope_file(&lab, "other.env", &[good.clone(), bad]);
    assert_refused(&lab, before, lab.append_envelopes(&file, &[]), &["line 2", "[bad_signature]"]);

    // The untouched envelope is accepted.
    let file = envelope_file(&lab, "good.env", &[good]);
    assert_eq!(lab.append_envelopes(&file, &["--json"]).ok().acks().len(), 1);
}

#[test]
fn unregistered_key() {
    let lab = Lab::new();
    let stranger = lab.new_key("stranger");
    let before = lab.records();
    let out = append_one(&lab, &stranger, "metric.recorded", "run/r-1", &metric("r-1", 0), &[]);
    assert_refused(&lab, before, out, &["[unknown_key]", &stranger.verifier().keyid(), "never registered"]);
    // Pre-signed by the unknown key, among good envelopes from a registered one.
    let w = lab.worker("w1");
    let before = lab.records();
    let file = envelope_file(
        &lab,
        "mixed.env",
        &[signed_envelope(&lab, &w, 0), signed_envelope(&lab, &stranger, 1)],
    );
    assert_refused(&lab, before, lab.append_envelopes(&file, &[]), &["line 2", "[unknown_key]"]);
}

#[test]
fn revoked_key() {
    let (lab, w) = lab_with_worker();
    append_one(&lab, &w, "metric.recorded", "run/r-1", &metric("r-1", 0), &[]).ok();
    let pre_signed = signed_envelope(&lab, &w, 1);
    lab.revoke(&w);
    let before = lab.records();
    let out = append_one(&lab, &w, "metric.recorded", "run/r-1", &metric("r-1", 2), &[]);
    assert_refused(&lab, before, out, &["[revoked_key]", &w.verifier().keyid()]);
    // An envelope signed before the revocation but sent after it is refused too.
    let file = envelope_file(&lab, "late.env", &[pre_signed]);
    assert_refused(&lab, before, lab.append_envelopes(&file, &[]), &["[revoked_key]"]);
    // Revocation is final.
    let out = lab.register_with(&lab.admin(), &w, &["worker"]);
    assert_refused(&lab, before, out, &["[key_state]", "revocation is final"]);
}

#[test]
fn role_not_allowed_for_the_type() {
    let (lab, w) = lab_with_worker();
    let before = lab.records();
    let queued = json!({"run": "r-1", "project": "p", "needs_gpu": true, "spec": {}});
    let out = append_one(&lab, &w, "run.queued", "run/r-1", &queued, &[]);
    assert_refused(&lab, before, out, &["[role_not_allowed]", "run.queued", "dispatcher"]);

    // A worker key cannot register keys, even its own kind.
    let other = lab.new_key("w9");
    let out = lab.register_with(&w.key, &other, &["worker"]);
    assert_refused(&lab, before, out, &["[role_not_allowed]", "key.registered", "admin"]);

    // Types only the ledger writes are refused from anyone else, admin included.
    let admin = lab.key("admin");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/examples/dispatch.decided.json");
    let decided: Value = serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    let out = append_one(&lab, &admin, "dispatch.decided", "run/r-0042", &decided, &[]);
    assert_refused(&lab, before, out, &["[ledger_only]", "dispatch.decided"]);
}

#[test]
fn schema_violation() {
    let (lab, w) = lab_with_worker();
    let before = lab.records();
    let cases = [
        (json!({"run": "r-1", "name": "loss", "step": -1, "value": 1.0}), "data/step"),
        (json!({"run": "r-1", "name": "loss", "step": 1, "value": "1.0"}), "data/value"),
        (json!({"run": "r-1", "name": "loss", "step": 1}), "value"),
        (json!({"run": "r-1", "name": "loss", "step": 1, "value": 1.0, "colour": "red"}), "colour"),
        (json!({"run": "-bad id", "name": "loss", "step": 1, "value": 1.0}), "data/run"),
    ];
    for (data, field) in cases {
        let subject = format!("run/{}", data["run"].as_str().unwrap());
        let out = append_one(&lab, &w, "metric.recorded", &subject, &data, &[]);
        assert_refused(&lab, before, out, &["[schema_violation]", "metric.recorded", field]);
    }
    // A type without a schema, with the v1 type it was probably meant to be.
    let out = append_one(&lab, &w, "metric.recordedd", "run/r-1", &metric("r-1", 0), &[]);
    assert_refused(
        &lab,
        before,
        out,
        &["[schema_violation]", "unknown event type", "did you mean \"metric.recorded\"?"],
    );
    // The subject the data dictates.
    let out = append_one(&lab, &w, "metric.recorded", "run/r-2", &metric("r-1", 0), &[]);
    assert_refused(&lab, before, out, &["[bad_subject]", "run/r-1"]);
    // One bad line in an NDJSON file stores none of the others.
    let mut lines: Vec<String> = metric_lines("r-1", 0, 5).lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace("\"step\":2", "\"step\":-2");
    let file = lab.write("one-bad.ndjson", lines.join("\n"));
    assert_refused(&lab, before, lab.append_ndjson(&w, &file, &[]), &["line 3", "[schema_violation]"]);
}

#[test]
fn oversize_event() {
    let lab = Lab::new();
    let d = lab.producer("disp", &["dispatcher"]);
    let before = lab.records();
    // run.queued's `spec` is open: a filler string sets the payload size to the byte.
    let line = |id: &str, filler: usize| {
        json!({
            "type": "run.queued", "subject": "run/r-big", "id": id, "time": "2025-01-01T00:00:00Z",
            "data": {"run": "r-big", "project": "p", "needs_gpu": false, "spec": {"blob": "a".repeat(filler)}},
        })
        .to_string()
    };
    let probe = lab.sign_only(&d, &line("big-1", 1000));
    let probe: Envelope = serde_json::from_str(&probe[0]).unwrap();
    let base = b64(&probe.payload).len() - 1000;
    let limit = 1 << 20;

    let over = lab.write("over.ndjson", line("big-1", limit + 1 - base) + "\n");
    assert_refused(
        &lab,
        before,
        lab.append_ndjson(&d, &over, &[]),
        &["[payload_too_large]", "1048577 bytes", "1048576"],
    );

    // Exactly at the limit is accepted.
    let at = lab.write("at.ndjson", line("big-2", limit - base) + "\n");
    let acks = lab.append_ndjson(&d, &at, &[]).ok().acks();
    assert_eq!(acks[0].0, before);
    assert_eq!(lab.records(), before + 1);
    let logged = lab.log(&["--from", &before.to_string()]);
    assert_eq!(b64(logged[0]["envelope"]["payload"].as_str().unwrap()).len(), limit);
}

#[test]
fn source_id_reused_with_other_bytes() {
    let (lab, w) = lab_with_worker();
    let first = append_one(&lab, &w, "metric.recorded", "run/r-1", &metric("r-1", 0), &["--id", "fixed-1"])
        .ok()
        .acks();
    let before = lab.records();
    let out = append_one(&lab, &w, "metric.recorded", "run/r-1", &metric("r-1", 1), &["--id", "fixed-1"]);
    let seq = format!("already names seq {}", first[0].0);
    assert_refused(&lab, before, out, &["[conflict]", "assay:key/w1", "fixed-1", &seq]);
    // Same data, same id, but a new `time`: other bytes all the same.
    let out = append_one(&lab, &w, "metric.recorded", "run/r-1", &metric("r-1", 0), &["--id", "fixed-1"]);
    assert_refused(&lab, before, out, &["[conflict]"]);
    // The same (source, id) twice with other bytes inside one request.
    let text = format!(
        "{}\n{}\n",
        json!({"type": "metric.recorded", "subject": "run/r-2", "id": "dup", "data": metric("r-2", 0)}),
        json!({"type": "metric.recorded", "subject": "run/r-2", "id": "dup", "data": metric("r-2", 1)}),
    );
    let file = lab.write("dup.ndjson", text);
    assert_refused(&lab, before, lab.append_ndjson(&w, &file, &[]), &["line 2", "[conflict]"]);
}

#[test]
fn identical_bytes_again_are_idempotent() {
    let (lab, w) = lab_with_worker();
    // With id and time fixed, the CLI builds and signs the same bytes each time.
    let text: String = (0..3)
        .map(|i| {
            let line = json!({"type": "metric.recorded", "subject": "run/r-1", "id": format!("ev-{i}"),
                              "time": "2025-06-01T12:00:00Z", "data": metric("r-1", i)});
            format!("{line}\n")
        })
        .collect();
    let file = lab.write("fixed.ndjson", text);
    let first = lab.append_ndjson(&w, &file, &[]).ok().acks();
    let count = lab.records();
    let again = lab.append_ndjson(&w, &file, &[]).ok().acks();
    assert_eq!(again, first, "same seqs and digests");
    assert_eq!(lab.records(), count);

    // Pre-signed envelopes, the same bytes again, and mixed with a new one.
    let env = signed_envelope(&lab, &w, 9);
    let file = envelope_file(&lab, "one.env", std::slice::from_ref(&env));
    let once = lab.append_envelopes(&file, &[]).ok();
    let once = once.stdout.trim().to_owned();
    let twice = lab.append_envelopes(&file, &[]).ok();
    assert_eq!(twice.stdout.trim(), format!("{once} (already present)"));
    let fresh = signed_envelope(&lab, &w, 10);
    let file = envelope_file(&lab, "mixed.env", &[env, fresh]);
    let lines = lab.append_envelopes(&file, &[]).ok();
    let lines = lines.lines();
    assert_eq!(lines[0], format!("{once} (already present)"));
    assert!(
        lines[1].starts_with(&format!("seq {} ", count + 1)) && !lines[1].contains("already"),
        "{lines:?}"
    );
    assert_eq!(lab.records(), count + 2);
}

#[test]
fn the_same_envelope_twice_in_one_request_is_one_record() {
    let (lab, w) = lab_with_worker();
    let before = lab.records();
    let env = signed_envelope(&lab, &w, 0);
    let other = signed_envelope(&lab, &w, 1);
    let file = envelope_file(&lab, "twice.env", &[env.clone(), other, env]);
    let out = lab.append_envelopes(&file, &[]).ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with(&format!("seq {before} ")) && !lines[0].contains("already"), "{lines:?}");
    assert!(lines[1].starts_with(&format!("seq {} ", before + 1)), "{lines:?}");
    assert_eq!(lines[2], format!("{} (already present)", lines[0]));
    assert_eq!(lab.records(), before + 2);

    // The same through --ndjson: a line repeated with its id and time is the same bytes.
    let line = json!({"type": "metric.recorded", "subject": "run/r-1", "id": "rep",
                      "time": "2025-06-01T12:00:00Z", "data": metric("r-1", 5)});
    let file = lab.write("repeat.ndjson", format!("{line}\n{line}\n"));
    let acks = lab.append_ndjson(&w, &file, &[]).ok().acks();
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0], acks[1]);
    assert_eq!(acks[0].0, before + 2);
    assert_eq!(lab.records(), before + 3);
}

/// A mistyped event type is refused before anything is signed, naming the type it was
/// probably meant to be: in `append --type`, in an NDJSON line, and in `log --type`.
#[test]
fn a_mistyped_event_type_gets_a_suggestion() {
    let (lab, w) = lab_with_worker();
    let before = lab.records();
    let mut lines: Vec<String> = metric_lines("r-1", 0, 3).lines().map(str::to_owned).collect();
    lines[1] = lines[1].replace("metric.recorded", "metric.recroded");
    let file = lab.write("typo.ndjson", lines.join("\n"));
    assert_refused(
        &lab,
        before,
        lab.append_ndjson(&w, &file, &[]),
        &["line 2", "unknown event type \"metric.recroded\"", "did you mean \"metric.recorded\"?"],
    );
    // Nothing close: the family it names, or the whole list.
    let out = append_one(&lab, &w, "kernel.launch", "run/r-1", &metric("r-1", 0), &[]);
    assert_refused(&lab, before, out, &["--type", "kernel.launch.completed, kernel.launch.faulted"]);
    let out = append_one(&lab, &w, "banana", "run/r-1", &metric("r-1", 0), &[]);
    assert_refused(&lab, before, out, &["the v1 types are", "gpu.xid"]);
    // `--sign-only` refuses it too: nothing is printed to sign.
    let out = lab.run([
        std::ffi::OsStr::new("append"),
        std::ffi::OsStr::new("--key"),
        w.key.as_os_str(),
        std::ffi::OsStr::new("--ndjson"),
        file.as_os_str(),
        std::ffi::OsStr::new("--sign-only"),
    ]);
    let out = out.status(2);
    assert!(out.stdout.is_empty() && out.stderr.contains("did you mean"), "{}", out.stderr);

    let out = lab.db(&["log"], &["--type", "gpu.xdi"]).status(2);
    assert!(
        out.stderr.contains("--type: unknown event type \"gpu.xdi\"; did you mean \"gpu.xid\"?"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    // A projection and a role, the same way.
    let out = lab.db(&["replay"], &["--projection", "qeue"]).status(2);
    assert!(out.stderr.contains("did you mean \"queue\"?"), "{}", out.stderr);
    let other = lab.new_key("w2");
    let out = lab.register_with(&lab.admin(), &other, &["wroker"]);
    assert_refused(&lab, before, out, &["unknown role \"wroker\"", "did you mean \"worker\"?"]);
}

/// Every command that reads a ledger, pointed at a SQLite file that does not exist, says to
/// run `assay init` (exit 2) and leaves no file behind; an empty file is not a ledger either.
#[test]
fn a_missing_ledger_says_to_run_init() {
    let lab = Lab::new();
    let w = lab.worker("w1");
    let missing = lab.path("nothing-here.db");
    let db = missing.to_str().unwrap();
    let key = w.key.to_str().unwrap();
    let out_dir = lab.path("export-out");
    let export_out = out_dir.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["log", "--db", db],
        vec!["verify", "--db", db],
        vec!["checkpoint", "--db", db],
        vec!["replay", "--db", db],
        vec!["audit", "--db", db],
        vec!["queue", "--db", db],
        vec!["gpus", "--db", db],
        vec!["proof", "inclusion", "--db", db, "0"],
        vec!["proof", "consistency", "--db", db, "1", "2"],
        vec!["token", "create", "--db", db, "--name", "t"],
        vec!["export", "parquet", "--db", db, "--out", export_out],
        vec!["copy", "--from", db, "--to", "copy.db"],
        vec![
            "append",
            "--db",
            db,
            "--key",
            key,
            "--type",
            "metric.recorded",
            "--subject",
            "run/r",
            "--data",
            "{}",
        ],
        vec!["serve", "--db", db, "--listen", "127.0.0.1:0"],
        vec!["gpu", "preflight", "--db", db, "--key", key],
    ];
    let expected = format!("no ledger at {db}: create one with `assay init --db {db} ");
    for args in &commands {
        let out = lab.run(args).status(2);
        assert!(out.stderr.contains(&expected), "{args:?}: {}", out.stderr);
        assert!(!missing.exists(), "{args:?} created {db}");
    }
    assert!(!lab.path("copy.db").exists(), "copy created its destination before finding no source");
    // An empty file (`touch lab.db`) holds no ledger, and is left empty.
    std::fs::write(&missing, b"").unwrap();
    let out = lab.run(["verify", "--db", db]).status(2);
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert_eq!(std::fs::metadata(&missing).unwrap().len(), 0);
}

/// `--durability` belongs to commands that write: a read command refuses it as a usage error.
#[test]
fn durability_is_refused_where_nothing_is_written() {
    let lab = Lab::new();
    for cmd in ["log", "verify", "queue", "replay"] {
        let out = lab.db(&[cmd], &["--durability", "relaxed"]).status(2);
        assert!(out.stderr.contains("unexpected argument '--durability'"), "{cmd}: {}", out.stderr);
    }
    // A command that writes takes it.
    let w = lab.new_key("w1");
    let (admin, vkey) = (lab.admin(), w.vkey.to_string_lossy().into_owned());
    let admin = admin.to_string_lossy();
    let rest = ["--signer", &admin, "--vkey", &vkey, "--role", "worker", "--durability", "relaxed"];
    let out = lab.db(&["key", "register"], &rest).ok();
    assert!(out.stdout.starts_with("key.registered"), "{}", out.stdout);
}

/// A private key where a public one belongs says so (and names the public key beside it), and
/// the other way round; nothing is stored.
#[test]
fn a_private_key_for_a_public_one_and_back() {
    let lab = Lab::new();
    let w = lab.new_key("w1");
    let before = lab.records();
    let ledger_key = lab.keys.join("ledger.key");
    let ledger_vkey = lab.keys.join("ledger.vkey");
    let export = lab.path("export");
    std::fs::create_dir(&export).unwrap();
    let out = lab.run([
        std::ffi::OsStr::new("verify-export"),
        export.as_os_str(),
        std::ffi::OsStr::new("--ledger-key"),
        ledger_key.as_os_str(),
    ]);
    let out = out.status(2);
    let said = format!(
        "--ledger-key: {} is a private signing key, where a public verifier key belongs (use {})",
        ledger_key.display(),
        ledger_vkey.display()
    );
    assert!(out.stderr.contains(&said), "{}", out.stderr);
    let secret = std::fs::read_to_string(&ledger_key).unwrap();
    assert!(!out.stderr.contains(secret.trim()), "the private key is not repeated");

    // `key register --vkey NAME.key`.
    let swapped = Key { name: w.name.clone(), key: w.key.clone(), vkey: w.key.clone() };
    let out = lab.register_with(&lab.admin(), &swapped, &["worker"]);
    let said = format!("--vkey: {} is a private signing key", w.key.display());
    assert_refused(&lab, before, out, &[&said, &format!("(use {})", w.vkey.display())]);

    // `append --key NAME.vkey` and `key register --signer admin.vkey`.
    let swapped = Key { name: w.name.clone(), key: w.vkey.clone(), vkey: w.vkey.clone() };
    let out = append_one(&lab, &swapped, "metric.recorded", "run/r-1", &metric("r-1", 0), &[]);
    let said =
        format!("--key: {} is a public verifier key, where a private signing key belongs", w.vkey.display());
    assert_refused(&lab, before, out, &[&said, &format!("(use {})", w.key.display())]);
    let out = lab.register_with(&lab.keys.join("admin.vkey"), &w, &["worker"]);
    assert_refused(&lab, before, out, &["--signer: ", "admin.vkey is a public verifier key"]);
}

/// A metric CloudEvent by `key` as JSON text, with `id` and `time` fixed.
fn event_text(key: &Key, id: &str, time: &str) -> String {
    json!({
        "specversion": "1.0", "id": id, "source": format!("assay:key/{}", key.name),
        "type": "metric.recorded", "subject": "run/r-1", "time": time,
        "datacontenttype": "application/json", "data": metric("r-1", 0),
    })
    .to_string()
}

/// `payload` signed by `key`, as an envelope JSON object.
fn sign_bytes(key: &Key, payload: &str) -> Value {
    let signer = assay::keyfile::read_signer(&key.key).expect("a signer key");
    let env = assay_events::dsse::DecodedEnvelope::sign(payload.as_bytes().to_vec(), &signer);
    serde_json::from_slice(&env.to_json()).expect("JSON")
}

/// `env` with one more signature by `key` over its payload.
fn cosigned(env: &Value, key: &Key) -> Value {
    let signer = assay::keyfile::read_signer(&key.key).expect("a signer key");
    let payload = b64(env["payload"].as_str().unwrap());
    let mut out = env.clone();
    out["signatures"].as_array_mut().unwrap().push(
        json!({"keyid": signer.keyid(), "sig": encode_std(&signer.sign(&pae(PAYLOAD_TYPE, &payload)))}),
    );
    out
}

#[test]
fn control_characters_and_unbounded_strings_are_refused() {
    let (lab, w) = lab_with_worker();
    let before = lab.records();
    let t = "2025-06-01T12:00:00Z";
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("nul id", sign_bytes(&w, &event_text(&w, "a\u{0}b", t)), vec!["[bad_event]", "`id`", "U+0000"]),
        ("escape id", sign_bytes(&w, &event_text(&w, "a\u{1b}[2Jb", t)), vec!["[bad_event]", "U+001B"]),
        (
            "long id",
            sign_bytes(&w, &event_text(&w, &"i".repeat(10_000), t)),
            vec!["[bad_event]", "10000 characters", "limit is 256"],
        ),
        (
            "year 9999",
            sign_bytes(&w, &event_text(&w, "y9999", "9999-12-31T23:59:59Z")),
            vec!["[bad_event]", "`time`", "1970 to 2261"],
        ),
        (
            "year 0000",
            sign_bytes(&w, &event_text(&w, "y0000", "0000-01-01T00:00:00Z")),
            vec!["[bad_event]", "`time`", "1970 to 2261"],
        ),
    ];
    for (name, env, needles) in cases {
        let file = envelope_file(&lab, &format!("{}.env", name.replace(' ', "-")), &[env]);
        let out = lab.append_envelopes(&file, &[]);
        assert_refused(&lab, before, out, &needles);
    }
    // Through --type/--data too: the CLI signs what it is given, the ledger refuses it.
    let out = append_one(&lab, &w, "metric.recorded", "run/r-1", &metric("r-1", 0), &["--id", "a\u{1}b"]);
    assert_refused(&lab, before, out, &["[bad_event]", "`id`", "U+0001"]);
    // A filter no record can match is refused, naming it.
    let out = lab.db(&["log"], &["--subject", "run/r\u{1}"]).status(2);
    assert!(out.stderr.contains("subject") && out.stderr.contains("U+0001"), "{}", out.stderr);
    // An overlong type is no v1 type: the CLI says so (with the list) before the store's
    // length rule is reached; over HTTP that rule answers (tests/http/bad_input.rs).
    let out = lab.db(&["log"], &["--type", &"t".repeat(200)]).status(2);
    assert!(out.stderr.contains("--type") && out.stderr.contains("unknown event type"), "{}", out.stderr);
}

#[test]
fn envelopes_that_mean_two_things_are_refused() {
    let (lab, w) = lab_with_worker();
    let w2 = lab.worker("w2");
    let stranger = lab.new_key("stranger");
    let t = "2025-06-01T12:00:00Z";
    let good = sign_bytes(&w, &event_text(&w, "good", t));
    let file = envelope_file(&lab, "good.env", std::slice::from_ref(&good));
    lab.append_envelopes(&file, &[]).ok();
    let before = lab.records();

    let dup = event_text(&w, "dup", t).replace(r#""value":1.5"#, r#""value":1.5,"value":2.5"#);
    assert!(dup.contains(r#""value":2.5"#), "{dup}");
    let mut garbage = sign_bytes(&w, &event_text(&w, "garbage", t));
    garbage["signatures"]
        .as_array_mut()
        .unwrap()
        .push(json!({"keyid": "nobody+00000000", "sig": encode_std(&[0; 64])}));
    let mut repeated = good.clone();
    let one = repeated["signatures"][0].clone();
    repeated["signatures"] = Value::Array(vec![one; 5000]);
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("duplicate key", sign_bytes(&w, &dup), vec!["[bad_event]", "duplicate key /data/value"]),
        ("garbage co-signature", garbage, vec!["[unknown_key]", "nobody+00000000"]),
        (
            "a co-signature by an unregistered key",
            cosigned(&sign_bytes(&w, &event_text(&w, "co-1", t)), &stranger),
            vec!["[unknown_key]", "stranger"],
        ),
        ("5000 signatures", repeated, vec!["[bad_envelope]", "5000 signatures", "limit is 8"]),
        (
            "a resend with an extra valid co-signature",
            cosigned(&good, &w2),
            vec!["[conflict]", "(assay:key/w1, good)", "other bytes"],
        ),
    ];
    for (name, env, needles) in cases {
        let file = envelope_file(&lab, &format!("{}.env", name.replace(' ', "-")), &[env]);
        let out = lab.append_envelopes(&file, &[]);
        assert_refused(&lab, before, out, &needles);
    }
    // A co-signature by a registered key is fine, and its identical resend is idempotent.
    let co = cosigned(&sign_bytes(&w, &event_text(&w, "co-2", t)), &w2);
    let file = envelope_file(&lab, "co.env", &[co]);
    let first = lab.append_envelopes(&file, &["--json"]).ok().acks();
    assert_eq!(lab.append_envelopes(&file, &["--json"]).ok().acks(), first);
    assert_eq!(lab.records(), before + 1);
}

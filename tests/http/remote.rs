//! `assay serve` as a user runs it: prints its URL, serves the CLI's `--server` option
//! (`append`, `log`, `checkpoint`, `proof` give what `--db` gives), and on SIGTERM stops
//! accepting, drains the sequencer and exits 0 with every acknowledged append committed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::store;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn assay(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(dir)
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_TOKEN")
        .env_remove("ASSAY_LEDGER_KEY")
        .output()
        .expect("running assay");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn ok(o: Out) -> Out {
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    o
}

/// A ledger made by `assay init`, with a registered worker.
struct Lab {
    dir: PathBuf,
    db: String,
    worker_key: String,
    _db: store::TestDb,
    _dir: tempfile::TempDir,
}

fn lab() -> Lab {
    let tmp = tempfile::tempdir().expect("a folder");
    let dir = tmp.path().to_owned();
    let test_db = store::TestDb::new(&dir, "ledger.db");
    let db = test_db.target.clone();
    ok(assay(&dir, &["init", "--db", &db, "--origin", "t.local/assay", "--keys", "keys"]));
    ok(assay(&dir, &["key", "new", "worker-1", "--out", "keys"]));
    ok(assay(
        &dir,
        &[
            "key",
            "register",
            "--db",
            &db,
            "--signer",
            "keys/admin.key",
            "--vkey",
            "keys/worker-1.vkey",
            "--role",
            "worker",
        ],
    ));
    Lab { dir, db, worker_key: "keys/worker-1.key".to_owned(), _db: test_db, _dir: tmp }
}

/// `assay serve --listen 127.0.0.1:0`; its URL from the first line it prints.
fn serve(lab: &Lab) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["serve", "--db", &lab.db, "--listen", "127.0.0.1:0"])
        .current_dir(&lab.dir)
        .env_remove("ASSAY_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("assay serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the URL line");
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "serve printed {line:?}");
    (child, url)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn cli_server_option_matches_db() {
    let lab = lab();
    let (mut child, url) = serve(&lab);
    let d = &lab.dir;

    let one = ok(assay(
        d,
        &[
            "append",
            "--server",
            &url,
            "--key",
            &lab.worker_key,
            "--type",
            "metric.recorded",
            "--subject",
            "run/r1",
            "--data",
            r#"{"run":"r1","name":"loss","step":0,"value":2.5}"#,
            "--json",
        ],
    ));
    assert_eq!(json_lines(&one.stdout).len(), 1);
    let lines: String = (1..=30)
        .map(|s| format!("{{\"type\":\"metric.recorded\",\"subject\":\"run/r1\",\"data\":{{\"run\":\"r1\",\"name\":\"loss\",\"step\":{s},\"value\":1.5}}}}\n"))
        .collect();
    std::fs::write(d.join("m.ndjson"), lines).expect("write");
    let many = ok(assay(
        d,
        &[
            "append",
            "--server",
            &url,
            "--key",
            &lab.worker_key,
            "--ndjson",
            "m.ndjson",
            "--json",
            "--chunk",
            "7",
        ],
    ));
    let acks = json_lines(&many.stdout);
    assert_eq!(acks.len(), 30);
    let first = acks[0]["seq"].as_u64().expect("seq");
    assert!(acks.iter().enumerate().all(|(i, a)| a["seq"].as_u64() == Some(first + i as u64)));

    // Pre-signed envelopes, resent: the same records.
    let signed = ok(assay(d, &["append", "--key", &lab.worker_key, "--ndjson", "m.ndjson", "--sign-only"]));
    std::fs::write(d.join("env.jsonl"), &signed.stdout).expect("write");
    let a = ok(assay(d, &["append", "--server", &url, "--envelopes", "env.jsonl", "--json"]));
    let b = ok(assay(d, &["append", "--server", &url, "--envelopes", "env.jsonl"]));
    assert_eq!(json_lines(&a.stdout).len(), 30);
    assert!(b.stdout.lines().all(|l| l.ends_with("(already present)")), "{}", b.stdout);

    // A bad envelope: exit 2 naming the line.
    let first_line = signed.stdout.lines().next().expect("a signed envelope");
    std::fs::write(d.join("bad.jsonl"), format!("{first_line}\n{{\"payloadType\":\"x\"}}\n")).expect("write");
    let bad = assay(d, &["append", "--server", &url, "--envelopes", "bad.jsonl"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("line 2"), "{}", bad.stderr);

    // Reads through the server give what the database gives.
    let via_server = ok(assay(d, &["log", "--server", &url, "--json"]));
    let via_db = ok(assay(d, &["log", "--db", &lab.db, "--json"]));
    assert_eq!(json_lines(&via_server.stdout), json_lines(&via_db.stdout));
    let filtered =
        ok(assay(d, &["log", "--server", &url, "--type", "metric.recorded", "--from", "3", "--limit", "5"]));
    assert_eq!(filtered.stdout.lines().count(), 5);
    assert_eq!(
        ok(assay(d, &["checkpoint", "--server", &url])).stdout,
        ok(assay(d, &["checkpoint", "--db", &lab.db])).stdout
    );
    let size = json_lines(&via_db.stdout).len().to_string();
    for args in [
        vec!["proof", "inclusion", "4", "--json"],
        vec!["proof", "consistency", "3", size.as_str(), "--json"],
    ] {
        let mut s = args.clone();
        s.extend(["--server", &url]);
        let mut d_args = args.clone();
        d_args.extend(["--db", &lab.db]);
        let a: Value = serde_json::from_str(&ok(assay(d, &s)).stdout).expect("JSON");
        let b: Value = serde_json::from_str(&ok(assay(d, &d_args)).stdout).expect("JSON");
        assert_eq!(a, b, "{args:?}");
    }
    // A server refusal is exit 2 with its detail.
    let refused = assay(d, &["proof", "inclusion", "999999", "--server", &url]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("bad_range"), "{}", refused.stderr);
    // --server and --db are exclusive.
    let both = assay(d, &["log", "--server", &url, "--db", &lab.db]);
    assert_eq!(both.code, 2);
    assert!(both.stderr.contains("cannot be used with"), "{}", both.stderr);

    sigterm(&child);
    let status = child.wait().expect("serve exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_commits_everything_acknowledged() {
    let lab = lab();
    let (mut child, url) = serve(&lab);
    let lines: String = (0..2000)
        .map(|s| {
            let run = format!("r{}", s % 4);
            format!("{{\"type\":\"metric.recorded\",\"subject\":\"run/{run}\",\"data\":{{\"run\":\"{run}\",\"name\":\"loss\",\"step\":{s},\"value\":1.0}}}}\n")
        })
        .collect();
    std::fs::write(lab.dir.join("m.ndjson"), lines).expect("write");
    let signed =
        ok(assay(&lab.dir, &["append", "--key", &lab.worker_key, "--ndjson", "m.ndjson", "--sign-only"]))
            .stdout;
    let envelopes: Vec<String> = signed.lines().map(str::to_owned).collect();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let acked: Vec<String> = runtime.block_on(async {
        let client = assay::client::Client::new(&url).expect("client");
        let mut tasks = Vec::new();
        for part in envelopes.chunks(50) {
            let (client, part) = (client.clone(), part.to_vec());
            tasks.push(tokio::spawn(async move { client.append(&part).await }));
        }
        // The signal comes once the first request is acknowledged (not after a fixed delay,
        // which a loaded machine can outlast before anything is acknowledged), with the other
        // 39 still sent or in flight.
        let mut acked = Vec::new();
        let first = tasks.remove(0).await.expect("task").expect("the first append is acknowledged");
        acked.extend(first.response.records.into_iter().map(|r| r.digest));
        sigterm(&child);
        for t in tasks {
            if let Ok(Ok(a)) = t.await {
                acked.extend(a.response.records.into_iter().map(|r| r.digest));
            }
        }
        acked
    });
    let status = child.wait().expect("serve exits");
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(stderr.contains("every acknowledged append is committed"), "{stderr}");
    assert!(!acked.is_empty(), "some appends were acknowledged before the signal");
    let log = json_lines(&ok(assay(&lab.dir, &["log", "--db", &lab.db, "--json"])).stdout);
    let stored: std::collections::HashSet<&str> = log.iter().filter_map(|r| r["digest"].as_str()).collect();
    for d in &acked {
        assert!(stored.contains(d.as_str()), "acknowledged {d} is not stored");
    }
    let verify: Value =
        serde_json::from_str(&ok(assay(&lab.dir, &["verify", "--db", &lab.db, "--json"])).stdout)
            .expect("JSON");
    assert_eq!(verify["ok"], true, "{verify}");
}

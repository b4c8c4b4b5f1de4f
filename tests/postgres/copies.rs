//! The ledger on PostgreSQL: several writers on one database, the gate across them, and copies
//! between backends. Needs `ASSAY_TEST_DATABASE_URL`; under `CI=true` a missing or unreachable
//! database fails the test instead of skipping it.

use crate::support::store;

use crate::support::sql;

use std::process::{Command, Stdio};

use assay::clock::now_ns;
use assay::keyfile;
use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
use assay::store::{Durability, Store};
use serde_json::json;

fn assay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_assay")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = assay(args);
    assert!(out.status.success(), "assay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `assay init` into `url` with keys in `k`, and a key `w` registered as a worker.
fn init_with_worker(url: &str, k: &str) {
    ok(&["init", "--db", url, "--origin", "pg.test/log", "--keys", k]);
    ok(&["key", "new", "w", "--out", k]);
    ok(&[
        "key",
        "register",
        "--db",
        url,
        "--signer",
        &format!("{k}/admin.key"),
        "--vkey",
        &format!("{k}/w.vkey"),
        "--role",
        "worker",
    ]);
}

/// `assay append` of one metric to `url` as worker `w` of `k`, as a child process.
fn append_one(url: &str, k: &str, step: u32) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_assay"));
    c.args(["append", "--db", url, "--key", &format!("{k}/w.key"), "--type", "metric.recorded"])
        .args(["--subject", "run/r1", "--data"])
        .arg(format!(r#"{{"run":"r1","name":"x","step":{step},"value":1}}"#))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Advisory lock requests of Assay's writer lock class that wait, in the whole database.
async fn writers_waiting(conn: &mut sqlx::PgConnection) -> i64 {
    use sqlx::Row;
    sqlx::query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
         AND classid = 6386553::oid AND objsubid = 2",
    )
    .fetch_one(conn)
    .await
    .unwrap()
    .get::<i64, _>(0)
}

/// Two ledgers in two schemas of one database. A session holding the first one's writer lock
/// (as a server stuck behind a black-holed network holds it until its session times out) makes
/// the first one's writers wait, and only them: the second ledger appends meanwhile, and the
/// waiting append goes through once the lock is let go. (With one lock for the whole database,
/// the second append waited too and failed at the store's 10 s call bound.)
#[tokio::test(flavor = "multi_thread")]
async fn one_ledgers_writer_lock_does_not_stop_another_ledger() {
    use sqlx::{Connection, Executor};
    let Some(url_a) = store::fresh_pg("lock_a") else { return };
    let Some(url_b) = store::fresh_pg("lock_b") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ka, kb) = (dir.path().join("a"), dir.path().join("b"));
    let (ka, kb) = (ka.to_str().unwrap(), kb.to_str().unwrap());
    init_with_worker(&url_a, ka);
    init_with_worker(&url_b, kb);
    let schema_a = url_a.rsplit_once("schema=").expect("a schema parameter").1.to_owned();

    // Hold ledger A's writer lock as its writers take it: class "asy", object the schema's hash.
    let base = store::database_url();
    let mut holder = sqlx::PgConnection::connect(&base).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder.execute(format!("SET LOCAL search_path TO {schema_a}").as_str()).await.unwrap();
    holder.execute("SELECT pg_advisory_xact_lock(6386553, hashtext(current_schema()))").await.unwrap();
    let mut watcher = sqlx::PgConnection::connect(&base).await.unwrap();
    assert_eq!(writers_waiting(&mut watcher).await, 0, "no writer waits before the append starts");

    let mut blocked = append_one(&url_a, ka, 1).spawn().unwrap();
    // Bounded: the append reaches the lock within a few seconds of starting.
    let mut polls = 0;
    while writers_waiting(&mut watcher).await == 0 {
        assert!(blocked.try_wait().unwrap().is_none(), "the append to A ended instead of waiting");
        polls += 1;
        assert!(polls < 300, "the append to A never waited for the lock held on A");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let other = append_one(&url_b, kb, 1).output().unwrap();
    assert!(other.status.success(), "append to B: {}", String::from_utf8_lossy(&other.stderr));
    assert!(blocked.try_wait().unwrap().is_none(), "A's append finished while A's lock was held");

    holder.execute("COMMIT").await.unwrap();
    let out = blocked.wait_with_output().unwrap();
    assert!(out.status.success(), "append to A after the lock: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(records_of(&ok(&["verify", "--db", &url_a, "--json"])), 3);
    assert_eq!(records_of(&ok(&["verify", "--db", &url_b, "--json"])), 3);
}

fn records_of(verify_json: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(verify_json.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    v["records"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writer_processes_share_one_gap_free_log() {
    let Some(url) = store::fresh_pg("writers") else { return };
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let k = keys.to_str().unwrap();
    init_with_worker(&url, k);
    let writers = 4;
    let per_writer = 1500;
    let mut children = Vec::new();
    for w in 0..writers {
        let lines: String = (0..per_writer)
            .map(|i| format!("{{\"type\":\"metric.recorded\",\"subject\":\"run/w{w}\",\"data\":{{\"run\":\"w{w}\",\"name\":\"x\",\"step\":{i},\"value\":{i}}}}}\n"))
            .collect();
        let file = dir.path().join(format!("w{w}.ndjson"));
        std::fs::write(&file, lines).unwrap();
        children.push(
            Command::new(env!("CARGO_BIN_EXE_assay"))
                .args([
                    "append",
                    "--db",
                    &url,
                    "--key",
                    &format!("{k}/w.key"),
                    "--ndjson",
                    file.to_str().unwrap(),
                    "--chunk",
                    "100",
                    "--json",
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let mut seqs = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            seqs.push(v["seq"].as_u64().unwrap());
        }
    }
    seqs.sort_unstable();
    let expected: Vec<u64> = (2..2 + (writers * per_writer) as u64).collect();
    assert_eq!(seqs, expected, "every acknowledged seq once, no gaps");
    assert_eq!(records_of(&ok(&["verify", "--db", &url, "--json"])), 2 + (writers * per_writer) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dispatch_gate_holds_across_two_sequencers_on_one_database() {
    let Some(url) = store::fresh_pg("gate") else { return };
    let admin = keyfile::generate("admin").unwrap();
    let dispatcher = keyfile::generate("dispatcher").unwrap();
    let worker = keyfile::generate("worker").unwrap();
    let ledger_key = keyfile::generate("ledger").unwrap();
    let a_store = Store::open(&url, Durability::Full, true).await.unwrap();
    let a = Ledger::init(
        a_store.clone(),
        "pg.test/gate",
        ledger_key.clone(),
        &[admin.verifier()],
        LedgerOptions::default(),
    )
    .await
    .unwrap();
    let env = |k: &assay_events::keys::SignerKey, ty: &str, subject: String, data: serde_json::Value| {
        Incoming::Decoded(build_envelope(k, ty, Some(&subject), data, None, now_ns()))
    };
    a.append(vec![
        env(
            &admin,
            "key.registered",
            "key/dispatcher".into(),
            json!({"vkey": dispatcher.verifier().to_text(), "roles": ["dispatcher"]}),
        ),
        env(
            &admin,
            "key.registered",
            "key/worker".into(),
            json!({"vkey": worker.verifier().to_text(), "roles": ["worker"]}),
        ),
        env(
            &worker,
            "worker.preflight",
            "worker/n1".into(),
            json!({"worker": "n1", "healthy": true, "checks": [], "gpus": ["0000:01:00.0"]}),
        ),
    ])
    .await
    .unwrap();
    let runs: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    let queued = runs
        .iter()
        .map(|r| {
            env(
                &dispatcher,
                "run.queued",
                format!("run/{r}"),
                json!({"run": r, "project": "p", "needs_gpu": true, "spec": {}}),
            )
        })
        .collect();
    a.append(queued).await.unwrap();
    // A second "server": its own sequencer on the same database.
    let b = Ledger::open(
        Store::open(&url, Durability::Full, false).await.unwrap(),
        ledger_key,
        LedgerOptions::default(),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let ledger = if i % 2 == 0 { a.clone() } else { b.clone() };
        let e = env(
            &dispatcher,
            "dispatch.requested",
            format!("run/{run}"),
            json!({"run": run, "worker": "n1", "gpu": "0000:01:00.0"}),
        );
        tasks.push(tokio::spawn(async move { ledger.append(vec![e]).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    a.shutdown().await;
    b.shutdown().await;
    let decided = a_store.records_filtered(0, 1000, Some("dispatch.decided"), None).await.unwrap();
    assert_eq!(decided.len(), runs.len());
    let accepted = decided.iter().filter(|r| r.to_record().unwrap().event.data["accepted"] == true).count();
    assert_eq!(accepted, 1, "exactly one acceptance across both sequencers");
    let report = assay::verify::verify(&a_store, None, |_, _| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_sqlite_to_postgres_and_back_keeps_every_checkpoint() {
    let Some(url) = store::fresh_pg("copy") else { return };
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    ok(&["demo", "--dir", demo.to_str().unwrap(), "--runs", "5"]);
    let src = demo.join("assay.db");
    let src = src.to_str().unwrap();
    ok(&["copy", "--from", src, "--to", &url]);
    let back = dir.path().join("back.db");
    ok(&["copy", "--from", &url, "--to", back.to_str().unwrap()]);
    for db in [&url, back.to_str().unwrap()] {
        assert_eq!(
            ok(&["checkpoint", "--db", db]),
            ok(&["checkpoint", "--db", src]),
            "same signed checkpoint"
        );
        assert_eq!(
            ok(&["replay", "--db", db, "--digest-only"]),
            ok(&["replay", "--db", src, "--digest-only"]),
            "same projections"
        );
    }
    // A copy refuses a destination that already holds a ledger.
    let again = assay(&["copy", "--from", src, "--to", &url]);
    assert_eq!(again.status.code(), Some(2));
}

/// A SQLite ledger holding U+0000 in a column (as ledgers written before the ledger refused
/// control characters could) is refused by `assay copy` to PostgreSQL with a sentence naming
/// the record, not a database error.
#[test]
fn copy_to_postgres_names_a_record_it_cannot_store() {
    let Some(url) = store::fresh_pg("copy_nul") else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let src = src.to_str().unwrap();
    let keys = dir.path().join("keys");
    ok(&["init", "--db", src, "--origin", "pg.test/nul", "--keys", keys.to_str().unwrap()]);
    let mut db = sql::Db::open(src);
    assert_eq!(db.exec("UPDATE records SET event_id = 'a' || char(0) || 'b' WHERE seq = 0"), 1);
    db.close();
    let out = assay(&["copy", "--from", src, "--to", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("record 0: its event_id holds U+0000"), "{stderr}");
}

/// One source of truth for the two dialects: every PostgreSQL migration is its SQLite twin with
/// the documented type mapping (INTEGER → BIGINT, BLOB → BYTEA, no WITHOUT ROWID).
#[test]
fn postgres_migrations_are_the_sqlite_ones_in_dialect() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/sql");
    let mut names: Vec<_> =
        std::fs::read_dir(root.join("sqlite")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        let sqlite = std::fs::read_to_string(root.join("sqlite").join(&name)).unwrap();
        let postgres = std::fs::read_to_string(root.join("postgres").join(&name))
            .unwrap_or_else(|e| panic!("schemas/sql/postgres/{}: {e}", name.to_string_lossy()));
        let translated = sqlite
            .replace("INTEGER PRIMARY KEY CHECK (id = 0)", "BIGINT PRIMARY KEY CHECK (id = 0)")
            .replace("INTEGER", "BIGINT")
            .replace("BLOB", "BYTEA")
            .replace(") WITHOUT ROWID;", ");");
        assert_eq!(postgres, translated, "{} differs beyond the dialect mapping", name.to_string_lossy());
    }
}

/// A database (or schema) without a ledger is refused with the advice to run `assay init`, and
/// left as it was: opening runs no migration there.
#[test]
fn a_schema_without_a_ledger_is_refused_and_left_empty() {
    let Some(url) = store::fresh_pg("noledger") else { return };
    let (base, schema) = url.split_once("?schema=").expect("a schema URL");
    store::run_sql(base, &format!("CREATE SCHEMA {schema}")).expect("an empty schema");
    for args in [vec!["verify", "--db", url.as_str()], vec!["log", "--db", url.as_str()]] {
        let out = assay(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("no ledger at") && stderr.contains("assay init"), "{args:?}: {stderr}");
    }
    let tables = format!(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = '{schema}') \
         THEN RAISE EXCEPTION 'tables were created in {schema}'; END IF; END $$"
    );
    store::run_sql(base, &tables).expect("no table in the schema");
    store::run_sql(base, &format!("DROP SCHEMA {schema} CASCADE")).expect("dropped");
}

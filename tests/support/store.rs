//! Where a test ledger lives. `ASSAY_TEST_STORE` chooses the backend for the whole ledger test
//! suite: `sqlite` (the default) puts each ledger in a file of the test's temporary folder;
//! `postgres` puts it in a fresh schema of the database at `ASSAY_TEST_DATABASE_URL`, dropped
//! when the test passes (kept, and named on stderr, when it fails, for inspection).
//!
//! With `postgres` chosen explicitly, a missing URL or an unreachable database fails the test:
//! the run was asked to exercise PostgreSQL, so passing without it would be a lie.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `ASSAY_TEST_STORE`, parsed; an unknown value fails loudly rather than silently testing SQLite.
pub fn backend() -> Backend {
    match std::env::var("ASSAY_TEST_STORE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => panic!("ASSAY_TEST_STORE={other:?}: expected sqlite or postgres"),
    }
}

pub fn is_postgres() -> bool {
    backend() == Backend::Postgres
}

/// The base URL of the test database (no schema); panics when it is not set.
pub fn database_url() -> String {
    std::env::var("ASSAY_TEST_DATABASE_URL")
        .expect("ASSAY_TEST_STORE=postgres needs ASSAY_TEST_DATABASE_URL (a postgres:// URL)")
}

/// One ledger's database: `target` is what `--db` and `Store::open` take.
pub struct TestDb {
    pub target: String,
    /// (base URL, schema) of a PostgreSQL ledger, dropped with this value.
    schema: Option<(String, String)>,
}

impl TestDb {
    /// A new, empty ledger location: `dir/file` for SQLite, a fresh schema for PostgreSQL.
    pub fn new(dir: &Path, file: &str) -> TestDb {
        match backend() {
            Backend::Sqlite => TestDb { target: dir.join(file).to_string_lossy().into_owned(), schema: None },
            Backend::Postgres => {
                let base = database_url();
                let schema = fresh_schema_name();
                // A leftover of an earlier run with the same process id would not be empty.
                run_sql(&base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .unwrap_or_else(|e| panic!("PostgreSQL at ASSAY_TEST_DATABASE_URL: {e}"));
                let sep = if base.contains('?') { '&' } else { '?' };
                TestDb { target: format!("{base}{sep}schema={schema}"), schema: Some((base, schema)) }
            }
        }
    }

    /// A SQLite ledger at `path`, whatever the suite's backend (for tests of SQLite itself,
    /// e.g. on a full disk).
    pub fn sqlite_at(path: &Path) -> TestDb {
        TestDb { target: path.to_string_lossy().into_owned(), schema: None }
    }

    /// The SQLite ledger at `path` as a test ledger: itself for SQLite; for PostgreSQL, copied
    /// (`assay copy`) into a fresh schema, so ledgers built by `assay demo` (which writes SQLite)
    /// are tested on PostgreSQL too.
    pub fn from_sqlite(path: &Path) -> TestDb {
        match backend() {
            Backend::Sqlite => TestDb { target: path.to_string_lossy().into_owned(), schema: None },
            Backend::Postgres => {
                let db = TestDb::new(path.parent().unwrap_or(path), "unused");
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_assay"))
                    .arg("copy")
                    .arg("--from")
                    .arg(path)
                    .arg("--to")
                    .arg(&db.target)
                    .env_remove("ASSAY_DB")
                    .output()
                    .expect("running assay copy");
                assert!(
                    out.status.success(),
                    "assay copy {} to PostgreSQL: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                db
            }
        }
    }

    /// [`TestDb::from_sqlite`] for a SQLite ledger that many tests of this process copy (a
    /// fixture built once, copied per test, each copy's `ledger_key_path` setting pointed at its
    /// own `ledger_key`; the caller has already set it in the SQLite file). For SQLite: the file
    /// itself. For PostgreSQL: the first call for `name` copies it by `assay copy` (verbatim and
    /// verified) into a template schema; every call gets a fresh schema holding the template's
    /// tables, copied row for row inside the server, and sets its key setting there. An `assay
    /// copy` process per test was most of the PostgreSQL rerun's extra CPU in the tamper tests
    /// (it verifies the whole ledger each time); every test still verifies its own ledger.
    pub fn from_sqlite_shared(name: &str, path: &Path, ledger_key: &Path) -> TestDb {
        use std::collections::BTreeMap;
        use std::sync::{Arc, Mutex, OnceLock};
        if backend() == Backend::Sqlite {
            return TestDb::from_sqlite(path);
        }
        // Never dropped: the template lives as long as the process. Schemas of ended
        // processes are dropped by the first template a later process makes.
        static TEMPLATES: Mutex<BTreeMap<String, Arc<OnceLock<String>>>> = Mutex::new(BTreeMap::new());
        let once = TEMPLATES.lock().expect("the templates").entry(name.to_owned()).or_default().clone();
        let base = database_url();
        let template = once.get_or_init(|| {
            drop_templates_of_ended_processes(&base);
            let mut made = TestDb::from_sqlite(path);
            let (_, schema) = made.schema.take().expect("a PostgreSQL schema");
            let template = format!("t_tmpl_{}_{}", std::process::id(), template_number());
            run_sql(
                &base,
                &format!(
                    "DROP SCHEMA IF EXISTS {template} CASCADE; ALTER SCHEMA {schema} RENAME TO {template}"
                ),
            )
            .unwrap_or_else(|e| panic!("naming the template schema: {e}"));
            template
        });
        let db = TestDb::new(path.parent().unwrap_or(path), "unused");
        let (_, schema) = db.schema.as_ref().expect("a PostgreSQL schema");
        let key = ledger_key.to_string_lossy().replace('\'', "''");
        let sql = format!(
            "{}; UPDATE {schema}.settings SET value = '{key}' WHERE name = 'ledger_key_path'",
            copy_schema_sql(template, schema)
        );
        run_sql(&base, &sql).unwrap_or_else(|e| panic!("copying the template schema {template}: {e}"));
        let set = format!("settings WHERE name = 'ledger_key_path' AND value = '{key}'");
        assert_eq!(count_rows(&db.target, &set), Ok(1), "the copy names its own ledger key");
        db
    }

    /// PostgreSQL: a fresh schema holding a copy of this ledger's tables, row for row, made
    /// inside the server (verbatim by construction, as a SQLite file copied as it lies); `None`
    /// for SQLite, whose callers copy the file.
    pub fn pg_copy(&self, dir: &Path) -> Option<TestDb> {
        let (base, from) = self.schema.as_ref()?;
        let db = TestDb::new(dir, "unused");
        let (_, to) = db.schema.as_ref().expect("a PostgreSQL schema");
        run_sql(base, &copy_schema_sql(from, to)).unwrap_or_else(|e| panic!("copying schema {from}: {e}"));
        Some(db)
    }

    pub fn is_postgres(&self) -> bool {
        self.schema.is_some()
    }
}

/// SQL that creates schema `to` with every table of schema `from`: its columns, defaults,
/// constraints and indexes (`LIKE … INCLUDING ALL`; the ledger's tables have no triggers,
/// sequences or foreign keys), then its rows.
fn copy_schema_sql(from: &str, to: &str) -> String {
    format!(
        "CREATE SCHEMA {to};
         DO $$ DECLARE t text; BEGIN
           FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = '{from}' LOOP
             EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING ALL)', '{to}', t, '{from}', t);
             EXECUTE format('INSERT INTO %I.%I SELECT * FROM %I.%I', '{to}', t, '{from}', t);
           END LOOP;
         END $$"
    )
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else { return };
        if std::thread::panicking() {
            eprintln!("the failed test's ledger is kept in PostgreSQL schema {schema}");
            return;
        }
        // The lock timeout keeps a leftover connection (a killed child's session not yet
        // reaped) from hanging the test; the schema is then left behind, which is harmless.
        let sql = format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
        if let Err(e) = run_sql(&base, &sql) {
            eprintln!("could not drop test schema {schema}: {e}");
        }
    }
}

/// A schema name unique to this process and call.
fn fresh_schema_name() -> String {
    format!("t_lab_{}_{}", std::process::id(), template_number())
}

/// A number unique to this process and call.
fn template_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Drops the template schemas (`t_tmpl_PID_N`, [`TestDb::from_sqlite_shared`]) of processes of
/// this machine that have ended.
fn drop_templates_of_ended_processes(base: &str) {
    let base = base.to_owned();
    let names: Vec<String> = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&base).await.expect("the test database");
            let sql = "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 't\\_tmpl\\_%'";
            let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut conn).await.expect("the schemas");
            conn.close().await.expect("closing");
            names
        })
    })
    .join()
    .expect("the SQL thread");
    for name in names {
        let pid = name.strip_prefix("t_tmpl_").and_then(|rest| rest.split('_').next());
        let ended = pid
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
        if ended {
            let _ = run_sql(
                &database_url(),
                &format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {name} CASCADE"),
            );
        }
    }
}

/// Runs SQL (one or more statements, no parameters) on its own thread and runtime, so it works
/// from synchronous tests, async tests and `Drop` alike.
pub fn run_sql(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::PgConnection::connect(&url).await.map_err(|e| e.to_string())?;
            conn.execute(sql.as_str()).await.map_err(|e| e.to_string())?;
            conn.close().await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_owned())?
}

/// Rows of `table` in the schema a `…?schema=NAME` ledger URL names, counted from a session of
/// its own (outside any transaction in flight: an upload not yet committed counts nothing).
pub fn count_rows(db: &str, table: &str) -> Result<i64, String> {
    let (base, schema) = db.split_once("?schema=").ok_or("not a URL with ?schema=")?;
    let (base, sql) = (base.to_owned(), format!("SELECT count(*) FROM \"{schema}\".{table}"));
    std::thread::spawn(move || {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&base).await.map_err(|e| e.to_string())?;
            let count: i64 =
                sqlx::query_scalar(&sql).fetch_one(&mut conn).await.map_err(|e| e.to_string())?;
            conn.close().await.map_err(|e| e.to_string())?;
            Ok(count)
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_owned())?
}

/// Waits (at most `bound`) until no session named `application_name` is left on the server of
/// `db` (a ledger URL). A client killed with SIGKILL may have sent a COMMIT its session is still
/// running: the server finishes it, then finds the client gone and ends the session. Only then
/// does a read see everything the killed process will ever have written.
pub fn wait_sessions_gone(
    db: &str,
    application_name: &str,
    bound: std::time::Duration,
) -> Result<(), String> {
    let base = db.split_once('?').map_or(db, |(base, _)| base).to_owned();
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";
    let name = application_name.to_owned();
    std::thread::spawn(move || {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&base).await.map_err(|e| e.to_string())?;
            let deadline = std::time::Instant::now() + bound;
            loop {
                let left: i64 = sqlx::query_scalar(sql)
                    .bind(&name)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                if left == 0 {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!("{left} session(s) named {name} still open after {bound:?}"));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            conn.close().await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_owned())?
}

/// Says why a PostgreSQL test does not run, past libtest's capture of `eprintln!` (as
/// `support/skip.rs` does; this file is included on its own by some binaries).
fn say_skipped(name: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {name} (PostgreSQL): {reason}");
}

/// A URL for a fresh schema `t_NAME_PID` of the test database, for the PostgreSQL-only tests;
/// None to skip when no database is configured or reachable, except under `CI=true`, where
/// that fails the test.
pub fn fresh_pg(name: &str) -> Option<String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(base) = std::env::var("ASSAY_TEST_DATABASE_URL") else {
        assert!(!in_ci, "CI=true but ASSAY_TEST_DATABASE_URL is not set");
        say_skipped(name, "ASSAY_TEST_DATABASE_URL is not set");
        return None;
    };
    let schema = format!("t_{name}_{}", std::process::id());
    if let Err(e) = run_sql(&base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")) {
        assert!(!in_ci, "CI=true but PostgreSQL at ASSAY_TEST_DATABASE_URL is unreachable: {e}");
        say_skipped(name, &format!("PostgreSQL unreachable: {e}"));
        return None;
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}schema={schema}"))
}

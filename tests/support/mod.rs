//! Shared helpers of the CLI tests: a ledger in a temporary folder driven through the real
//! `assay` binary ([`Lab`]), an independent recomputation of the tree from `assay log --json`
//! ([`leaf_hashes_from_log`]), and direct access to the ledger's tables for tampering ([`sql`]).
//! The ledger is a SQLite file or a PostgreSQL schema, as `ASSAY_TEST_STORE` says ([`store`]).

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod blobs;
pub mod cluster;
pub mod demo;
pub mod export;
pub mod http;
pub mod runner;
pub mod skip;
pub mod sql;
pub mod store;
pub mod witness;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use assay_events::dsse::Envelope;
use assay_events::keys::VerifierKey;
use assay_events::merkle::leaf_hash;
use assay_events::record::Record;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The origin every test ledger is initialized with.
pub const ORIGIN: &str = "t.local/assay";

/// The `assay` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_assay")
}

/// A command line for the binary, isolated from the caller's environment.
pub fn command() -> Command {
    let mut c = Command::new(bin());
    c.env_remove("ASSAY_DB").env_remove("ASSAY_LEDGER_KEY").env_remove("ASSAY_LOG");
    c
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for failure messages.
    pub cmdline: String,
}

impl Out {
    pub fn from_output(cmdline: String, o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
            cmdline,
        }
    }

    /// Asserts exit status 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Out {
        self.status(0)
    }

    /// Asserts the exit status and returns self.
    #[track_caller]
    pub fn status(self, code: i32) -> Out {
        assert_eq!(
            self.code, code,
            "`{}` exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// stdout parsed as one JSON value per line.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The `{"seq","digest"}` acknowledgements of `append --json`.
    #[track_caller]
    pub fn acks(&self) -> Vec<(u64, String)> {
        self.json_lines().iter().map(ack_of).collect()
    }
}

/// One `{"seq":N,"digest":"hex"}` line.
#[track_caller]
pub fn ack_of(v: &Value) -> (u64, String) {
    let seq = v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"));
    let digest = v["digest"].as_str().unwrap_or_else(|| panic!("no digest in {v}")).to_owned();
    assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()), "digest {digest:?}");
    (seq, digest)
}

/// `assay verify --json` as parsed, with the exit status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Verified {
    pub ok: bool,
    pub records: u64,
    pub first_bad_seq: Option<u64>,
    /// The head field that disagrees with the log, when that is the failure.
    #[serde(default)]
    pub head_field: Option<String>,
    pub reason: Option<String>,
    #[serde(skip)]
    pub code: i32,
}

/// A producer key written by `assay key new`.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub key: PathBuf,
    pub vkey: PathBuf,
}

impl Key {
    pub fn verifier(&self) -> VerifierKey {
        read_verifier(&self.vkey)
    }
}

pub fn read_verifier(path: &Path) -> VerifierKey {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    VerifierKey::parse(text.trim()).expect("a verifier key")
}

/// The folder `CARGO_TARGET_TMPDIR/fixtures/PID/NAME` (cargo's folder for integration tests'
/// files), made by `build` (given the path, which does not exist yet) for the first test of this
/// process that asks for `NAME`; later callers wait for it and get the same path. Fixtures that
/// cost seconds to build are built once per test process and copied for each test. The folders
/// of processes that have ended are removed when a process builds its first.
pub fn built_once(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, Once, OnceLock};
    static BUILT: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let once = BUILT.lock().expect("the fixture cache").entry(name.to_owned()).or_default().clone();
    once.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        static SWEPT: Once = Once::new();
        SWEPT.call_once(|| {
            for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                let pid = entry.file_name().to_string_lossy().into_owned();
                let ended = pid.parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
                if ended {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        });
        let folder = root.join(std::process::id().to_string()).join(name);
        // A build this process left unfinished (a panic mid-build) is built again.
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(folder.parent().expect("a parent")).expect("the fixture cache folder");
        build(&folder);
        folder
    })
    .clone()
}

/// Copies a lab that `assay demo` built (`from`: its ledger `assay.db`, `keys/`, evidence) to
/// `to` (which must not exist), the folder as it lies, and points the copy's `ledger_key_path`
/// setting at the copy's own `keys/ledger.key`; the copy's ledger file.
pub fn copy_lab(from: &Path, to: &Path) -> PathBuf {
    copy_folder(from, to);
    let file = to.join("assay.db");
    let key = std::fs::canonicalize(to.join("keys/ledger.key")).expect("the copy's ledger key");
    point_ledger_key(&file, &key, "the demo names its ledger key in its settings");
    file
}

/// Points the `ledger_key_path` setting of the SQLite ledger `file` (a copy) at `key`; `held`
/// says why the setting must be there.
fn point_ledger_key(file: &Path, key: &Path, held: &str) {
    let set = format!(
        "UPDATE settings SET value = '{}' WHERE name = 'ledger_key_path'",
        key.to_string_lossy().replace('\'', "''")
    );
    // On a thread of its own: `sql::Db` runs its own runtime, and async tests call this.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut settings = sql::Db::open(&file.to_string_lossy());
            assert_eq!(settings.exec(&set), 1, "{held}");
            settings.close();
        });
    });
}

/// Copies the folder `from` to `to` (which must not exist), files and folders only.
pub fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder");
    for entry in std::fs::read_dir(from).expect("reading a folder") {
        let entry = entry.expect("a folder entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("a file type").is_dir() {
            copy_folder(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
        }
    }
}

/// A ledger initialized by `assay init` in a fresh temporary folder (keys and files) and a
/// fresh database (`DIR/ledger.db`, or a PostgreSQL schema under `ASSAY_TEST_STORE=postgres`).
pub struct Lab {
    /// What `--db` takes: the SQLite file's path or the schema's URL.
    pub db: String,
    pub keys: PathBuf,
    /// Dropped before the folder: a PostgreSQL schema goes with the lab.
    store: store::TestDb,
    dir: TempDir,
}

/// `assay serve` on this lab's ledger, on a port of loopback; killed when dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lab {
    /// Starts `assay serve --db DB --listen 127.0.0.1:0` and waits for the URL it prints.
    pub fn serve(&self) -> Served {
        self.serve_with(&[])
    }

    /// [`Lab::serve`] with more arguments.
    pub fn serve_with(&self, extra: &[&str]) -> Served {
        use std::io::{BufRead, BufReader};
        let mut child = command()
            .args(["serve", "--db"])
            .arg(&self.db)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("assay serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the server prints its URL");
        let url = first.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
        Served { child, url }
    }

    /// `assay init --db DB --origin t.local/assay --keys DIR/keys`.
    pub fn new() -> Lab {
        Lab::init_in(|dir| store::TestDb::new(dir, "ledger.db"))
    }

    /// [`Lab::new`] in a SQLite file whatever the suite's backend: a fixture for
    /// [`Lab::save_to`].
    pub fn new_sqlite() -> Lab {
        Lab::init_in(|dir| store::TestDb::sqlite_at(&dir.join("ledger.db")))
    }

    fn init_in(store: impl FnOnce(&Path) -> store::TestDb) -> Lab {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = store(dir.path());
        let db = store.target.clone();
        let keys = dir.path().join("keys");
        let lab = Lab { db, keys, store, dir };
        let out = lab
            .run([
                OsStr::new("init"),
                OsStr::new("--db"),
                OsStr::new(&lab.db),
                OsStr::new("--origin"),
                OsStr::new(ORIGIN),
                OsStr::new("--keys"),
                lab.keys.as_os_str(),
            ])
            .ok();
        assert!(out.stdout.starts_with("initialized "), "init said: {}", out.stdout);
        lab
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of the SQLite lab folder `from` ([`Lab::save_to`]: `ledger.db` and its write-ahead
    /// log, `keys/`) in a fresh temporary folder, its ledger's key setting pointed at the copy's
    /// own key; under `ASSAY_TEST_STORE=postgres` the ledger is then copied (`assay copy`, which
    /// verifies) into a fresh schema and used there. The copy shares nothing with `from`.
    pub fn copy_of_saved(from: &Path) -> Lab {
        let dir = tempfile::tempdir().expect("a temporary folder");
        copy_folder(from, dir.path());
        let file = dir.path().join("ledger.db");
        let keys = dir.path().join("keys");
        let key = std::fs::canonicalize(keys.join("ledger.key")).expect("the copy's ledger key");
        point_ledger_key(&file, &key, "`assay init` names the ledger key in its settings");
        let store = store::TestDb::from_sqlite_shared(&from.to_string_lossy(), &file, &key);
        Lab { db: store.target.clone(), keys, store, dir }
    }

    /// Copies this SQLite lab (its ledger file and write-ahead log, and `keys/`) into `to`, which
    /// must not exist, for [`Lab::copy_of_saved`]; every command the lab ran has exited, so the
    /// files are the whole ledger.
    pub fn save_to(&self, to: &Path) {
        assert!(!self.store.is_postgres(), "a saved lab is a SQLite ledger");
        std::fs::create_dir_all(to).expect("a folder");
        std::fs::copy(&self.db, to.join("ledger.db")).expect("copying the ledger file");
        let wal = format!("{}-wal", self.db);
        if Path::new(&wal).exists() {
            std::fs::copy(&wal, to.join("ledger.db-wal")).expect("copying the ledger's WAL");
        }
        copy_folder(&self.keys, &to.join("keys"));
    }

    /// A copy of this ledger in a fresh database and folder, sharing this lab's keys: one
    /// ledger built once, tampered with many ways. SQLite: the file (and its write-ahead log)
    /// copied as it lies, which is verbatim by construction and costs no process (the tamper
    /// matrix copies its base once per case); PostgreSQL: a fresh schema holding the base's
    /// tables, copied row for row inside the server ([`store::TestDb::pg_copy`]: verbatim by
    /// construction too; an `assay copy` process per case verified the whole base each time).
    pub fn copy(&self) -> Lab {
        let dir = tempfile::tempdir().expect("a temporary folder");
        if let Some(store) = self.store.pg_copy(dir.path()) {
            return Lab { db: store.target.clone(), keys: self.keys.clone(), store, dir };
        }
        let store = store::TestDb::new(dir.path(), "copy.db");
        let lab = Lab { db: store.target.clone(), keys: self.keys.clone(), store, dir };
        // No process holds the base open here (every command the lab ran has exited), so the
        // file and its WAL are the whole ledger; SQLite replays the WAL on open.
        std::fs::copy(&self.db, &lab.db).expect("copying the ledger file");
        let wal = format!("{}-wal", self.db);
        if Path::new(&wal).exists() {
            std::fs::copy(&wal, format!("{}-wal", lab.db)).expect("copying the ledger's WAL");
        }
        lab
    }

    pub fn ledger_key(&self) -> PathBuf {
        self.keys.join("ledger.key")
    }

    /// A path inside the lab's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file into the lab's folder.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("writing a test file");
        p
    }

    /// Runs `assay ARGS…` (no --db added).
    pub fn run<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = command();
        c.args(args).current_dir(self.dir.path());
        let cmdline = format!("{c:?}");
        Out::from_output(cmdline, c.output().expect("running the assay binary"))
    }

    /// Runs `assay SUBCOMMAND… --db DB REST…` where `sub` are the words before the options.
    pub fn db<S: AsRef<OsStr>>(&self, sub: &[&str], rest: &[S]) -> Out {
        let mut args: Vec<&OsStr> = sub.iter().map(OsStr::new).collect();
        args.push(OsStr::new("--db"));
        args.push(OsStr::new(&self.db));
        args.extend(rest.iter().map(AsRef::as_ref));
        self.run(args)
    }

    pub fn admin(&self) -> PathBuf {
        self.keys.join("admin.key")
    }

    pub fn ledger_vkey(&self) -> VerifierKey {
        read_verifier(&self.keys.join("ledger.vkey"))
    }

    /// `assay key new NAME --out KEYS`.
    pub fn new_key(&self, name: &str) -> Key {
        let out = self
            .run([
                OsStr::new("key"),
                OsStr::new("new"),
                OsStr::new(name),
                OsStr::new("--out"),
                self.keys.as_os_str(),
            ])
            .ok();
        let key = Key {
            name: name.to_owned(),
            key: self.keys.join(format!("{name}.key")),
            vkey: self.keys.join(format!("{name}.vkey")),
        };
        assert_eq!(out.stdout.trim(), key.verifier().to_text(), "key new prints the verifier key");
        key
    }

    /// `assay key register --signer ADMIN --vkey KEY --role R…`; returns the output.
    pub fn register_with(&self, signer: &Path, key: &Key, roles: &[&str]) -> Out {
        let mut rest: Vec<&OsStr> =
            vec![OsStr::new("--signer"), signer.as_os_str(), OsStr::new("--vkey"), key.vkey.as_os_str()];
        for r in roles {
            rest.push(OsStr::new("--role"));
            rest.push(OsStr::new(r));
        }
        self.db(&["key", "register"], &rest)
    }

    /// Registers with the lab's admin key; asserts success.
    pub fn register(&self, key: &Key, roles: &[&str]) {
        let out = self.register_with(&self.admin(), key, roles).ok();
        assert!(
            out.stdout.starts_with(&format!("key.registered {}", key.verifier().keyid())),
            "{}",
            out.stdout
        );
    }

    /// `assay key revoke`; asserts success.
    pub fn revoke(&self, key: &Key) {
        let out = self
            .db(
                &["key", "revoke"],
                &[
                    OsStr::new("--signer"),
                    self.admin().as_os_str(),
                    OsStr::new("--vkey"),
                    key.vkey.as_os_str(),
                ],
            )
            .ok();
        assert!(out.stdout.starts_with(&format!("key.revoked {}", key.verifier().keyid())), "{}", out.stdout);
    }

    /// A key written earlier into the keys folder.
    pub fn key(&self, name: &str) -> Key {
        let key = Key {
            name: name.to_owned(),
            key: self.keys.join(format!("{name}.key")),
            vkey: self.keys.join(format!("{name}.vkey")),
        };
        assert!(key.key.is_file() && key.vkey.is_file(), "no key {name}");
        key
    }

    /// A new key registered with `roles`.
    pub fn producer(&self, name: &str, roles: &[&str]) -> Key {
        let key = self.new_key(name);
        self.register(&key, roles);
        key
    }

    /// A new key registered as a worker.
    pub fn worker(&self, name: &str) -> Key {
        self.producer(name, &["worker"])
    }

    /// `assay append --key KEY --ndjson FILE --json EXTRA…` (exit status not checked).
    pub fn append_ndjson(&self, key: &Key, file: &Path, extra: &[&str]) -> Out {
        let mut rest: Vec<&OsStr> = vec![
            OsStr::new("--key"),
            key.key.as_os_str(),
            OsStr::new("--ndjson"),
            file.as_os_str(),
            OsStr::new("--json"),
        ];
        rest.extend(extra.iter().map(OsStr::new));
        self.db(&["append"], &rest)
    }

    /// Writes `n` metric lines for `run` (steps from `first_step`) and appends them; returns the acks.
    #[track_caller]
    pub fn append_metrics(&self, key: &Key, run: &str, first_step: u64, n: u64) -> Vec<(u64, String)> {
        let file = self.write(&format!("{run}-{first_step}-{n}.ndjson"), metric_lines(run, first_step, n));
        let acks = self.append_ndjson(key, &file, &[]).ok().acks();
        assert_eq!(acks.len() as u64, n);
        acks
    }

    /// `assay append --envelopes FILE EXTRA…`.
    pub fn append_envelopes(&self, file: &Path, extra: &[&str]) -> Out {
        let mut rest: Vec<&OsStr> = vec![OsStr::new("--envelopes"), file.as_os_str()];
        rest.extend(extra.iter().map(OsStr::new));
        self.db(&["append"], &rest)
    }

    /// `assay append --key KEY --ndjson FILE --sign-only`: the signed envelope lines.
    #[track_caller]
    pub fn sign_only(&self, key: &Key, ndjson: &str) -> Vec<String> {
        let file = self.write("sign-only-input.ndjson", ndjson);
        let out = self
            .run([
                OsStr::new("append"),
                OsStr::new("--key"),
                key.key.as_os_str(),
                OsStr::new("--ndjson"),
                file.as_os_str(),
                OsStr::new("--sign-only"),
            ])
            .ok();
        out.lines().into_iter().map(str::to_owned).collect()
    }

    /// `assay verify --json EXTRA…`, parsed, with the exit status.
    #[track_caller]
    pub fn verify(&self, extra: &[&Path]) -> Verified {
        let mut rest: Vec<&OsStr> = vec![OsStr::new("--json")];
        for p in extra {
            rest.push(OsStr::new("--checkpoint"));
            rest.push(p.as_os_str());
        }
        let out = self.db(&["verify"], &rest);
        assert!(out.code == 0 || out.code == 1, "verify exited {}: {}", out.code, out.stderr);
        let mut v: Verified = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("verify --json ({e}): {}", out.stdout));
        v.code = out.code;
        assert_eq!(v.ok, out.code == 0, "verify's exit status agrees with ok: {v:?}");
        v
    }

    /// `assay verify` (text form).
    pub fn verify_text(&self, checkpoint: Option<&Path>) -> Out {
        match checkpoint {
            Some(p) => self.db(&["verify"], &[OsStr::new("--checkpoint"), p.as_os_str()]),
            None => self.db::<&str>(&["verify"], &[]),
        }
    }

    /// Asserts `verify` passes and returns the record count.
    #[track_caller]
    pub fn records(&self) -> u64 {
        let v = self.verify(&[]);
        assert!(v.ok, "verify failed: {v:?}");
        v.records
    }

    /// `assay log --json EXTRA…`.
    #[track_caller]
    pub fn log(&self, extra: &[&str]) -> Vec<Value> {
        let mut rest = vec!["--json"];
        rest.extend_from_slice(extra);
        self.db(&["log"], &rest).ok().json_lines()
    }

    /// `assay checkpoint`: the latest note, verbatim.
    #[track_caller]
    pub fn checkpoint(&self) -> String {
        self.db::<&str>(&["checkpoint"], &[]).ok().stdout
    }

    /// Saves the latest checkpoint note to a file, as a witness would; returns its path and body.
    #[track_caller]
    pub fn save_checkpoint(&self, name: &str) -> (PathBuf, Checkpoint) {
        let note = self.checkpoint();
        let opened =
            Checkpoint::open(&note, &self.ledger_vkey()).expect("the checkpoint opens with ledger.vkey");
        (self.write(name, &note), opened)
    }
}

/// `n` NDJSON lines of `metric.recorded` for `run`, steps `first_step..first_step + n`.
pub fn metric_lines(run: &str, first_step: u64, n: u64) -> String {
    let mut s = String::new();
    for step in first_step..first_step + n {
        let line = json!({
            "type": "metric.recorded",
            "subject": format!("run/{run}"),
            "data": {"run": run, "name": "train/loss", "step": step, "value": metric_value(step)},
        });
        s.push_str(&line.to_string());
        s.push('\n');
    }
    s
}

/// The value `metric_lines` records at `step`.
pub fn metric_value(step: u64) -> f64 {
    4.0 / (1.0 + step as f64 / 64.0)
}

/// Rebuilds every record from `assay log --json` alone (payload and signatures from the
/// envelope, received_at from its RFC 3339 text, prev hash from the previous record) and
/// returns the Merkle leaf hashes: a client's independent view of the tree.
#[track_caller]
pub fn leaf_hashes_from_log(log: &[Value]) -> Vec<Hash32> {
    let mut prev = Hash32::ZERO;
    let mut out = Vec::with_capacity(log.len());
    for (i, line) in log.iter().enumerate() {
        assert_eq!(line["seq"].as_u64(), Some(i as u64), "log is gap-free from 0");
        let env = Envelope::parse(line["envelope"].to_string().as_bytes()).expect("the envelope parses");
        let received = line["received_at"].as_str().expect("received_at");
        let received_ns = chrono::DateTime::parse_from_rfc3339(received)
            .expect("received_at is RFC 3339")
            .timestamp_nanos_opt()
            .expect("in range");
        let record = Record::new(i as u64, received_ns, env.payload, env.signatures, prev)
            .expect("the payload parses");
        assert_eq!(record.digest.to_hex(), line["digest"].as_str().expect("digest"), "digest of seq {i}");
        out.push(leaf_hash(&record.leaf()));
        prev = record.record_hash;
    }
    out
}

/// Base64 (standard) decode, for proof fields.
pub fn b64(s: &str) -> Vec<u8> {
    assay_events::b64::decode_any(s).unwrap_or_else(|e| panic!("base64 {s:?}: {e}"))
}

/// A 32-byte hash from base64.
pub fn b64_hash(s: &str) -> Hash32 {
    Hash32::from_slice(&b64(s)).expect("32 bytes")
}

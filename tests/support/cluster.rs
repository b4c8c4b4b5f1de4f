//! Helpers of the tests that run several `assay serve` processes on one PostgreSQL database:
//! a ledger made by `assay init` in a schema, server processes on port 0, producers that sign
//! as real ones do, and appenders that keep every acknowledgement they received.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assay_events::keys::SignerKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

// The HTTP helpers (and through them the store helpers), loaded once for every includer.
pub use super::http;

use http::store;
pub use http::{acks, batch, envelope};

/// Longest wait for anything a test waits on (a server to start, a follower to catch up).
pub const WAIT: Duration = Duration::from_secs(60);

/// A ledger initialized in a PostgreSQL schema, with its key folder.
pub struct Ledger {
    pub db: String,
    pub dir: TempDir,
    pub admin: SignerKey,
}

impl Ledger {
    /// `assay init --db DB --origin ORIGIN --keys DIR/keys` (an absolute key folder, so servers
    /// started anywhere find the ledger key the init recorded).
    pub fn init(db: &str, origin: &str) -> Ledger {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let keys = dir.path().join("keys");
        let out = assay(&["init", "--db", db, "--origin", origin, "--keys", &keys.to_string_lossy()]);
        assert!(out.status.success(), "assay init: {}", String::from_utf8_lossy(&out.stderr));
        let admin = assay::keyfile::read_signer(&keys.join("admin.key")).expect("the admin key");
        Ledger { db: db.to_owned(), dir, admin }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `assay verify --db DB --json`: asserts it passes; returns the record count.
    #[track_caller]
    pub fn verify(&self) -> u64 {
        let out = assay(&["verify", "--db", &self.db, "--json"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("verify --json ({e}): {text}"));
        assert!(out.status.success() && v["ok"] == true, "verify failed: {v}");
        v["records"].as_u64().expect("records")
    }

    /// `assay log --db DB --json`: (seq, digest) of every record, in order.
    #[track_caller]
    pub fn log(&self) -> Vec<(u64, String)> {
        let out = assay(&["log", "--db", &self.db, "--json"]);
        assert!(out.status.success(), "assay log: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("a JSON line");
                (v["seq"].as_u64().expect("seq"), v["digest"].as_str().expect("digest").to_owned())
            })
            .collect()
    }
}

impl Drop for Ledger {
    /// Drops the test's schema once it passed (declare servers after the ledger, so they are
    /// killed first); a failed test's schema stays for inspection.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the failed test's ledger is kept at {}", self.db);
            return;
        }
        let Some((base, rest)) = self.db.split_once("?schema=") else { return };
        let schema = rest.split('&').next().unwrap_or(rest);
        let sql = format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
        if let Err(e) = store::run_sql(base, &sql) {
            eprintln!("could not drop test schema {schema}: {e}");
        }
    }
}

pub fn assay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_LEDGER_KEY")
        .output()
        .expect("running the assay binary")
}

/// A running `assay serve` process; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub stderr: PathBuf,
}

impl Server {
    /// `assay serve --db DB --listen 127.0.0.1:0`, its stderr in `dir/NAME.stderr`; returns once
    /// it printed its URL (it accepts connections from then on).
    pub fn start(db: &str, dir: &Path, name: &str) -> Server {
        let stderr = dir.join(format!("{name}.stderr"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .env_remove("ASSAY_DB")
            .env_remove("ASSAY_LEDGER_KEY")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("a stderr file"))
            .spawn()
            .expect("spawning assay serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let url = match rx.recv_timeout(WAIT) {
            Ok(line) if line.starts_with("http://") => line.trim().to_owned(),
            got => {
                let _ = child.kill();
                panic!(
                    "{name} did not print its URL ({got:?}); stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
        };
        Server { child, url, stderr }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().expect("a client")
}

/// One HTTP reply: status, Retry-After (if any), JSON body (Null if not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub body: Value,
}

/// POST a JSON body; Err when the server could not be reached.
pub async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<Reply, reqwest::Error> {
    let r = http.post(url).header("content-type", "application/json").body(body).send().await?;
    let status = r.status();
    let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = r.text().await?;
    Ok(Reply { status, retry_after, body: serde_json::from_str(&text).unwrap_or(Value::Null) })
}

/// GET; Err when the server could not be reached.
pub async fn get(http: &reqwest::Client, url: &str) -> Result<Reply, reqwest::Error> {
    let r = http.get(url).send().await?;
    let status = r.status();
    let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = r.text().await?;
    Ok(Reply { status, retry_after, body: serde_json::from_str(&text).unwrap_or(Value::Null) })
}

/// Registers a new key with `roles` through `server` (signed by the admin); asserts 201.
pub async fn register(
    http: &reqwest::Client,
    server: &str,
    admin: &SignerKey,
    name: &str,
    roles: &[&str],
) -> SignerKey {
    let key = assay::keyfile::generate(name).expect("a key");
    let env = envelope(
        admin,
        "key.registered",
        &format!("key/{name}"),
        json!({"vkey": key.verifier().to_text(), "roles": roles}),
    );
    let r = post(http, &format!("{server}/v1/events"), env).await.expect("the server answers");
    assert_eq!(r.status, StatusCode::CREATED, "registering {name}: {}", r.body);
    key
}

/// What appenders saw, shared while they run.
#[derive(Default)]
pub struct Seen {
    /// Every acknowledged (seq, digest).
    pub acks: Mutex<Vec<(u64, String)>>,
    /// Acknowledged envelopes so far.
    pub acked: AtomicU64,
    /// 503 replies (each carried Retry-After, or the appender failed).
    pub unavailable: AtomicU64,
    /// Requests that found no server (connection refused or reset).
    pub unreachable: AtomicU64,
    /// Set to stop appenders that run until told.
    pub stop: AtomicBool,
}

/// One appender: posts batches of `batch_size` metric envelopes signed by `key` to `targets[0]`
/// (on to the next target when one stops answering), `batches` times or until `seen.stop`.
/// A 503 must carry Retry-After; the same batch is then resent (identical resends are
/// idempotent), as a client does. Any other failure status fails the test.
pub async fn appender(
    http: reqwest::Client,
    targets: Vec<String>,
    key: SignerKey,
    run: String,
    batch_size: usize,
    batches: Option<usize>,
    seen: Arc<Seen>,
) {
    let mut target = 0;
    let mut step = 0u64;
    let mut sent = 0usize;
    'batches: while batches.is_none_or(|n| sent < n) && !seen.stop.load(Ordering::Relaxed) {
        let envelopes: Vec<Vec<u8>> = (0..batch_size)
            .map(|i| {
                let s = step + i as u64;
                envelope(
                    &key,
                    "metric.recorded",
                    &format!("run/{run}"),
                    json!({"run": run, "name": "train/loss", "step": s, "value": 1.0 / (1.0 + s as f64)}),
                )
            })
            .collect();
        step += batch_size as u64;
        sent += 1;
        let body = batch(&envelopes);
        // Bounded resends of one batch: ~WAIT of 503s or unreachable servers fails the test.
        for _ in 0..(WAIT.as_millis() / 50) {
            if seen.stop.load(Ordering::Relaxed) && batches.is_none() {
                // Not acknowledged, so nothing is owed for it.
                break 'batches;
            }
            match post(&http, &format!("{}/v1/events", targets[target]), body.clone()).await {
                Ok(r) if r.status == StatusCode::CREATED || r.status == StatusCode::OK => {
                    let a = acks(&r.body);
                    assert_eq!(a.len(), batch_size, "one ack per envelope: {}", r.body);
                    seen.acked.fetch_add(a.len() as u64, Ordering::Relaxed);
                    seen.acks.lock().expect("acks").extend(a);
                    continue 'batches;
                }
                Ok(r) if r.status == StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(
                        r.retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok()),
                        "503 without a Retry-After of seconds: {:?} {}",
                        r.retry_after,
                        r.body
                    );
                    seen.unavailable.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => panic!("append to {} answered {}: {}", targets[target], r.status, r.body),
                Err(_) => {
                    seen.unreachable.fetch_add(1, Ordering::Relaxed);
                    target = (target + 1).min(targets.len() - 1);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("a batch of {run} was refused for {WAIT:?}");
    }
}

impl Seen {
    /// Tells appenders that run until told to stop, and waits for them.
    pub async fn stop_all(&self, tasks: Vec<tokio::task::JoinHandle<()>>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("an appender");
        }
    }
}

/// After an outage: waits for the server at `url` to report healthy, then for `more` appends
/// acknowledged beyond those acknowledged when it is called.
pub async fn recovers(http: &reqwest::Client, url: &str, seen: &Seen, more: u64) {
    let before = seen.acked.load(Ordering::Relaxed);
    wait_for(&format!("/healthz of {url} to say 200 again"), || async {
        health(http, url).await.is_some_and(|(s, ..)| s == StatusCode::OK)
    })
    .await;
    wait_for(&format!("{more} more acknowledged appends"), || async {
        seen.acked.load(Ordering::Relaxed) >= before + more
    })
    .await;
}

/// Nothing acknowledged lost, nothing half-written: the ledger verifies, its log is gap-free
/// and holds every acknowledged (seq, digest), and no seq was acknowledged twice. Returns the
/// log's size.
#[track_caller]
pub fn every_ack_is_in_the_log(ledger: &Ledger, seen: &Seen) -> u64 {
    let size = ledger.verify();
    let log = ledger.log();
    assert_eq!(log.len() as u64, size);
    for (i, (seq, _)) in log.iter().enumerate() {
        assert_eq!(*seq, i as u64, "the log has no gap");
    }
    let log: std::collections::HashMap<u64, String> = log.into_iter().collect();
    let acked = seen.acks.lock().expect("acks");
    let distinct: std::collections::HashSet<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(distinct.len(), acked.len(), "no seq acknowledged twice");
    for (seq, digest) in acked.iter() {
        assert_eq!(log.get(seq), Some(digest), "acknowledged seq {seq} is in the log with its digest");
    }
    size
}

/// Waits up to [`WAIT`] for `done` to hold, polling every 50 ms; panics with `what` otherwise.
pub async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "waited {WAIT:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/healthz` of a server: its status and the size it reports (None when unreachable).
pub async fn health(http: &reqwest::Client, server: &str) -> Option<(StatusCode, u64, Option<String>)> {
    let r = get(http, &format!("{server}/healthz")).await.ok()?;
    Some((r.status, r.body["size"].as_u64().unwrap_or(0), r.retry_after))
}

/// A TCP relay to PostgreSQL for network failures between one server and the database, without
/// disturbing anyone else's connections. `cut`: every connection is closed and new ones are
/// refused (accepted and closed at once). `black_hole`: connections stay open, new ones are
/// accepted, but no byte moves in either direction (a network that silently drops packets).
/// `black_hole_at` opens the black hole the moment the server sends a chosen message (say,
/// COMMIT), so a call is caught in flight rather than between calls. `restore` forwards again; bytes held back by a black hole then go through, as after a
/// healed partition.
pub struct Relay {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut; a forwarding task ends when it sees a newer generation.
    generation: Arc<AtomicU64>,
    held: Arc<AtomicBool>,
    /// Bytes whose appearance in the server-to-database stream opens the black hole.
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
}

/// How often a held or cut connection looks whether the relay changed mode.
const RELAY_TICK: Duration = Duration::from_millis(20);

impl Relay {
    pub async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a relay port");
        let addr = listener.local_addr().expect("an address");
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let held = Arc::new(AtomicBool::new(false));
        let trigger = Arc::new(Mutex::new(None));
        let (up2, generation2, held2, trigger2) =
            (up.clone(), generation.clone(), held.clone(), trigger.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let born = generation2.load(Ordering::SeqCst);
                let (generation, held, trigger) = (generation2.clone(), held2.clone(), trigger2.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let cut = async {
                        while generation.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(RELAY_TICK).await;
                        }
                    };
                    // Either side closing, or a cut, drops both sockets.
                    tokio::select! {
                        _ = pump(cr, sw, held.clone(), Some(trigger)) => {}
                        _ = pump(sr, cw, held, None) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Relay { addr, up, generation, held, trigger }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn black_hole(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Opens the black hole when the server next sends bytes containing `pattern` (those
    /// bytes are held back too).
    pub fn black_hole_at(&self, pattern: &[u8]) {
        *self.trigger.lock().expect("trigger") = Some(pattern.to_vec());
    }

    pub fn is_black_hole(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    pub fn restore(&self) {
        *self.trigger.lock().expect("trigger") = None;
        self.held.store(false, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either closes; while `held`, reads nothing and writes nothing
/// (bytes already read when the hole opened wait for it to close). Bytes containing the armed
/// `trigger` pattern open the hole before they are forwarded.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    held: Arc<AtomicBool>,
    trigger: Option<Arc<Mutex<Option<Vec<u8>>>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while held.load(Ordering::SeqCst) {
            tokio::time::sleep(RELAY_TICK).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(trigger) = &trigger {
            let mut armed = trigger.lock().expect("trigger");
            if armed.as_ref().is_some_and(|p| buf[..n].windows(p.len()).any(|w| w == p.as_slice())) {
                held.store(true, Ordering::SeqCst);
                *armed = None;
            }
        }
        while held.load(Ordering::SeqCst) {
            tokio::time::sleep(RELAY_TICK).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// host:port of a postgres:// URL (the test database's).
pub fn pg_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("a URL").1;
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split(['/', '?']).next().expect("host:port");
    let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port.parse().unwrap_or_else(|e| panic!("{host_port}: {e} (the relay needs a numeric address)"))
}

/// The same URL with its host:port replaced by `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let tail = &rest[rest.find(['/', '?']).unwrap_or(rest.len())..];
    format!("{scheme}://{user}{addr}{tail}")
}

/// `n` producer keys `p0..` registered with the worker role through the server at `url`.
pub async fn workers(http: &reqwest::Client, url: &str, admin: &SignerKey, n: usize) -> Vec<SignerKey> {
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        keys.push(register(http, url, admin, &format!("p{i}"), &["worker"]).await);
    }
    keys
}

/// One appender per key against the one server at `url`, batches of 10, runs `{prefix}{i}`,
/// until `seen.stop`.
pub fn appenders_on(
    http: &reqwest::Client,
    url: &str,
    keys: &[SignerKey],
    prefix: &str,
    seen: &Arc<Seen>,
) -> Vec<tokio::task::JoinHandle<()>> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            tokio::spawn(appender(
                http.clone(),
                vec![url.to_owned()],
                key.clone(),
                format!("{prefix}{i}"),
                10,
                None,
                seen.clone(),
            ))
        })
        .collect()
}

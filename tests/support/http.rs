//! Helpers of the HTTP tests: [`spawn_app`] starts the real service on 127.0.0.1:0 in this
//! process over a fresh ledger (genesis with an admin key) in a temporary folder, or in a fresh
//! PostgreSQL schema under `ASSAY_TEST_STORE=postgres` ([`store`]); [`Sse`] reads a
//! Server-Sent Events stream; producers sign envelopes as real ones do.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use assay::http::{ServeError, ServeOptions, Server};
use assay::ledger::{Ledger, LedgerOptions, build_envelope};
use assay::store::{Durability, Store};
use assay_events::keys::SignerKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use super::store;

/// The origin of every test ledger.
pub const ORIGIN: &str = "t.local/assay";

/// A running service over a fresh ledger.
pub struct App {
    pub url: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub store: Store,
    pub ledger_key: SignerKey,
    pub admin: SignerKey,
    /// What `--db` takes for this ledger (a file path or a schema URL).
    pub db: String,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    /// Last, so the schema is dropped after everything else of the app.
    _db: store::TestDb,
}

/// The service on 127.0.0.1:0 with default options.
pub async fn spawn_app() -> App {
    spawn_app_with(ServeOptions::default()).await
}

/// The service with `options` (its `listen` port is replaced by 0 when it is 8080).
pub async fn spawn_app_with(options: ServeOptions) -> App {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let test_db = store::TestDb::new(dir.path(), "ledger.db");
    spawn_app_on(dir, test_db, LedgerOptions::default(), options).await
}

/// The service over a fresh ledger at `test_db`, opened with `ledger_options` (`assay serve`
/// follows the store with `follow_poll_ms`), with `options`.
pub async fn spawn_app_on(
    dir: TempDir,
    test_db: store::TestDb,
    ledger_options: LedgerOptions,
    mut options: ServeOptions,
) -> App {
    if options.listen.port() == 8080 {
        options.listen.set_port(0);
    }
    let store = Store::open(&test_db.target, Durability::Relaxed, true).await.expect("a store");
    let ledger_key = assay::keyfile::generate("ledger").expect("a key");
    let admin = assay::keyfile::generate("admin").expect("a key");
    // As `assay serve` does: the ledger's own evidence store unless the test brings one, for
    // uploads and for `evidence.synced` alike.
    if options.blobs.is_none() {
        let blobs =
            assay::blobs::BlobStore::open(&test_db.target, assay::blobs::BLOB_BYTES_MAX_DEFAULT).await;
        options.blobs = Some(blobs.expect("the evidence store"));
    }
    let ledger_options =
        LedgerOptions { evidence: ledger_options.evidence.or(options.blobs.clone()), ..ledger_options };
    let ledger = Ledger::init(store.clone(), ORIGIN, ledger_key.clone(), &[admin.verifier()], ledger_options)
        .await
        .expect("genesis");
    let server = Server::bind(ledger, options).await.expect("the server binds");
    let addr = server.local_addr();
    // A server on every interface is reached on loopback.
    let url =
        if addr.ip().is_unspecified() { format!("http://127.0.0.1:{}", addr.port()) } else { server.url() };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("a client");
    let db = test_db.target.clone();
    App {
        url,
        addr,
        http,
        store,
        ledger_key,
        admin,
        db,
        dir,
        _db: test_db,
        stop: Some(stop),
        task: Some(task),
    }
}

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Stops the server gracefully and waits for the ledger to drain.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("the server task").expect("the server stops cleanly");
        }
    }

    /// Records in the store.
    pub async fn size(&self) -> u64 {
        self.store.head().await.expect("head").map_or(0, |h| h.size)
    }

    /// GET; the status and the body as JSON (Null if not JSON).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status();
        let text = r.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET; the status and the body as text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        (r.status(), r.text().await.expect("a body"))
    }

    /// POST with a content type; the status and the body as JSON (Null if not JSON).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = r.status();
        let text = r.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST application/json.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        self.post_raw(path, "application/json", body).await
    }

    /// POST /v1/events with a batch of envelopes (JSON texts).
    pub async fn append(&self, envelopes: &[Vec<u8>]) -> (StatusCode, Value) {
        self.post("/v1/events", batch(envelopes)).await
    }

    /// Appends and asserts 201; the (seq, digest) of each envelope.
    pub async fn append_ok(&self, envelopes: &[Vec<u8>]) -> Vec<(u64, String)> {
        let (status, body) = self.append(envelopes).await;
        assert_eq!(status, StatusCode::CREATED, "append: {body}");
        acks(&body)
    }

    /// A new key with `roles`, registered by the admin over HTTP.
    pub async fn key(&self, name: &str, roles: &[&str]) -> SignerKey {
        let key = assay::keyfile::generate(name).expect("a key");
        let env = envelope(
            &self.admin,
            "key.registered",
            &format!("key/{name}"),
            json!({"vkey": key.verifier().to_text(), "roles": roles}),
        );
        self.append_ok(&[env]).await;
        key
    }
}

/// The `assay` binary with `args`, isolated from the caller's `ASSAY_DB` and `ASSAY_TOKEN`:
/// (exit code, stdout, stderr).
pub fn assay_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_TOKEN")
        .output()
        .expect("running assay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `{"envelopes":[…]}` of JSON texts.
pub fn batch(envelopes: &[Vec<u8>]) -> Vec<u8> {
    let mut body = b"{\"envelopes\":[".to_vec();
    for (i, e) in envelopes.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.extend_from_slice(b"]}");
    body
}

/// The (seq, digest) of an append response.
#[track_caller]
pub fn acks(body: &Value) -> Vec<(u64, String)> {
    body["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records in {body}"))
        .iter()
        .map(|r| (r["seq"].as_u64().expect("seq"), r["digest"].as_str().expect("digest").to_owned()))
        .collect()
}

/// A signed envelope as JSON text.
pub fn envelope(key: &SignerKey, ty: &str, subject: &str, data: Value) -> Vec<u8> {
    build_envelope(key, ty, Some(subject), data, None, assay::clock::now_ns()).to_json()
}

/// A `metric.recorded` for `run` at `step`.
pub fn metric(key: &SignerKey, run: &str, step: u64) -> Vec<u8> {
    envelope(
        key,
        "metric.recorded",
        &format!("run/{run}"),
        json!({"run": run, "name": "train/loss", "step": step, "value": 1.0 / (1.0 + step as f64), "unit": "nats"}),
    )
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Where an event stream's bytes come from.
pub enum Source {
    Http(reqwest::Response),
    /// A raw HTTP/1.0 connection (close-delimited body), for a subscriber that controls its
    /// socket buffer.
    Raw(tokio::net::TcpStream),
}

/// A Server-Sent Events reader.
pub struct Sse {
    pub source: Source,
    pub buf: Vec<u8>,
    /// Comment lines (heartbeats) seen.
    pub comments: u64,
}

impl Sse {
    /// `GET url` with an optional `Last-Event-ID`; asserts 200 and text/event-stream.
    pub async fn connect(http: &reqwest::Client, url: &str, last_event_id: Option<u64>) -> Sse {
        let mut req = http.get(url);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        Sse::open(req).await
    }

    /// Sends `req` (a GET of the stream, with whatever credentials it carries); asserts 200
    /// and text/event-stream.
    pub async fn open(req: reqwest::RequestBuilder) -> Sse {
        let response = req.header("accept", "text/event-stream").send().await.expect("GET /v1/stream");
        assert_eq!(response.status(), StatusCode::OK, "stream status");
        let ct =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        Sse { source: Source::Http(response), buf: Vec::new(), comments: 0 }
    }

    /// `GET path` over HTTP/1.0 on a socket whose receive buffer is `recv_buffer` bytes.
    pub async fn connect_raw(addr: SocketAddr, path: &str, recv_buffer: u32) -> Sse {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(recv_buffer).expect("SO_RCVBUF");
        let mut stream = socket.connect(addr).await.expect("connect");
        let head = format!("GET {path} HTTP/1.0\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed before its headers");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
        Sse { source: Source::Raw(stream), buf: buf[end..].to_vec(), comments: 0 }
    }

    async fn read_more(&mut self) -> bool {
        match &mut self.source {
            Source::Http(r) => match r.chunk().await {
                Ok(Some(chunk)) => {
                    self.buf.extend_from_slice(&chunk);
                    true
                }
                _ => false,
            },
            Source::Raw(s) => {
                use tokio::io::AsyncReadExt;
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await {
                    Ok(n) if n > 0 => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// The next event (comments are counted and skipped); None when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = find_frame_end(&self.buf) {
                let frame: Vec<u8> = self.buf.drain(..end).collect();
                let text = String::from_utf8(frame).expect("UTF-8 events");
                let mut ev = SseEvent::default();
                let mut has_field = false;
                for line in text.lines() {
                    if line.is_empty() {
                        continue;
                    }
                    if line.starts_with(':') {
                        self.comments += 1;
                        continue;
                    }
                    has_field = true;
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match name {
                        "event" => ev.event = value.to_owned(),
                        "id" => ev.id = Some(value.to_owned()),
                        "data" => {
                            if !ev.data.is_empty() {
                                ev.data.push('\n');
                            }
                            ev.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if has_field {
                    return Some(ev);
                }
                continue;
            }
            if !self.read_more().await {
                return None;
            }
        }
    }
}

/// The end (past the blank line) of the first complete frame in `buf`.
fn find_frame_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2)
}

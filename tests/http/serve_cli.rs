//! `assay serve` as an operator starts it: read tokens from `--read-token-file`,
//! `--request-timeout` ending a stalled request with 408, the connection limits
//! (`--connections-max`, `--header-read-timeout-ms`, the cap fitted to `ulimit -n`), and the
//! live read model it starts with (taken from the ledger's own fold at open) equal to a replay
//! of the log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::demo;

fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

/// A server started by the binary; killed on drop.
struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn init(dir: &Path) -> String {
    let db = dir.join("ledger.db");
    let out = assay()
        .args(["init", "--origin", "t.local/assay", "--db"])
        .arg(&db)
        .arg("--keys")
        .arg(dir.join("keys"))
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    db.to_str().unwrap().to_owned()
}

fn serve(db: &str, extra: &[&str]) -> Served {
    let mut child = assay()
        .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().trim_start_matches("http://").trim_end_matches('/').to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "serve printed {line:?}");
    Served { child, addr }
}

/// Sends `request` raw and returns the status line; the server must answer within 20 s.
fn status_of(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Only the status line is needed; read until it is complete.
    while !response.contains(&b'\n') {
        let n = s.read(&mut buf).expect("an answer before the read timeout");
        assert!(n > 0, "connection closed without an answer to {request:?}");
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).lines().next().unwrap_or("").to_owned()
}

fn get(addr: &str, path: &str, token: Option<&str>) -> String {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    status_of(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"))
}

#[test]
fn read_tokens_come_from_the_operators_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# the dashboard\n  tok-dashboard-1  \n\n#tok-commented-out\ntok-grafana-2\n")
        .unwrap();
    let served = serve(&db, &["--require-read-token", "--read-token-file", tokens.to_str().unwrap()]);
    let addr = &served.addr;
    assert!(get(addr, "/v1/checkpoint", None).contains(" 401 "), "no token");
    assert!(get(addr, "/v1/checkpoint", Some("tok-dashboard-1")).contains(" 200 "), "first token, trimmed");
    assert!(get(addr, "/v1/checkpoint", Some("tok-grafana-2")).contains(" 200 "), "second token");
    assert!(get(addr, "/v1/checkpoint", Some("tok-commented-out")).contains(" 401 "), "a comment");
    assert!(get(addr, "/v1/checkpoint", Some("#tok-commented-out")).contains(" 401 "), "a comment line");
    assert!(get(addr, "/v1/checkpoint", Some("tok-nobody")).contains(" 401 "), "an unknown token");
    // Health stays open to probes.
    assert!(get(addr, "/healthz", None).contains(" 200 "), "healthz");
}

#[test]
fn a_missing_token_file_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let missing = dir.path().join("no-such-tokens");
    let out = assay()
        .args(["serve", "--db", &db, "--listen", "127.0.0.1:0", "--read-token-file"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "exit status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-tokens"), "names the file: {stderr}");
}

#[test]
fn a_stalled_request_ends_with_408() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let served = serve(&db, &["--request-timeout", "1"]);
    let addr = &served.addr;
    // A body announced but never sent: the handler waits for it until the timeout.
    let stalled = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"payload"
    );
    let status = status_of(addr, &stalled);
    assert!(status.contains(" 408 "), "stalled body: {status}");
    // The server goes on serving.
    assert!(get(addr, "/v1/checkpoint", None).contains(" 200 "), "after the timeout");
}

/// `ulimit -n 256` and 300 silent sockets: the server does not run out of descriptors (the
/// cap is fitted to the limit), so /healthz is answered at once (503 while the cap is held,
/// with Retry-After), and 200 again once the header timeout has closed the silent sockets.
#[test]
fn idle_sockets_cannot_starve_a_server_of_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" serve --db "$1" --listen 127.0.0.1:0 --header-read-timeout-ms 1500"#)
        .arg(env!("CARGO_BIN_EXE_assay"))
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let served = Served { addr: line.trim().trim_start_matches("http://").to_owned(), child };
    let addr = &served.addr;
    assert!(addr.starts_with("127.0.0.1:"), "serve printed {line:?}");
    let idle: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let status = get(addr, "/healthz", None);
    assert!(status.contains(" 200 ") || status.contains(" 503 "), "answered at once: {status}");
    let mut answer = String::new();
    if status.contains(" 503 ") {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
        let _ = s.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
            assert!(answer.contains("too_many_connections"), "{answer}");
        }
    }
    // The silent sockets are closed after the header timeout; then health is 200.
    let healthy = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        get(addr, "/healthz", None).contains(" 200 ")
    });
    assert!(healthy, "/healthz is 200 within 20 s of the idle sockets timing out");
    drop(idle);
}

#[test]
fn the_served_projections_are_a_replay_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo::copy(&dir.path().join("lab"));
    let db = db.as_str();
    let replayed = assay().args(["replay", "--db", db, "--digest-only"]).output().unwrap();
    assert!(replayed.status.success(), "replay: {}", String::from_utf8_lossy(&replayed.stderr));
    let replayed = String::from_utf8(replayed.stdout).unwrap();
    let served = serve(db, &[]);
    let mut compared = 0;
    for line in replayed.lines() {
        let (name, digest) = line.split_once(' ').expect("NAME DIGEST");
        let body: serde_json::Value =
            serde_json::from_str(&demo::get_ok(&served.addr, &format!("/v1/projections/{name}"))).unwrap();
        assert_eq!(body["digest"], digest, "{name}");
        compared += 1;
    }
    assert!(compared >= 6, "every projection compared: {replayed}");
}

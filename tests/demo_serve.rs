//! `assay demo --serve` builds the demo ledger, then serves it: the URL comes on its own line
//! once the server accepts connections, and the served audit is the demo's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// A plain HTTP/1.1 GET; returns the body.
fn get(url: &str, path: &str) -> String {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{path}: {}", response.lines().next().unwrap_or(""));
    response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

#[test]
fn demo_serve_prints_its_url_and_serves_the_demo_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["demo", "--size", "small", "--dir"])
        .arg(dir.path().join("lab"))
        .args(["--serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut headline = None;
    let mut url = None;
    for line in lines.by_ref().take(200) {
        let line = line.unwrap();
        if line.contains("canonical artifacts pass the claim/evidence audit") {
            headline = Some(line.clone());
        }
        if line.starts_with("http://") {
            url = Some(line);
            break;
        }
    }
    let url = url.expect("the URL on its own line");
    let audit: serde_json::Value = serde_json::from_str(&get(&url, "/v1/audit")).unwrap();
    let served = audit["state"]["headline"].as_str().unwrap_or_else(|| panic!("no headline in {audit}"));
    assert!(headline.unwrap().contains(served), "served headline {served}");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop: {status}");
}

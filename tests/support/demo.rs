//! The small demo lab as the tests that need a realistic ledger use it: built by `assay demo`
//! into a folder, or built and served on port 0 (`assay demo --serve`); a copy of the one built
//! once per test process ([`copy`], [`serve_copy`]: for tests of what is served, not of what
//! `assay demo` builds, each of whose builds cost about 2 CPU-seconds); and plain GETs of the
//! served API.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

/// Builds the small demo lab in `lab` (which must not exist yet); returns its ledger's path.
pub fn build(lab: &Path) -> String {
    let built = assay().args(["demo", "--size", "small", "--dir"]).arg(lab).output().unwrap();
    assert!(built.status.success(), "demo: {}", String::from_utf8_lossy(&built.stderr));
    lab.join("assay.db").to_str().expect("UTF-8 temp path").to_owned()
}

/// The small demo lab as [`build`] makes it, built once per test process and copied into `lab`
/// (which must not exist; the copy's ledger key setting names the copy's own key); returns its
/// ledger's path.
pub fn copy(lab: &Path) -> String {
    let built = super::built_once("demo-small", |folder| {
        build(folder);
    });
    let file = super::copy_lab(&built, lab);
    file.to_str().expect("UTF-8 temp path").to_owned()
}

/// `assay demo --size small --serve` on port 0 into `lab`: the child, and its stdout lines up
/// to and including the URL line (`http://…`), the last of them. (The server prints nothing
/// after the URL, so its stdout is let go.)
pub fn serve(lab: &Path) -> (Child, Vec<String>) {
    let child = assay()
        .args(["demo", "--size", "small", "--dir"])
        .arg(lab)
        .args(["--serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("assay demo --serve");
    until_url(child)
}

/// What [`serve`] serves, from a [`copy`] of the demo in `lab`: `assay serve` on port 0 with the
/// durability `assay demo --serve` opens its ledger with (the other serve options are the
/// defaults both share); the child, and its stdout lines up to the URL line (the only one).
pub fn serve_copy(lab: &Path) -> (Child, Vec<String>) {
    let db = copy(lab);
    let child = assay()
        .args(["serve", "--db", &db, "--durability", "relaxed", "--listen", "127.0.0.1:0"])
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_LEDGER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("assay serve");
    until_url(child)
}

/// The stdout lines of `child` up to and including its URL line (`http://…`).
fn until_url(mut child: Child) -> (Child, Vec<String>) {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    // The summary is a few dozen lines; the URL comes last.
    for line in lines.by_ref().take(200) {
        let line = line.expect("demo output");
        let done = line.starts_with("http://");
        printed.push(line);
        if done {
            return (child, printed);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no URL on its own line in: {printed:?}");
}

/// The URL the demo serves at (the last line [`serve`] returns).
pub fn url(printed: &[String]) -> &str {
    printed.last().map(String::as_str).expect("the URL line")
}

/// A plain HTTP/1.1 GET of `path` from `base` (`host:port` or `http://host:port/`): the status,
/// the header block and the body.
pub fn get(base: &str, path: &str) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// [`get`], asserting 200; the body.
pub fn get_ok(base: &str, path: &str) -> String {
    let (status, head, body) = get(base, path);
    assert_eq!(status, 200, "{path}: {}", head.lines().next().unwrap_or(""));
    body
}

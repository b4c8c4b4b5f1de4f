//! The small demo lab as the tests that need a realistic ledger use it: built by `assay demo`
//! into a folder, or built and served on port 0 (`assay demo --serve`), and plain GETs of the
//! served API. Std only, so any test file can include it with `#[path]`.

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

/// `assay demo --size small --serve` on port 0 into `lab`: the child, and its stdout lines up
/// to and including the URL line (`http://…`), the last of them. (The server prints nothing
/// after the URL, so its stdout is let go.)
pub fn serve(lab: &Path) -> (Child, Vec<String>) {
    let mut child = assay()
        .args(["demo", "--size", "small", "--dir"])
        .arg(lab)
        .args(["--serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("assay demo --serve");
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

/// A plain HTTP/1.1 GET of `path` from `base` (`host:port` or `http://host:port/`): the
/// response's head (status line and headers) and its body.
pub fn get(base: &str, path: &str) -> (String, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    match response.split_once("\r\n\r\n") {
        Some((head, body)) => (head.to_owned(), body.to_owned()),
        None => (response, String::new()),
    }
}

/// [`get`], asserting 200; the body.
pub fn get_ok(base: &str, path: &str) -> String {
    let (head, body) = get(base, path);
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {}", head.lines().next().unwrap_or(""));
    body
}

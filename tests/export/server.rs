//! `assay export parquet|bundle --server URL`: an export read over HTTP from `assay serve` is
//! the export read from the database, and verifies offline.

use crate::support::export as export_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use export_support::{Demo, assay, files_of, manifest, read, s};

/// `assay serve` over the demo's ledger; killed on drop.
pub(crate) struct Served(Child, pub(crate) String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn serve(demo: &Demo) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["serve", "--db", &demo.db(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting assay serve");
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut url).expect("the URL");
    let url = url.trim().to_owned();
    assert!(url.starts_with("http://"), "serve printed {url:?}");
    Served(child, url)
}

#[test]
fn a_parquet_export_over_http_equals_the_one_from_the_database() {
    let demo = Demo::new(5);
    let served = serve(&demo);
    let (local, remote) = (demo.path("local"), demo.path("remote"));
    demo.export(&local, &[]).ok();
    assay(&["export", "parquet", "--server", &served.1, "--out", &s(&remote)]).ok();

    let (ml, mr) = (manifest(&local), manifest(&remote));
    for k in ["size", "checkpoint", "record_hash", "frontier", "ledger_key", "origin"] {
        assert_eq!(ml[k], mr[k], "manifest {k}");
    }
    let tables: Vec<String> = ml["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["table"].as_str().expect("table").to_owned())
        .collect();
    assert!(tables.iter().any(|t| t == "events"), "an events table");
    for table in &tables {
        let (fl, fr) = (files_of(&local, table), files_of(&remote, table));
        assert_eq!(fl, fr, "files of {table}");
        for f in fl {
            assert_eq!(read(&local.join(&f)), read(&remote.join(&f)), "rows of {f}");
        }
    }
    let (code, report) = demo.verify_export(&remote);
    assert_eq!(code, 0, "verify-export: {report}");
}

#[test]
fn a_bundle_over_http_needs_the_ledger_key_and_verifies() {
    // The seed most export tests use: built once per test process, copied here.
    let demo = Demo::new(7);
    let served = serve(&demo);
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    let slug = audit["artifacts"][0]["slug"].as_str().expect("an artifact").to_owned();
    let out = demo.path("remote.intoto.jsonl");

    // Over HTTP the ledger key's path is not known: a usage error naming the flag.
    let refused = assay(&["export", "bundle", "--server", &served.1, "--artifact", &slug, "--out", &s(&out)]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--ledger-key"), "{}", refused.stderr);
    assert!(!out.exists(), "nothing written");

    let key = demo.keys().join("ledger.key");
    let remote = assay(&[
        "export",
        "bundle",
        "--server",
        &served.1,
        "--artifact",
        &slug,
        "--out",
        &s(&out),
        "--ledger-key",
        &s(&key),
        "--json",
    ])
    .ok()
    .json();
    let local_out = demo.path("local.intoto.jsonl");
    let local = assay(&[
        "export",
        "bundle",
        "--db",
        &demo.db(),
        "--artifact",
        &slug,
        "--out",
        &s(&local_out),
        "--json",
    ])
    .ok()
    .json();
    for k in ["events", "claims", "checkpoint_size", "passes"] {
        assert_eq!(remote[k], local[k], "{k}");
    }
    let checked = assay(&[
        "verify-bundle",
        &s(&out),
        "--ledger-key",
        &s(&demo.ledger_vkey()),
        "--authentic-only",
        "--json",
    ]);
    assert_eq!(checked.code, 0, "verify-bundle: {}", checked.stdout);
}

/// A plain HTTP/1.1 GET: (status line, headers, body bytes).
pub(crate) fn http_get(url: &str, path: &str) -> (String, String, Vec<u8>) {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).expect("connecting");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("sending");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.lines().next().unwrap_or("").to_owned();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "a plain body expected");
    (status, head, raw[split + 4..].to_vec())
}

#[test]
fn the_bundle_download_verifies_offline() {
    let demo = Demo::new(7);
    let served = serve(&demo);
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    // A slug with a `/` exercises the encoded path segment.
    let artifact = audit["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["slug"].as_str().is_some_and(|s| s.contains('/')))
        .expect("an artifact whose slug holds a slash")
        .clone();
    let slug = artifact["slug"].as_str().expect("slug");
    let (status, head, body) = http_get(&served.1, &format!("/v1/audit/{}/bundle", slug.replace('/', "%2F")));
    assert!(status.contains(" 200 "), "{status}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/x-tar"), "{head}");
    let stem = slug.replace('/', "_");
    assert!(head.contains(&format!("filename=\"{stem}.bundle.tar\"")), "{head}");

    let out = demo.path("download");
    std::fs::create_dir_all(&out).expect("a folder");
    tar::Archive::new(body.as_slice()).unpack(&out).expect("a tar");
    let file = out.join(format!("{stem}.intoto.jsonl"));
    assert!(out.join(format!("{stem}.intoto.jsonl.proof")).is_file(), "the proof sidecar");
    let checked = assay(&[
        "verify-bundle",
        &s(&file),
        "--ledger-key",
        &s(&demo.ledger_vkey()),
        "--authentic-only",
        "--json",
    ]);
    assert_eq!(checked.code, 0, "verify-bundle: {}", checked.stdout);
    let report = checked.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["artifact"], artifact["slug"], "{report}");
    let verdict = if artifact["passes"] == true { "PASSED" } else { "FAILED" };
    assert_eq!(report["verdict"], verdict, "the bundle's verdict is the audit's: {report}");

    let (missing, _, _) = http_get(&served.1, "/v1/audit/no-such-artifact/bundle");
    assert!(missing.contains(" 404 "), "{missing}");
}

#[test]
fn slugs_with_a_slash_and_the_signed_sizes_over_http() {
    let demo = Demo::new(7);
    let served = serve(&demo);
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    let slug = audit["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter_map(|a| a["slug"].as_str())
        .find(|s| s.contains('/'))
        .expect("a slug with a slash")
        .to_owned();
    // The slug as itself and with %2F: the same artifact, and its bundle.
    let (plain, _, plain_body) = http_get(&served.1, &format!("/v1/audit/{slug}"));
    let (encoded, _, encoded_body) = http_get(&served.1, &format!("/v1/audit/{}", slug.replace('/', "%2F")));
    assert!(plain.contains(" 200 ") && encoded.contains(" 200 "), "{plain} / {encoded}");
    let body: serde_json::Value = serde_json::from_slice(&plain_body).expect("JSON");
    assert_eq!(body["artifact"]["slug"], slug.as_str());
    let encoded: serde_json::Value = serde_json::from_slice(&encoded_body).expect("JSON");
    assert_eq!(body["artifact"], encoded["artifact"]);
    let (bundle, head, _) = http_get(&served.1, &format!("/v1/audit/{slug}/bundle"));
    assert!(bundle.contains(" 200 "), "{bundle}");
    assert!(head.to_ascii_lowercase().contains("application/x-tar"), "{head}");
    let (missing, _, _) = http_get(&served.1, "/v1/audit/no-such/artifact");
    assert!(missing.contains(" 404 "), "{missing}");
    let (bad_at, _, _) = http_get(&served.1, &format!("/v1/audit/{slug}/bundle?at=5"));
    assert!(bad_at.contains(" 400 "), "{bad_at}");

    // The signed sizes: the CLI locally, the CLI through the server and the endpoint agree, and
    // each is a size a consistency proof accepts.
    let local = assay(&["checkpoint", "--db", &demo.db(), "--list", "--json"]).ok().stdout;
    let remote = assay(&["checkpoint", "--server", &served.1, "--list", "--json"]).ok().stdout;
    assert_eq!(local, remote);
    let sizes: Vec<u64> = local
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["size"].as_u64().expect("size"))
        .collect();
    assert!(sizes.len() >= 3 && sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    let (status, _, page) = http_get(&served.1, "/v1/checkpoints?limit=2");
    assert!(status.contains(" 200 "), "{status}");
    let page: serde_json::Value = serde_json::from_slice(&page).expect("JSON");
    assert_eq!(page["checkpoints"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["next"], sizes[2]);
    let (status, _, _) = http_get(&served.1, "/v1/checkpoints?limit=0");
    assert!(status.contains(" 400 "), "{status}");
    let (old, new) = (sizes[0], sizes[sizes.len() - 1]);
    assay(&["proof", "consistency", "--db", &demo.db(), &old.to_string(), &new.to_string(), "--json"]).ok();
}

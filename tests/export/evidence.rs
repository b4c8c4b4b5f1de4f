//! `assay export bundle --with-evidence`: the evidence files beside the bundle, read from the
//! evidence store (or a server's), checked offline by `verify-bundle` against the bundle's own
//! signed `evidence.captured` events.

use crate::server::serve;
use crate::support::export as export_support;

use std::path::{Path, PathBuf};

use export_support::{Demo, Out, assay, s};
use serde_json::Value;

/// Stores every evidence file the demo wrote (`evidence put --db`).
fn put_evidence(demo: &Demo) {
    let mut files = Vec::new();
    let mut stack = vec![demo.path("lab/evidence")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("the evidence folder").flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { files.push(s(&path)) }
        }
    }
    assert!(!files.is_empty(), "the demo wrote evidence files");
    let mut args = vec!["evidence".to_owned(), "put".into(), "--db".into(), demo.db()];
    args.extend(files);
    assay(&args).ok();
}

/// The first artifact of the audit.
fn slug(demo: &Demo) -> String {
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    audit["artifacts"][0]["slug"].as_str().expect("an artifact").to_owned()
}

fn export_db(demo: &Demo, slug: &str, out: &Path) -> Out {
    assay(&[
        "export",
        "bundle",
        "--db",
        &demo.db(),
        "--artifact",
        slug,
        "--out",
        &s(out),
        "--with-evidence",
        "--json",
    ])
}

fn verify(demo: &Demo, file: &Path, extra: &[&str]) -> Out {
    let vkey = s(&demo.ledger_vkey());
    let mut args = vec!["verify-bundle", "--ledger-key", &vkey, "--authentic-only"];
    let file = s(file);
    args.push(&file);
    args.extend(extra);
    assay(&args)
}

fn tar_of(bundle: &Path) -> PathBuf {
    PathBuf::from(format!("{}.evidence.tar", bundle.display()))
}

/// Every entry of the tar: (name, bytes), in order.
fn entries(tar: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(tar).expect("the evidence tar");
    let mut archive = tar::Archive::new(bytes.as_slice());
    archive
        .entries()
        .expect("a tar")
        .map(|e| {
            let mut e = e.expect("an entry");
            let name = e.path().expect("a name").to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("the entry's bytes");
            (name, data)
        })
        .collect()
}

fn write_entries(tar: &Path, entries: &[(String, Vec<u8>)]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut head = tar::Header::new_ustar();
        head.set_size(data.len() as u64);
        head.set_mode(0o644);
        head.set_cksum();
        builder.append_data(&mut head, name, data.as_slice()).expect("an entry");
    }
    std::fs::write(tar, builder.into_inner().expect("a tar")).expect("writing the tar");
}

/// A demo whose evidence is stored, and its first artifact's bundle with evidence.
fn exported() -> (Demo, PathBuf) {
    let demo = Demo::new(5);
    put_evidence(&demo);
    let out = demo.path("a.intoto.jsonl");
    let summary = export_db(&demo, &slug(&demo), &out).ok().json();
    assert!(summary["evidence"]["files"].as_u64().unwrap_or(0) > 0, "the bundle cites evidence: {summary}");
    (demo, out)
}

#[test]
fn a_bundle_with_evidence_over_http_verifies_after_the_server_is_gone() {
    let demo = Demo::new(5);
    put_evidence(&demo);
    let slug = slug(&demo);
    let served = serve(&demo);
    let out = demo.path("remote.intoto.jsonl");
    let key = s(&demo.keys().join("ledger.key"));
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
        &key,
        "--with-evidence",
        "--json",
    ])
    .ok()
    .json();
    drop(served);
    let local_out = demo.path("local.intoto.jsonl");
    let local = export_db(&demo, &slug, &local_out).ok().json();
    for k in ["files", "blobs", "bytes"] {
        assert_eq!(remote["evidence"][k], local["evidence"][k], "{k}");
    }
    let manifest = |bundle: &Path| -> Value {
        let (_, text) =
            entries(&tar_of(bundle)).into_iter().find(|(n, _)| n == "manifest.json").expect("a manifest");
        serde_json::from_slice(&text).expect("JSON")
    };
    assert_eq!(manifest(&out), manifest(&local_out), "the same files through the server");

    let report = verify(&demo, &out, &["--json"]);
    assert_eq!(report.code, 0, "{}", report.stdout);
    let report = report.json();
    assert_eq!(report["evidence"]["ok"], true, "{report}");
    assert_eq!(report["evidence"]["files"], remote["evidence"]["files"], "{report}");
    assert_eq!(report["evidence"]["blobs_whole"], remote["evidence"]["blobs"], "{report}");
    let text = verify(&demo, &out, &[]).ok();
    assert!(text.stdout.contains("every one whole"), "{}", text.stdout);
}

#[test]
fn a_corrupted_entry_is_named() {
    let (demo, out) = exported();
    let tar = tar_of(&out);
    let mut all = entries(&tar);
    let (name, data) = all.iter_mut().find(|(n, _)| n.starts_with("blobs/")).expect("a blob");
    data[0] ^= 1;
    let name = name.clone();
    write_entries(&tar, &all);
    let bad = verify(&demo, &out, &[]);
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    let line = bad.stdout.lines().find(|l| l.starts_with("bad evidence:")).expect("a finding");
    assert!(line.contains(&name) && line.contains("corrupt"), "{}", bad.stdout);
}

#[test]
fn a_manifest_that_drops_a_file_fails() {
    let (demo, out) = exported();
    let tar = tar_of(&out);
    let mut all = entries(&tar);
    let (_, text) = all.iter_mut().find(|(n, _)| n == "manifest.json").expect("a manifest");
    let mut manifest: Value = serde_json::from_slice(text).expect("JSON");
    let dropped = manifest["files"].as_array_mut().expect("files").remove(0);
    *text = serde_json::to_vec(&manifest).expect("JSON");
    write_entries(&tar, &all);
    let bad = verify(&demo, &out, &[]);
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    let path = dropped["path"].as_str().expect("a path");
    assert!(
        bad.stdout.lines().any(|l| l.contains("drops") && l.contains(path)),
        "the dropped file named: {}",
        bad.stdout
    );

    // A blob left out of the tar is missing, named by its digest.
    let mut all = entries(&tar);
    all.retain(|(n, _)| n != &format!("blobs/{}", dropped["blake3"].as_str().unwrap()));
    write_entries(&tar, &all);
    let bad = verify(&demo, &out, &["--json"]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    let problems = bad.json()["evidence"]["problems"].to_string();
    assert!(
        problems.contains("missing") && problems.contains(dropped["blake3"].as_str().unwrap()),
        "{problems}"
    );
}

#[test]
fn evidence_missing_from_the_store_writes_nothing_and_the_plain_bundle_verifies_as_before() {
    let demo = Demo::new(5);
    let slug = slug(&demo);
    let out = demo.path("b.intoto.jsonl");
    let refused = export_db(&demo, &slug, &out);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("missing from the evidence store"), "{}", refused.stderr);
    assert!(!out.exists() && !tar_of(&out).exists(), "nothing written");

    // Without --with-evidence: no tar, and verify-bundle reports as it always has.
    assay(&["export", "bundle", "--db", &demo.db(), "--artifact", &slug, "--out", &s(&out)]).ok();
    assert!(!tar_of(&out).exists());
    let report = verify(&demo, &out, &["--json"]);
    assert_eq!(report.code, 0, "{}", report.stdout);
    assert!(report.json().get("evidence").is_none(), "{}", report.stdout);
    // A tar named with --evidence that is not there is a usage error.
    let absent = verify(&demo, &out, &["--evidence", &s(&demo.path("none.tar"))]);
    assert_eq!(absent.code, 2, "{}", absent.stderr);
}

#[test]
fn a_blob_damaged_in_the_store_is_named_and_nothing_is_written() {
    if crate::support::store::is_postgres() {
        return crate::support::skip::say("damaging a blob on disk", "the blobs are in PostgreSQL");
    }
    let (demo, first) = exported();
    let (_, text) =
        entries(&tar_of(&first)).into_iter().find(|(n, _)| n == "manifest.json").expect("a manifest");
    let manifest: Value = serde_json::from_slice(&text).expect("JSON");
    let name = manifest["files"][0]["blake3"].as_str().expect("a blake3").to_owned();
    let blob = PathBuf::from(format!("{}.blobs", demo.db())).join(&name[..2]).join(&name);
    let mut bytes = std::fs::read(&blob).expect("the stored blob");
    bytes[0] ^= 1;
    std::fs::write(&blob, bytes).expect("damaging it");
    let out = demo.path("damaged.intoto.jsonl");
    let refused = export_db(&demo, &slug(&demo), &out);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains(&name) && refused.stderr.contains("hash to"), "{}", refused.stderr);
    assert!(!out.exists() && !tar_of(&out).exists(), "nothing written");
    assert!(!demo.path("damaged.intoto.jsonl.evidence.tar.partial").exists(), "no partial tar left");
}

/// `GET /v1/audit/{slug}/bundle?with_evidence=true` for the demo's first artifact.
fn download(served: &crate::server::Served, slug: &str, query: &str) -> (String, String, Vec<u8>) {
    crate::server::http_get(&served.1, &format!("/v1/audit/{}/bundle{query}", slug.replace('/', "%2F")))
}

#[test]
fn the_bundle_download_with_evidence_verifies_after_the_server_is_gone() {
    let demo = Demo::new(5);
    put_evidence(&demo);
    let slug = slug(&demo);
    let served = serve(&demo);
    let (status, head, body) = download(&served, &slug, "?with_evidence=true");
    assert!(status.contains(" 200 "), "{status}: {}", String::from_utf8_lossy(&body));
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .expect("a Content-Length");
    assert_eq!(length, body.len().to_string(), "the body is as long as declared");
    drop(served);
    let out = demo.path("download");
    std::fs::create_dir_all(&out).expect("a folder");
    tar::Archive::new(body.as_slice()).unpack(&out).expect("a tar");
    let file = out.join(format!("{}.intoto.jsonl", slug.replace('/', "_")));
    assert!(tar_of(&file).is_file(), "the evidence tar beside the bundle");
    let report = verify(&demo, &file, &["--json"]);
    assert_eq!(report.code, 0, "{}", report.stdout);
    let report = report.json();
    assert_eq!(report["evidence"]["ok"], true, "{report}");
    // The same evidence as `assay export bundle --with-evidence` puts beside its bundle.
    let local_out = demo.path("local.intoto.jsonl");
    let local = export_db(&demo, &slug, &local_out).ok().json();
    assert_eq!(report["evidence"]["files"], local["evidence"]["files"], "{report}");
    assert_eq!(report["evidence"]["blobs_whole"], local["evidence"]["blobs"], "{report}");
    let manifest = |bundle: &Path| entries(&tar_of(bundle)).into_iter().find(|(n, _)| n == "manifest.json");
    assert_eq!(manifest(&file), manifest(&local_out), "the same manifest");
    // A blob damaged in the downloaded tar is named offline.
    let mut damaged = entries(&tar_of(&file));
    let blob = damaged.iter_mut().find(|(n, _)| n.starts_with("blobs/")).expect("a blob");
    blob.1[0] ^= 1;
    let named = blob.0.clone();
    write_entries(&tar_of(&file), &damaged);
    let report = verify(&demo, &file, &[]);
    assert_eq!(report.code, 1, "{}", report.stdout);
    assert!(report.stdout.contains(named.trim_start_matches("blobs/")), "{}", report.stdout);
}

#[test]
fn a_bundle_download_whose_evidence_is_not_stored_is_refused() {
    let demo = Demo::new(5);
    let slug = slug(&demo);
    let served = serve(&demo);
    let (status, _, body) = download(&served, &slug, "?with_evidence=true");
    let text = String::from_utf8_lossy(&body);
    assert!(status.contains(" 409 "), "{status}: {text}");
    assert!(
        text.contains("evidence_not_synced") && text.contains("missing from the evidence store"),
        "{text}"
    );
    let (status, _, _) = download(&served, &slug, "?with_evidence=maybe");
    assert!(status.contains(" 400 "), "{status}");
    let (status, _, _) = download(&served, &slug, "");
    assert!(status.contains(" 200 "), "without evidence the bundle is served as before: {status}");
    let (status, _, _) = crate::server::http_get(&served.1, &format!("/v1/audit/{slug}?with_evidence=true"));
    assert!(status.contains(" 400 "), "with_evidence applies to bundles only: {status}");
}

//! The tree as C2SP tlog-tiles: `GET /tile/…` and `assay tiles export`, read back by an
//! independent reader written from the specifications only (tests/python/tlog_tiles_check.py:
//! Python's standard library, no code of ours). It recomputes the checkpoint's root from the
//! tiles, checks every entry and every level's hashes against the level below, and computes
//! inclusion and consistency proofs from the tiles, which must equal the `/v1/proof` answers.
//! Tree sizes walk through partial tiles and level-1 and level-2 tiles: 1, 255, 256, 257 and
//! 65 836 (65 536 + 300). The export is byte for byte what HTTP serves, and grows in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::http::{App, assay_cli, metric, spawn_app};
use crate::support::skip;

/// Envelopes per append request.
const CHUNK: u64 = 1000;

/// Appends metrics until the log holds `size` records (each request ends at a checkpoint).
async fn grow_to(app: &App, key: &assay_events::keys::SignerKey, size: u64) {
    let mut at = app.size().await;
    assert!(at <= size, "the log already holds {at} records, more than {size}");
    while at < size {
        let n = (size - at).min(CHUNK);
        let batch: Vec<Vec<u8>> = (at..at + n).map(|s| metric(key, "r-tiles", s)).collect();
        app.append_ok(&batch).await;
        at += n;
    }
    assert_eq!(app.size().await, size);
}

/// Runs the independent reader over `source` (a URL or a folder) with the checkpoint in
/// `checkpoint`; `None` (after saying why) when python3 cannot run here.
fn reader(source: &str, checkpoint: &Path, inclusion: &[u64], consistency: &[u64]) -> Option<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tlog_tiles_check.py");
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let output = Command::new("python3")
        .arg(&script)
        .arg(source)
        .arg(checkpoint)
        .args(["--inclusion", &list(inclusion), "--consistency", &list(consistency)])
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            skip::skip("tlog_tiles_check.py", &format!("python3 cannot be run: {e}"));
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the reader failed on {source}:\n{stdout}\n{stderr}");
    Some(serde_json::from_str(&stdout).expect("the reader prints JSON"))
}

/// The reader's proofs equal `/v1/proof/*` at `size`, and its root the checkpoint's.
async fn assert_reader_agrees(app: &App, dir: &Path, size: u64, earlier: &[u64]) {
    let (status, note) = app.get_text("/v1/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let checkpoint = dir.join(format!("checkpoint-{size}"));
    std::fs::write(&checkpoint, &note).expect("writing the checkpoint");
    let mut leaves: Vec<u64> = vec![0, size / 2, size - 1, 255.min(size - 1), 256.min(size - 1)];
    leaves.sort_unstable();
    leaves.dedup();
    let olds: Vec<u64> = earlier.iter().copied().filter(|&o| o > 0 && o <= size).collect();
    let Some(read) = reader(&app.url, &checkpoint, &leaves, &olds) else { return };
    assert_eq!(read["size"], size);
    assert_eq!(read["entries"], size);
    let root = note.lines().nth(2).expect("a root line");
    assert_eq!(read["root"], root, "the root from the tiles is the checkpoint's");
    for seq in &leaves {
        let (status, proof) = app.get(&format!("/v1/proof/inclusion?seq={seq}&size={size}")).await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        assert_eq!(read["inclusion"][seq.to_string()], proof["proof"], "inclusion of {seq} in {size}");
    }
    for old in &olds {
        let (status, proof) = app.get(&format!("/v1/proof/consistency?old={old}&new={size}")).await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        assert_eq!(read["consistency"][old.to_string()], proof["proof"], "consistency of {old} with {size}");
    }
    if size >= 65_536 {
        assert!(read["level_hashes_checked"].as_u64().expect("a count") > 256, "{read}");
    }
}

/// `assay tiles export` into `out`; its JSON summary.
fn export(app: &App, out: &Path) -> Value {
    let (code, stdout, stderr) = assay_cli(&[
        "tiles",
        "export",
        "--db",
        &app.db,
        "--out",
        out.to_str().expect("a UTF-8 path"),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("a JSON summary")
}

/// Every file under `dir`, by its path relative to `dir` with `/` separators.
fn files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside").to_string_lossy().replace('\\', "/");
                out.insert(rel, path);
            }
        }
    }
    out
}

/// Every exported tile is byte for byte what `GET /tile/…` serves; the checkpoint file is
/// the latest checkpoint.
async fn assert_export_is_served(app: &App, out: &Path) {
    let files = files(out);
    assert!(files.keys().all(|f| f == "checkpoint" || f.starts_with("tile/")), "{:?}", files.keys());
    assert!(!files.keys().any(|f| f.ends_with(".tmp")));
    for (rel, path) in &files {
        let want = std::fs::read(path).expect("reading an exported file");
        let url = if rel == "checkpoint" { app.url("/v1/checkpoint") } else { app.url(&format!("/{rel}")) };
        let got = app.http.get(url).send().await.expect("GET");
        assert_eq!(got.status(), StatusCode::OK, "{rel}");
        assert_eq!(got.bytes().await.expect("a body").as_ref(), want.as_slice(), "{rel}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_read_back_independently_give_the_checkpoint_root_and_the_v1_proofs() {
    let app = spawn_app().await;
    let worker = app.key("worker-tiles", &["worker"]).await;
    let dir = tempfile::tempdir().expect("a folder");
    let out = dir.path().join("tiles");
    let mut sizes: Vec<u64> = Vec::new();
    for size in [2u64, 255, 256, 257] {
        grow_to(&app, &worker, size).await;
        assert_reader_agrees(&app, dir.path(), size, &sizes).await;
        sizes.push(size);
    }
    let first = export(&app, &out);
    assert_eq!(first["size"], 257);
    // Level 0: one full tile and one of width 1; level 1: width 1; bundles likewise.
    assert_eq!((first["written"].as_u64(), first["skipped"].as_u64()), (Some(5), Some(0)), "{first}");
    assert_export_is_served(&app, &out).await;
    if let Some(read) = reader(out.to_str().expect("UTF-8"), &out.join("checkpoint"), &[0, 256], &[255]) {
        assert_eq!(read["size"], 257);
        // The reader can fail: one entry changed, or one hash of a level-1 tile.
        for (file, at) in [("tile/entries/000", 2 + 130 * 7 + 40), ("tile/1/000.p/1", 5)] {
            let bad = dir.path().join("tampered");
            let _ = std::fs::remove_dir_all(&bad);
            for (rel, path) in files(&out) {
                let to = bad.join(&rel);
                std::fs::create_dir_all(to.parent().expect("a parent")).expect("a folder");
                std::fs::copy(path, to).expect("a copy");
            }
            let mut bytes = std::fs::read(bad.join(file)).expect("a tile");
            bytes[at] ^= 1;
            std::fs::write(bad.join(file), bytes).expect("writing");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tlog_tiles_check.py");
            let o = Command::new("python3")
                .arg(script)
                .arg(&bad)
                .arg(bad.join("checkpoint"))
                .output()
                .expect("python3");
            assert_eq!(o.status.code(), Some(1), "{file}: {}", String::from_utf8_lossy(&o.stdout));
            assert!(String::from_utf8_lossy(&o.stderr).contains("FAILED"), "{file}");
        }
    }

    grow_to(&app, &worker, 65_536 + 300).await;
    let size = 65_536 + 300;
    assert_reader_agrees(&app, dir.path(), size, &[1, 2, 255, 256, 257, 65_536, 65_537]).await;
    let second = export(&app, &out);
    assert_eq!(second["size"], size);
    // The full level-0 tile and bundle of the first export are kept.
    assert_eq!(second["skipped"], 2, "{second}");
    assert_export_is_served(&app, &out).await;
    if let Some(read) = reader(out.to_str().expect("UTF-8"), &out.join("checkpoint"), &[0, 65_835], &[257]) {
        assert_eq!(read["size"], size);
        let (_, proof) = app.get(&format!("/v1/proof/consistency?old=257&new={size}")).await;
        assert_eq!(read["consistency"]["257"], proof["proof"]);
    }
    // The partial tiles of the first export stay for clients holding that checkpoint.
    assert!(out.join("tile/0/001.p/1").is_file());
    // A rerun with nothing new rewrites only the partial tiles.
    let third = export(&app, &out);
    assert_eq!(
        third["written"], 4,
        "the partial tiles at the end of levels 0, 1, 2 and of the bundles: {third}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_have_immutable_caching_and_refuse_bad_paths() {
    let app = spawn_app().await;
    let worker = app.key("worker-tiles", &["worker"]).await;
    grow_to(&app, &worker, 300).await;
    let get = |path: &str| app.http.get(app.url(path)).send();

    let full = get("/tile/0/000").await.expect("GET");
    assert_eq!(full.status(), StatusCode::OK);
    let header =
        |r: &reqwest::Response, h: &str| r.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header(&full, "cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
    assert_eq!(header(&full, "content-type").as_deref(), Some("application/octet-stream"));
    assert_eq!(full.bytes().await.expect("bytes").len(), 256 * 32);

    let partial = get("/tile/0/001.p/44").await.expect("GET");
    assert_eq!(partial.status(), StatusCode::OK);
    assert_eq!(header(&partial, "cache-control").as_deref(), Some("public, max-age=60"));
    assert_eq!(partial.bytes().await.expect("bytes").len(), 44 * 32);
    // A narrower partial tile, as a client holding an older checkpoint asks.
    assert_eq!(get("/tile/0/001.p/3").await.expect("GET").bytes().await.expect("bytes").len(), 3 * 32);
    let entries = get("/tile/entries/001.p/44").await.expect("GET");
    assert_eq!(entries.status(), StatusCode::OK);
    assert_eq!(entries.bytes().await.expect("bytes").len(), 44 * (2 + 128));
    assert_eq!(get("/tile/1/000.p/1").await.expect("GET").status(), StatusCode::OK);

    // Beyond the tree: 404.
    for path in [
        "/tile/0/001",
        "/tile/0/001.p/45",
        "/tile/1/000",
        "/tile/2/000.p/1",
        "/tile/entries/002.p/1",
        "/tile/9/000.p/1",
    ] {
        let r = get(path).await.expect("GET");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = r.json().await.expect("a JSON error");
        assert_eq!(body["error"], "not_found", "{path}");
        assert!(body["detail"].as_str().expect("detail").contains("beyond the tree"), "{path}: {body}");
    }
    // Not a tile path: 400 naming the path and the form.
    for path in [
        "/tile/0/1",
        "/tile/0/x000/001",
        "/tile/00/000",
        "/tile/64/000",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/0/000.p/07",
        "/tile/data/000",
        "/tile/entries/x1/000",
        "/tile/0/000/",
    ] {
        let r = get(path).await.expect("GET");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = r.json().await.expect("a JSON error");
        assert_eq!(body["error"], "bad_tile_path", "{path}");
        let detail = body["detail"].as_str().expect("detail");
        assert!(
            detail.contains("is not a tile path") && detail.contains("x001/x234/067"),
            "{path}: {detail}"
        );
    }
    app.stop().await;
}

#[test]
fn tiles_export_of_no_ledger_exits_2() {
    let dir = tempfile::tempdir().expect("a folder");
    let db = dir.path().join("none.db");
    let (code, _, stderr) = assay_cli(&[
        "tiles",
        "export",
        "--db",
        db.to_str().expect("UTF-8"),
        "--out",
        dir.path().join("out").to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no ledger at"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing written");
}

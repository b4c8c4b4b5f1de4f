//! `PUT|GET|HEAD /v1/blobs/{blake3}` on the real service: a signed upload kept only when its
//! bytes hash to its name, reads with ETag and one Range, the size limit, and who may do what.

use crate::support::blobs::named_files;
use crate::support::http as app;

use app::{App, assay_cli, envelope, spawn_app, spawn_app_with};
use assay::blobs::{BlobName, BlobStore, FolderBlobs, signed};
use assay::http::ServeOptions;
use assay_events::keys::SignerKey;
use reqwest::StatusCode;
use reqwest::header::{CONNECTION, CONTENT_LENGTH, CONTENT_RANGE, ETAG, RANGE};
use serde_json::{Value, json};

async fn put_as(app: &App, key: Option<&SignerKey>, name: &str, body: &[u8]) -> (StatusCode, Value) {
    let mut req = app.http.put(app.url(&format!("/v1/blobs/{name}"))).body(body.to_vec());
    if let Some(key) = key {
        let parsed = BlobName::parse(name).expect("a blob name");
        req = req.header(signed::SIGNATURE_HEADER, signed::header_value(key, &parsed));
    }
    let r = req.send().await.expect("PUT");
    let status = r.status();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
}

pub(crate) fn name_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[tokio::test]
async fn a_signed_upload_is_kept_once_and_read_back_whole_or_in_a_range() {
    let app = spawn_app().await;
    let worker = app.key("w1", &["worker"]).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let name = name_of(&data);
    let (status, body) = put_as(&app, Some(&worker), &name, &data).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"blake3": name, "bytes": data.len(), "existed": false}));
    let (status, body) = put_as(&app, Some(&worker), &name, &data).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["existed"], true);
    // Answered without reading the body: the answer says the connection closes, so no client
    // sends its next request on it (which then fails with an incomplete message). One that read
    // the whole body keeps the connection.
    let again = |bytes: Vec<u8>, name: &str| {
        let parsed = BlobName::parse(name).expect("a blob name");
        app.http
            .put(app.url(&format!("/v1/blobs/{name}")))
            .header(signed::SIGNATURE_HEADER, signed::header_value(&worker, &parsed))
            .body(bytes)
            .send()
    };
    let r = again(data.clone(), &name).await.expect("PUT");
    assert_eq!((r.status(), r.headers().get(CONNECTION)), (StatusCode::OK, Some(&"close".parse().unwrap())));
    let r = app.http.put(app.url(&format!("/v1/blobs/{name}"))).body(data.clone()).send().await.expect("PUT");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers().get(CONNECTION).map(|v| v.to_str().unwrap()), Some("close"));
    let small = b"read to its end".to_vec();
    let r = again(small.clone(), &name_of(&small)).await.expect("PUT");
    assert_eq!((r.status(), r.headers().get(CONNECTION)), (StatusCode::CREATED, None));

    let r = app.http.get(app.url(&format!("/v1/blobs/{name}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[ETAG], format!("\"{name}\"").as_str());
    assert_eq!(r.headers()[CONTENT_LENGTH], data.len().to_string().as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());

    let r = app
        .http
        .get(app.url(&format!("/v1/blobs/{name}")))
        .header(RANGE, "bytes=1048570-1048580")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()[CONTENT_RANGE], format!("bytes 1048570-1048580/{}", data.len()).as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[1_048_570..=1_048_580]);
    let r =
        app.http.get(app.url(&format!("/v1/blobs/{name}"))).header(RANGE, "bytes=-3").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[data.len() - 3..]);
    let r = app
        .http
        .get(app.url(&format!("/v1/blobs/{name}")))
        .header(RANGE, "bytes=3000000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()[CONTENT_RANGE], "bytes */3000000");

    let r = app.http.head(app.url(&format!("/v1/blobs/{name}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_LENGTH], "3000000");
    let unknown = name_of(b"never stored");
    assert_eq!(
        app.http.head(app.url(&format!("/v1/blobs/{unknown}"))).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (status, body) = app.get(&format!("/v1/blobs/{unknown}")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, body) = app.get(&format!("/v1/blobs/{}", name.to_uppercase())).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_blob_name")));
}

#[tokio::test]
async fn a_body_that_does_not_hash_to_its_name_or_is_too_large_is_refused_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let options = ServeOptions {
        blobs: Some(BlobStore::Folder(FolderBlobs::new(root.clone(), 16))),
        ..ServeOptions::default()
    };
    let app = spawn_app_with(options).await;
    let worker = app.key("w1", &["runner"]).await;
    let claimed = name_of(b"the real evidence");
    let (status, body) = put_as(&app, Some(&worker), &claimed, b"something else").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("blob_mismatch")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains(&name_of(b"something else")), "{body}");
    let big = b"seventeen bytes!!";
    let (status, body) = put_as(&app, Some(&worker), &name_of(big), big).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("blob_too_large")),
        "{body}"
    );
    assert!(named_files(&root).is_empty(), "{:?}", named_files(&root));
    let (status, _) = app.get(&format!("/v1/blobs/{claimed}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = put_as(&app, Some(&worker), &name_of(b"fits"), b"fits").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(named_files(&root), vec![(name_of(b"fits"), name_of(b"fits"))]);
}

#[tokio::test]
async fn uploads_need_a_live_evidence_key_signing_that_name() {
    let app = spawn_app().await;
    let worker = app.key("w1", &["worker"]).await;
    let author = app.key("a1", &["author"]).await;
    let stranger = assay::keyfile::generate("w1").unwrap();
    let data = b"evidence";
    let name = name_of(data);
    let expect = |got: (StatusCode, Value), status: StatusCode, code: &str| {
        assert_eq!((got.0, got.1["error"].as_str()), (status, Some(code)), "{}", got.1);
    };
    expect(put_as(&app, None, &name, data).await, StatusCode::UNAUTHORIZED, "signature_required");
    expect(put_as(&app, Some(&stranger), &name, data).await, StatusCode::UNAUTHORIZED, "signature_required");
    expect(put_as(&app, Some(&author), &name, data).await, StatusCode::FORBIDDEN, "role_required");
    // A signature for another blob authorizes nothing here.
    let other = BlobName::parse(&name_of(b"other")).unwrap();
    let r = app
        .http
        .put(app.url(&format!("/v1/blobs/{name}")))
        .header(signed::SIGNATURE_HEADER, signed::header_value(&worker, &other))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = app.get(&format!("/v1/blobs/{name}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was kept");
    let revoked = app.key("w2", &["worker"]).await;
    let env = envelope(&app.admin, "key.revoked", "key/w2", json!({"vkey": revoked.verifier().to_text()}));
    app.append_ok(&[env]).await;
    expect(put_as(&app, Some(&revoked), &name, data).await, StatusCode::UNAUTHORIZED, "signature_required");
    let (status, _) = put_as(&app, Some(&worker), &name, data).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn reads_need_a_token_where_reads_do() {
    let options = ServeOptions {
        require_read_token: true,
        read_tokens: vec!["t0ken".to_owned()],
        ..ServeOptions::default()
    };
    let app = spawn_app_with(options).await;
    let worker = app.key("w1", &["worker"]).await;
    let name = name_of(b"x");
    let (status, _) = put_as(&app, Some(&worker), &name, b"x").await;
    assert_eq!(status, StatusCode::CREATED, "uploads are authorized by their signature");
    let url = app.url(&format!("/v1/blobs/{name}"));
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.http.head(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.http.get(&url).bearer_auth("wrong").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app.http.get(&url).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"x");
}

/// Multi-threaded: the server answers while this thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_puts_and_verifies_through_a_server() {
    let app = spawn_app().await;
    let worker = app.key("w1", &["worker"]).await;
    let (key_path, _) = assay::keyfile::write_pair(app.dir.path(), &worker).unwrap();
    let file = app.dir.path().join("notes.txt");
    std::fs::write(&file, b"run notes").unwrap();
    let (code, stdout, stderr) = assay_cli(&[
        "evidence",
        "put",
        "--server",
        &app.url,
        "--key",
        key_path.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("{}  9  {}\n", name_of(b"run notes"), file.display()));
    // A log citing it and a file never uploaded: verify names the one missing.
    let files = json!([
        {"path": "missing.txt", "blake3": name_of(b"never uploaded"), "bytes": 14},
        {"path": "notes.txt", "blake3": name_of(b"run notes"), "bytes": 9},
    ]);
    let manifest =
        format!("{}  missing.txt\n{}  notes.txt\n", name_of(b"never uploaded"), name_of(b"run notes"));
    let data = json!({"run": "r-1", "files": files, "bundle_digest": name_of(manifest.as_bytes())});
    app.append_ok(&[envelope(&worker, "evidence.captured", "run/r-1", data)]).await;
    let (code, stdout, stderr) = assay_cli(&["evidence", "verify", "--server", &app.url]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with(&format!("{}  missing", name_of(b"never uploaded"))), "{stdout}");
    let (code, _, stderr) = assay_cli(&["evidence", "put", "--server", &app.url, file.to_str().unwrap()]);
    assert_eq!(code, 2, "--server needs --key: {stderr}");
}

/// Multi-threaded: the server answers while this thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_blob_is_never_served_as_whole() {
    let dir = tempfile::tempdir().unwrap();
    let folder = FolderBlobs::new(dir.path().join("blobs"), 1 << 30);
    let options = ServeOptions { blobs: Some(BlobStore::Folder(folder.clone())), ..ServeOptions::default() };
    let app = spawn_app_with(options).await;
    let worker = app.key("w1", &["worker"]).await;
    let data = vec![5u8; 1_500_000];
    let name = name_of(&data);
    assert_eq!(put_as(&app, Some(&worker), &name, &data).await.0, StatusCode::CREATED);
    let mut damaged = data.clone();
    damaged[1_400_000] = 6;
    std::fs::write(folder.path_of(&BlobName::parse(&name).unwrap()), &damaged).unwrap();
    let r = app.http.get(app.url(&format!("/v1/blobs/{name}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the damage shows only at the end");
    assert!(r.bytes().await.is_err(), "the download ends with an error, not with the damaged bytes");
    let manifest = format!("{name}  d.bin\n");
    let files = json!([{"path": "d.bin", "blake3": name, "bytes": data.len()}]);
    let event = json!({"run": "r-1", "files": files, "bundle_digest": name_of(manifest.as_bytes())});
    app.append_ok(&[envelope(&worker, "evidence.captured", "run/r-1", event)]).await;
    let (code, stdout, stderr) = assay_cli(&["evidence", "verify", "--server", &app.url]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with(&format!("{name}  corrupt")), "{stdout}");
}

/// Multi-threaded: the server answers while this thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exec_through_a_server_uploads_before_it_cites() {
    let app = spawn_app().await;
    let runner = app.key("r1", &["runner"]).await;
    let (key_path, _) = assay::keyfile::write_pair(app.dir.path(), &runner).unwrap();
    let folder = app.dir.path().join("ev");
    let script = format!("printf 'out' > '{}/out.txt'", folder.display());
    let (code, _, stderr) = assay_cli(&[
        "run",
        "exec",
        "--server",
        &app.url,
        "--key",
        key_path.to_str().unwrap(),
        "--run",
        "r-1",
        "--evidence",
        folder.to_str().unwrap(),
        "--quiet-window",
        "100ms",
        "--sample-every",
        "20ms",
        "--quiesce-timeout",
        "10s",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (status, page) = app.get("/v1/events?type=evidence.captured").await;
    assert_eq!(status, StatusCode::OK);
    let files = &page["records"][0]["event"]["data"]["files"];
    assert_eq!(files[0]["blake3"], name_of(b"out"), "{page}");
    let (status, body) = app.get_text(&format!("/v1/blobs/{}", name_of(b"out"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "out"));
    let (code, _, stderr) = assay_cli(&["evidence", "verify", "--server", &app.url]);
    assert_eq!(code, 0, "{stderr}");
}

/// Retention reads a blob's age from its last store: a PUT of bytes already stored renews it.
#[tokio::test]
async fn uploading_stored_bytes_again_renews_their_age() {
    let dir = tempfile::tempdir().unwrap();
    let folder = FolderBlobs::new(dir.path().join("blobs"), 1 << 20);
    let options = ServeOptions { blobs: Some(BlobStore::Folder(folder.clone())), ..ServeOptions::default() };
    let app = spawn_app_with(options).await;
    let worker = app.key("w1", &["worker"]).await;
    let data = b"kept twice";
    let name = name_of(data);
    assert_eq!(put_as(&app, Some(&worker), &name, data).await.0, StatusCode::CREATED);
    let path = folder.path_of(&BlobName::parse(&name).unwrap());
    let week_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 86_400);
    std::fs::File::open(&path).unwrap().set_modified(week_ago).unwrap();
    assert_eq!(put_as(&app, Some(&worker), &name, data).await.0, StatusCode::OK);
    let age = std::fs::metadata(&path).unwrap().modified().unwrap().elapsed().unwrap_or_default();
    assert!(age < std::time::Duration::from_secs(600), "the stored blob is still {age:?} old");
}

/// `evidence put --server` uploads several files at once: every line still comes in the order
/// the files were given, the same bytes given twice (perhaps in flight together) are stored
/// once, and every blob lies whole under its true name. Multi-threaded: the server answers
/// while this thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_uploads_several_files_at_once_and_reports_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let folder = FolderBlobs::new(dir.path().join("blobs"), 1 << 30);
    let options = ServeOptions { blobs: Some(BlobStore::Folder(folder.clone())), ..ServeOptions::default() };
    let app = spawn_app_with(options).await;
    let worker = app.key("w1", &["worker"]).await;
    let (key_path, _) = assay::keyfile::write_pair(app.dir.path(), &worker).unwrap();
    // The first file is the largest, so later ones finish before it when uploads overlap.
    let mut contents: Vec<Vec<u8>> = vec![vec![7u8; 3 << 20]];
    contents.extend((0..8).map(|i| format!("small file {i}").into_bytes()));
    contents.push(b"small file 3".to_vec());
    let mut args = vec!["evidence".to_owned(), "put".to_owned(), "--server".to_owned(), app.url.clone()];
    args.extend(["--key".to_owned(), key_path.to_str().unwrap().to_owned()]);
    let mut expected = String::new();
    for (i, bytes) in contents.iter().enumerate() {
        let path = app.dir.path().join(format!("file-{i}"));
        std::fs::write(&path, bytes).unwrap();
        expected.push_str(&format!("{}  {}  {}\n", name_of(bytes), bytes.len(), path.display()));
        args.push(path.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = assay_cli(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, expected);
    assert!(stderr.contains("9 blob(s) stored, 1 already stored"), "{stderr}");
    let named = named_files(folder.root());
    assert_eq!(named.len(), 9, "{named:?}");
    for (name, hash) in &named {
        assert_eq!(name, hash, "every blob lies whole under its true name");
    }
}

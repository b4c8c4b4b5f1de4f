//! The evidence store on PostgreSQL with two `assay serve` processes on one database: a blob
//! uploaded through one is read whole and in ranges through the other, a refused upload is
//! visible through neither, a server killed with SIGKILL mid-upload leaves no row behind, and
//! `assay evidence verify --db` checks the database's blobs. Needs `ASSAY_TEST_DATABASE_URL`;
//! under `CI=true` a missing or unreachable database fails instead of skipping.

use crate::support::cluster;

use std::time::Duration;

use assay::blobs::{BlobName, signed};
use cluster::http::store::{count_rows, fresh_pg};
use cluster::{Ledger, Server, WAIT, assay, client, envelope, post, register};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

fn name_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

async fn put(
    http: &reqwest::Client,
    server: &str,
    key: &assay_events::keys::SignerKey,
    body: Vec<u8>,
    name: &str,
) -> StatusCode {
    let header = signed::header_value(key, &BlobName::parse(name).unwrap());
    let r = http
        .put(format!("{server}/v1/blobs/{name}"))
        .header(signed::SIGNATURE_HEADER, header)
        .body(body)
        .send()
        .await;
    r.expect("the server answers").status()
}

/// Waits until `server` knows `key` (it follows the other server's commits).
async fn until_known(http: &reqwest::Client, server: &str, key: &assay_events::keys::SignerKey) {
    let probe = b"probe".to_vec();
    let deadline = tokio::time::Instant::now() + WAIT;
    while put(http, server, key, probe.clone(), &name_of(&probe)).await == StatusCode::UNAUTHORIZED {
        assert!(tokio::time::Instant::now() < deadline, "{server} never learned the key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_share_one_evidence_store() {
    let Some(db) = fresh_pg("blobs") else { return };
    let ledger = Ledger::init(&db, "t.local/blobs");
    let a = Server::start(&db, ledger.dir.path(), "a");
    let b = Server::start(&db, ledger.dir.path(), "b");
    let http = client();
    let worker = register(&http, &a.url, &ledger.admin, "w1", &["worker"]).await;
    until_known(&http, &b.url, &worker).await;

    // Over two chunks, so a range crosses the chunk boundary.
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 249) as u8).collect();
    let name = name_of(&data);
    assert_eq!(put(&http, &a.url, &worker, data.clone(), &name).await, StatusCode::CREATED);
    assert_eq!(put(&http, &b.url, &worker, data.clone(), &name).await, StatusCode::OK, "stored once");
    let r = http.get(format!("{}/v1/blobs/{name}", b.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    let r = http
        .get(format!("{}/v1/blobs/{name}", b.url))
        .header("range", "bytes=1048570-1048590")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[1_048_570..=1_048_590]);

    let claimed = name_of(b"not these bytes");
    assert_eq!(put(&http, &b.url, &worker, b"other bytes".to_vec(), &claimed).await, StatusCode::BAD_REQUEST);
    for server in [&a.url, &b.url] {
        let r = http.head(format!("{server}/v1/blobs/{claimed}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    // The log cites the blob and one never uploaded: verify on the database names that one.
    let missing = name_of(b"never uploaded");
    let manifest = format!("{missing}  a.bin\n{name}  b.bin\n");
    let files = json!([
        {"path": "a.bin", "blake3": missing, "bytes": 14},
        {"path": "b.bin", "blake3": name, "bytes": data.len()},
    ]);
    let data_json = json!({"run": "r-1", "files": files, "bundle_digest": name_of(manifest.as_bytes())});
    let r = post(
        &http,
        &format!("{}/v1/events", a.url),
        envelope(&worker, "evidence.captured", "run/r-1", data_json),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let out = assay(&["evidence", "verify", "--db", &db]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with(&format!("{missing}  missing")), "{stdout}");
    // Put into the database from the command line, it is whole for both servers.
    let file = ledger.path("a.bin");
    std::fs::write(&file, b"never uploaded").unwrap();
    let out = assay(&["evidence", "put", "--db", &db, file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = assay(&["evidence", "verify", "--db", &db]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let r = http.get(format!("{}/v1/blobs/{missing}", b.url)).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"never uploaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_mid_upload_leaves_nothing() {
    let Some(db) = fresh_pg("blobs_kill") else { return };
    let ledger = Ledger::init(&db, "t.local/blobs");
    let mut a = Server::start(&db, ledger.dir.path(), "a");
    let http = client();
    let worker = register(&http, &a.url, &ledger.admin, "w1", &["runner"]).await;
    let name = name_of(b"a blob that never finishes");
    let header = signed::header_value(&worker, &BlobName::parse(&name).unwrap());
    // Three chunks' worth, then the body stalls: the upload is under way when the server dies.
    let chunks = futures_util::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(vec![7u8; 1 << 20])))
        .chain(futures_util::stream::pending());
    let upload = http
        .put(format!("{}/v1/blobs/{name}", a.url))
        .header(signed::SIGNATURE_HEADER, header)
        .body(reqwest::Body::wrap_stream(chunks))
        .send();
    let upload = tokio::spawn(upload);
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.kill();
    assert!(upload.await.unwrap().is_err(), "the upload could not finish");
    // The dead session's transaction is rolled back: no chunk, no name.
    let deadline = tokio::time::Instant::now() + WAIT;
    while count_rows(&db, "blob_chunks").unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "chunks of a dead upload stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count_rows(&db, "blobs").unwrap(), 0);
    let b = Server::start(&db, ledger.dir.path(), "b");
    let r = http.head(format!("{}/v1/blobs/{name}", b.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

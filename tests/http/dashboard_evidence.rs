//! Evidence files on the dashboard: the run page and the page of an `evidence.captured` link
//! each file's digest to its blob, the link serves the file's bytes, and a file the store does
//! not hold is shown as missing.

use crate::blobs::name_of;
use crate::dashboard::{page, select};
use crate::support::http as app;

use app::{App, envelope, spawn_app};
use assay::blobs::{BlobName, signed};
use reqwest::StatusCode;
use scraper::Html;
use serde_json::json;

/// The row of the evidence table whose path cell is `path`: (the blob link's href, its
/// presence badge's class list).
fn row(html: &Html, path: &str) -> (String, String) {
    let rows = select(html, "table.evidence tbody tr");
    let row = rows
        .iter()
        .find(|r| r.text().next().is_some_and(|t| t == path))
        .unwrap_or_else(|| panic!("no evidence row for {path}: {}", html.html()));
    let pick = |css: &str| row.select(&scraper::Selector::parse(css).unwrap()).next();
    let href = pick("a.blob").and_then(|a| a.value().attr("href")).expect("a blob link").to_owned();
    let badge = pick("td:last-child span").expect("a presence cell");
    (href, badge.value().attr("class").unwrap_or("").to_owned())
}

async fn served(app: &App, href: &str) -> (StatusCode, Vec<u8>) {
    let r = app.http.get(app.url(href)).send().await.expect("GET");
    (r.status(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn evidence_files_link_to_their_blobs_and_missing_ones_say_so() {
    let app = spawn_app().await;
    let worker = app.key("w1", &["worker"]).await;
    let kept = b"the kept file".to_vec();
    let (kept_name, lost_name) = (name_of(&kept), name_of(b"never uploaded"));
    let header = signed::header_value(&worker, &BlobName::parse(&kept_name).unwrap());
    let r = app
        .http
        .put(app.url(&format!("/v1/blobs/{kept_name}")))
        .header(signed::SIGNATURE_HEADER, header)
        .body(kept.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let files = json!([
        {"path": "kept.txt", "blake3": kept_name, "bytes": kept.len()},
        {"path": "lost.txt", "blake3": lost_name, "bytes": 14},
    ]);
    let manifest = format!("{kept_name}  kept.txt\n{lost_name}  lost.txt\n");
    let data = json!({"run": "r-1", "files": files, "bundle_digest": name_of(manifest.as_bytes())});
    let acks = app.append_ok(&[envelope(&worker, "evidence.captured", "run/r-1", data)]).await;

    let run_page = page(&app.http, &app.url, "/runs/r-1").await;
    let event_page = page(&app.http, &app.url, &format!("/events/{}", acks[0].1)).await;
    for (what, (status, html)) in [("run page", run_page), ("event page", event_page)] {
        assert_eq!(status, StatusCode::OK, "{what}");
        let (href, badge) = row(&html, "kept.txt");
        assert_eq!(href, format!("/v1/blobs/{kept_name}"), "{what}");
        assert!(badge.contains("stored"), "{what}: {badge}");
        assert_eq!(served(&app, &href).await, (StatusCode::OK, kept.clone()), "{what}");
        let (href, badge) = row(&html, "lost.txt");
        assert_eq!(href, format!("/v1/blobs/{lost_name}"), "{what}");
        assert!(badge.contains("missing"), "{what}: {badge}");
        assert_eq!(served(&app, &href).await.0, StatusCode::NOT_FOUND, "{what}");
    }
}

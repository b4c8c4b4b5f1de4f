//! The bulk read path (SQLite's C API) returns exactly what the sqlx path returns.

use crate::support::store;
use assay::clock::now_ns;
use assay::keyfile;
use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
use assay::store::{Durability, Store};

use serde_json::json;

#[tokio::test]
async fn bulk_pages_equal_sqlx_pages() {
    let dir = tempfile::tempdir().unwrap();
    let db = store::TestDb::new(dir.path(), "l.db");
    let store = Store::open(&db.target, Durability::Relaxed, true).await.unwrap();
    let admin = keyfile::generate("admin").unwrap();
    let ledger = Ledger::init(
        store.clone(),
        "scan.test/log",
        keyfile::generate("ledger").unwrap(),
        &[admin.verifier()],
        LedgerOptions::default(),
    )
    .await
    .unwrap();
    // Key events carry a subject; a control event has the fixed subject `control`; mixed sizes.
    let mut batch = Vec::new();
    for i in 0..300 {
        let data = if i % 2 == 0 { json!({"reason": "x".repeat(i + 1)}) } else { json!({}) };
        let ty = if i % 2 == 0 { "control.paused" } else { "control.resumed" };
        batch.push(Incoming::Decoded(build_envelope(&admin, ty, Some("control"), data, None, now_ns())));
    }
    ledger.append(batch).await.unwrap();
    ledger.shutdown().await;
    for (from, limit) in [(0, 1), (0, 1000), (17, 50), (299, 10), (400, 10)] {
        let a = store.records(from, limit).await.unwrap();
        let b = store.records_bulk(from, limit).await.unwrap();
        assert_eq!(a, b, "from {from} limit {limit}");
    }
    assert_eq!(store.records_bulk(0, 1000).await.unwrap().len(), 301);
}

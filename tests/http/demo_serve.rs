//! `assay demo --serve` builds the demo ledger, then serves it: the URL comes on its own line
//! once the server accepts connections, and the served audit is the demo's.

use std::process::Command;

use crate::support::demo;

#[test]
fn demo_serve_prints_its_url_and_serves_the_demo_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, printed) = demo::serve(&dir.path().join("lab"));
    let headline = printed.iter().find(|l| l.contains("canonical artifacts pass the claim/evidence audit"));
    let url = demo::url(&printed);
    let audit: serde_json::Value = serde_json::from_str(&demo::get_ok(url, "/v1/audit")).unwrap();
    let served = audit["state"]["headline"].as_str().unwrap_or_else(|| panic!("no headline in {audit}"));
    assert!(headline.expect("the headline line").contains(served), "served headline {served}");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop: {status}");
}

//! `/report` on the served demo lab: the corpus report, byte for byte what `assay report
//! --corpus` writes for the same ledger (from the file and through the server), as HTML or
//! Markdown (`?format=md`); linked from the overview; a bad format is a 400.

use std::process::Command;

use crate::support::demo;
use crate::support::http::assay_cli;

#[test]
fn the_report_page_is_the_cli_report_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    let (mut child, printed) = demo::serve_copy(&lab);
    let url = demo::url(&printed).to_owned();
    let db = lab.join("assay.db");
    let cli = |source: &[&str], format: &str| {
        let out = dir.path().join(format!("corpus-{}.{format}", source[0].trim_start_matches('-')));
        let mut args = vec!["report", "--corpus", "--format", format, "--out", out.to_str().unwrap()];
        args.extend_from_slice(source);
        let (code, stdout, stderr) = assay_cli(&args);
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
        std::fs::read_to_string(out).unwrap()
    };

    let (_, head, html) = demo::get(&url, "/report");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/html; charset=utf-8"), "{head}");
    assert_eq!(html, cli(&["--db", db.to_str().unwrap()], "html"), "/report and the CLI on the file");
    assert_eq!(html, cli(&["--server", &url], "html"), "/report and the CLI through the server");
    assert_eq!(demo::get_ok(&url, "/report"), html, "asked again: the same bytes");

    let (_, head, md) = demo::get(&url, "/report?format=md");
    assert!(head.to_ascii_lowercase().contains("content-type: text/markdown; charset=utf-8"), "{head}");
    assert_eq!(md, cli(&["--db", db.to_str().unwrap()], "md"));

    let (_, head, body) = demo::get(&url, "/report?format=pdf");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("format must be html or md"), "{body}");
    assert!(demo::get_ok(&url, "/").contains("href=\"/report\""), "the overview links the report");

    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn a_fresh_ledger_reports_nothing_yet_at_its_genesis_checkpoint() {
    let app = crate::support::http::spawn_app().await;
    let (status, md) = app.get_text("/report?format=md").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(md.contains("**0 of 0 canonical artifacts pass the claim/evidence audit.**"), "{md}");
    assert!(md.contains("| 1 | 0 | 0 |\n"), "one point, at the genesis checkpoint: {md}");
    assert!(md.contains("0 of 0 canonical artifacts fail"), "{md}");
    app.stop().await;
}

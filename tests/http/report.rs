//! `/artifacts/{slug}/report` on the dashboard: the same bytes `assay report --artifact` writes
//! from the same ledger (by `--db` and by `--server`), Markdown with `?format=md`, linked from
//! the artifact's page; an unknown slug is a 404 and an unknown format a 400.

use std::process::Command;

use crate::support::demo;

/// `assay report --artifact SLUG ARGS… --out FILE [--format FORMAT]`: the file's bytes.
fn cli_report(dir: &std::path::Path, slug: &str, args: &[&str], format: &str) -> Vec<u8> {
    let out = dir.join(format!("cli-{}.{format}", blake3::hash(format!("{args:?}").as_bytes()).to_hex()));
    let run = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["report", "--artifact", slug, "--format", format, "--out"])
        .arg(&out)
        .args(args)
        .env_remove("ASSAY_DB")
        .output()
        .unwrap();
    assert!(run.status.success(), "assay report: {}", String::from_utf8_lossy(&run.stderr));
    std::fs::read(&out).unwrap()
}

#[test]
fn the_dashboard_serves_the_same_report_as_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    let (mut child, printed) = demo::serve_copy(&lab);
    let url = demo::url(&printed).to_owned();
    let db = lab.join("assay.db").to_str().unwrap().to_owned();
    let audit: serde_json::Value = serde_json::from_str(&demo::get_ok(&url, "/v1/audit")).unwrap();
    let artifacts = audit["state"]["artifacts"].as_array().expect("artifacts").clone();
    let failing = artifacts.iter().find(|a| a["passes"] == false).expect("a failing artifact");
    let passing = artifacts.iter().find(|a| a["passes"] == true).expect("a passing artifact");
    for a in [failing, passing] {
        let slug = a["slug"].as_str().unwrap();
        let page = demo::get_ok(&url, &format!("/artifacts/{slug}"));
        assert!(
            page.contains(&format!("href=\"/artifacts/{slug}/report\"")),
            "the artifact page links its report"
        );
        let (status, head, html) = demo::get(&url, &format!("/artifacts/{slug}/report"));
        assert_eq!(status, 200, "{head}");
        assert!(head.to_lowercase().contains("content-type: text/html; charset=utf-8"), "{head}");
        assert!(html.contains(&format!("data-passes=\"{}\"", a["passes"])), "{slug}");
        assert_eq!(html.as_bytes(), cli_report(dir.path(), slug, &["--db", &db], "html"), "{slug}: --db");
        assert_eq!(
            html.as_bytes(),
            cli_report(dir.path(), slug, &["--server", &url], "html"),
            "{slug}: --server"
        );
        let (status, head, md) = demo::get(&url, &format!("/artifacts/{slug}/report?format=md"));
        assert_eq!(status, 200, "{head}");
        assert!(head.to_lowercase().contains("content-type: text/markdown; charset=utf-8"), "{head}");
        assert_eq!(md.as_bytes(), cli_report(dir.path(), slug, &["--db", &db], "md"), "{slug}: md");
    }
    let (status, _, body) = demo::get(&url, "/artifacts/no-such-artifact/report");
    assert_eq!(status, 404);
    assert!(body.contains("no-such-artifact"), "the 404 names the slug");
    let slug = failing["slug"].as_str().unwrap();
    assert_eq!(demo::get(&url, &format!("/artifacts/{slug}/report?format=pdf")).0, 400);
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

//! The dashboard in a real browser: `assay demo --size small --serve` on port 0, then
//! `tests/browser/dashboard.mjs` drives Debian's chromium through playwright-core (headline
//! equals `/v1/audit`, an artifact's claims and reasons, a newly appended event in the live
//! feed within 2 s, the GPU and kernel charts) and saves a screenshot of every page under
//! `target/screenshots/`.
//!
//! Needs node, /usr/bin/chromium and `npm ci --prefix tests/browser`. Without them the test
//! fails under CI=true (which installs them) and is skipped otherwise.

use std::path::Path;
use std::process::Command;

#[path = "support/demo.rs"]
mod demo;

const CHROMIUM: &str = "/usr/bin/chromium";

/// What is missing to run the browser test, if anything.
fn missing(browser_dir: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".to_owned());
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules is missing (npm ci --prefix tests/browser)".to_owned());
    }
    None
}

#[test]
fn the_dashboard_works_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = root.join("tests/browser");
    if let Some(what) = missing(&browser_dir) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the browser test cannot run: {what}");
        }
        eprintln!("skipping the browser test: {what}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    let (mut child, printed) = demo::serve(&lab);
    let url = demo::url(&printed).to_owned();

    let screenshots = root.join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let pages = ["home", "artifacts", "artifact", "gpus", "kernels", "queue", "run", "events", "event"];
    // Screenshots of an earlier run must not pass for this one's.
    for page in pages {
        let _ = std::fs::remove_file(screenshots.join(format!("{page}.png")));
    }
    let run = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .env("DASHBOARD_URL", &url)
        .env("ASSAY_BIN", env!("CARGO_BIN_EXE_assay"))
        .env("DEMO_DIR", &lab)
        .env("SCREENSHOT_DIR", &screenshots)
        .output()
        .expect("node runs");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let stopped = child.wait().unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    println!("{out}");
    assert!(run.status.success(), "the browser checks failed ({}):\n{out}\n{err}", run.status);
    assert!(out.contains("in the live feed after"), "the live-feed check ran:\n{out}");
    for page in pages {
        let png = screenshots.join(format!("{page}.png"));
        assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 0), "{} was saved", png.display());
    }
    assert!(stopped.success(), "graceful stop: {stopped}");
}

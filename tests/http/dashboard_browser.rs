//! The dashboard in a real browser, Debian's chromium driven through playwright-core, with a
//! screenshot of every page under `target/screenshots/`:
//!
//! - `assay demo --size small --serve` on port 0, then `tests/browser/dashboard.mjs`: headline
//!   equals `/v1/audit`, an artifact's claims and reasons, a newly appended event in the live
//!   feed within 2 s, the GPU and queue health beside the headline, the GPU and kernel charts
//!   (Xid bursts counted, a time axis), no lane needing a reset shown free, and a run chart
//!   with train and val loss whose claim link leads to the claim's row.
//! - `assay serve --require-read-token --read-token-file` on the small demo, then
//!   `tests/browser/login.mjs`: a page redirects to `/login?next=…`, a wrong token is refused
//!   without a cookie, the right one sets the `HttpOnly; SameSite=Strict` cookie and leads to
//!   `next`, the cookie authorizes the headline's `/v1/audit` and the live feed, and signing out
//!   sends the browser back to `/login`.
//!
//! - `assay demo --size small --serve` on port 0, then `tests/browser/report.mjs`: a failing
//!   and a passing artifact's report load with nothing fetched beside them, their verdicts,
//!   registrations and observed values equal `/v1/audit`, and each prints to a PDF; so does the
//!   corpus report (`/report`), whose headline, trend end and failing artifacts are the audit's.
//!
//! Needs node, /usr/bin/chromium and `npm ci --prefix tests/browser`. Without them the tests
//! fail under CI=true (which installs them) and are skipped otherwise.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use crate::support::demo;
use crate::support::skip;

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

/// `tests/browser`, if the browser tests can run; `None` means skip. Under CI=true what is
/// missing is a failure instead.
fn browser_dir() -> Option<PathBuf> {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(what) = missing(&browser_dir) {
        skip::skip("the browser test", &what);
        return None;
    }
    Some(browser_dir)
}

/// `target/screenshots/`, without the `names` (`<name>.png`) of an earlier run: its
/// screenshots must not pass for this one's.
fn screenshot_dir(names: &[&str]) -> PathBuf {
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    for name in names {
        let _ = std::fs::remove_file(screenshots.join(format!("{name}.png")));
    }
    screenshots
}

/// Runs `node <script>` with `env`. The assay variables of the caller's environment are
/// removed, so the `assay` the script runs only sees what the script passes it.
fn node(script: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut command = Command::new("node");
    command.arg(script).env_remove("ASSAY_DB").env_remove("ASSAY_TOKEN").env_remove("ASSAY_LEDGER_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("node runs")
}

/// The script's stdout (also printed); fails with its stdout and stderr unless it succeeded.
fn passed(run: &Output) -> String {
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let err = String::from_utf8_lossy(&run.stderr);
    println!("{out}");
    assert!(run.status.success(), "the browser checks failed ({}):\n{out}\n{err}", run.status);
    out
}

/// Each `<name>.png` of `names` was saved in `screenshots`.
fn assert_saved(screenshots: &Path, names: &[&str]) {
    for name in names {
        let png = screenshots.join(format!("{name}.png"));
        assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 0), "{} was saved", png.display());
    }
}

/// A server the test started; killed on drop, so a failed check does not leave it running.
struct Served {
    child: Option<Child>,
}

impl Served {
    /// Stops the server gracefully (SIGTERM) and returns how it exited.
    fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `assay serve --db <db> --listen 127.0.0.1:0` with `extra` arguments: the server and the URL
/// it prints once bound (its first line; it prints nothing after it, so its stdout is let go).
fn serve(db: &Path, extra: &[&std::ffi::OsStr]) -> (Served, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .arg("serve")
        .arg("--db")
        .arg(db)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_LEDGER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("assay serve");
    let mut served = Served { child: Some(child) };
    let stdout = served.child.as_mut().and_then(|c| c.stdout.take()).expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("serve output");
    let url = line.trim().trim_end_matches('/').to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "serve printed {line:?}");
    (served, url)
}

/// A fresh random-looking read token.
fn random_token() -> String {
    let half = || {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
        h.finish()
    };
    format!("tok-{:016x}{:016x}", half(), half())
}

#[test]
fn the_dashboard_works_in_chromium() {
    let Some(browser_dir) = browser_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    let (child, printed) = demo::serve_copy(&lab);
    let server = Served { child: Some(child) };
    let url = demo::url(&printed).to_owned();

    let pages =
        ["home", "artifacts", "artifact", "gpus", "kernels", "queue", "run", "run-claims", "events", "event"];
    let screenshots = screenshot_dir(&pages);
    let run = node(
        &browser_dir.join("dashboard.mjs"),
        &[
            ("DASHBOARD_URL", url.as_ref()),
            ("ASSAY_BIN", env!("CARGO_BIN_EXE_assay").as_ref()),
            ("DEMO_DIR", lab.as_os_str()),
            ("SCREENSHOT_DIR", screenshots.as_os_str()),
        ],
    );
    let stopped = server.stop();
    let out = passed(&run);
    assert!(out.contains("in the live feed after"), "the live-feed check ran:\n{out}");
    assert_saved(&screenshots, &pages);
    assert!(stopped.success(), "graceful stop: {stopped}");
}

#[test]
fn signing_in_works_in_chromium() {
    let Some(browser_dir) = browser_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    let db = demo::copy(&lab);
    let token = random_token();
    let token_file = dir.path().join("read-tokens");
    std::fs::write(&token_file, format!("# the browser test's token\n{token}\n")).unwrap();
    let (server, url) = serve(
        Path::new(&db),
        &["--require-read-token".as_ref(), "--read-token-file".as_ref(), token_file.as_os_str()],
    );

    let shots = ["login", "login-failed", "signed-in"];
    let screenshots = screenshot_dir(&shots);
    let run = node(
        &browser_dir.join("login.mjs"),
        &[
            ("DASHBOARD_URL", url.as_ref()),
            ("READ_TOKEN", token.as_ref()),
            ("ASSAY_BIN", env!("CARGO_BIN_EXE_assay").as_ref()),
            ("LEDGER_DB", db.as_ref()),
            ("DEMO_DIR", lab.as_os_str()),
            ("SCREENSHOT_DIR", screenshots.as_os_str()),
        ],
    );
    let stopped = server.stop();
    let out = passed(&run);
    for step in 1..=6 {
        assert!(out.contains(&format!("ok: [{step}]")), "check {step} ran:\n{out}");
    }
    assert!(out.contains("in the live feed over the cookie after"), "the live-feed check ran:\n{out}");
    assert!(out.contains("signed out:"), "the sign-out check ran:\n{out}");
    assert_saved(&screenshots, &shots);
    assert!(stopped.success(), "graceful stop: {stopped}");
}

#[test]
fn the_report_prints_to_pdf_in_chromium() {
    let Some(browser_dir) = browser_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab");
    let (child, printed) = demo::serve_copy(&lab);
    let server = Served { child: Some(child) };
    let url = demo::url(&printed).to_owned();
    let pdfs = dir.path().join("pdf");

    let screenshots = screenshot_dir(&["report"]);
    let run = node(
        &browser_dir.join("report.mjs"),
        &[
            ("DASHBOARD_URL", url.as_ref()),
            ("PDF_DIR", pdfs.as_os_str()),
            ("SCREENSHOT_DIR", screenshots.as_os_str()),
        ],
    );
    let stopped = server.stop();
    let out = passed(&run);
    assert!(out.contains("printed to a PDF"), "the PDF check ran:\n{out}");
    assert!(out.contains("the corpus report printed to a PDF"), "the corpus report's check ran:\n{out}");
    let corpus = std::fs::read(pdfs.join("corpus.pdf")).expect("the corpus report's PDF");
    assert!(corpus.starts_with(b"%PDF-"), "corpus.pdf is a PDF");
    for i in 0..2 {
        let pdf = std::fs::read(pdfs.join(format!("report-{i}.pdf"))).expect("the PDF");
        assert!(pdf.starts_with(b"%PDF-") && pdf.len() > 1000, "report-{i}.pdf is a PDF");
    }
    assert_saved(&screenshots, &["report"]);
    assert!(stopped.success(), "graceful stop: {stopped}");
}

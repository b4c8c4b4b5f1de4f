//! One way for a test to say it cannot run here. Std only, so any test file can include it with
//! `#[path = "support/skip.rs"] mod skip;`.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write;

/// True under `CI=true`, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says why a test cannot run here, and under `CI=true` fails it instead. libtest hides what a
/// passing test prints with `eprintln!`; a direct write to the process's stderr is not captured,
/// so the reason reaches the person running `cargo test`.
#[track_caller]
pub fn skip(what: &str, reason: &str) {
    assert!(!in_ci(), "CI=true: {what} cannot run: {reason}");
    say(what, reason);
}

/// Says why a test does not run, without failing under CI (for a test that runs only when
/// asked, such as one that restarts the shared database).
pub fn say(what: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}: {reason}");
}

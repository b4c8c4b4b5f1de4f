//! A reader that closes our stdout early (`assay log | head`) ends the command quietly: exit
//! status 0, no panic, no error message.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::export::Demo;

fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

#[test]
fn commands_whose_reader_goes_away_exit_quietly() {
    // The small demo of a seed the report tests use too (built once per test process).
    let demo = Demo::new(3);
    let db = demo.db();
    let db = db.as_str();
    // Each prints far more than a pipe buffer holds, so the writes after the close must fail.
    for args in [
        vec!["log", "--db", db, "--json"],
        vec!["log", "--db", db],
        vec!["replay", "--db", db, "--projection", "audit"],
    ] {
        let mut child = assay().args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "{args:?} printed nothing");
        // The reader is dropped here: the pipe is closed with most of the output unread.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?} said: {stderr}");
    }
}

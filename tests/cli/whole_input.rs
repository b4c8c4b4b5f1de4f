//! A large input is checked whole before anything is appended: a bad line after the first
//! request's worth of lines stores nothing, from a file or from stdin, and so does an id that
//! a line reuses from a line far before it with other bytes. A run cut short leaves a prefix
//! appended; running the same envelopes again appends the rest.

use std::ffi::OsStr;
use std::process::Stdio;

use crate::support;

use support::{Lab, Out};

/// `assay append --db DB ARGS…` with stdin read from `input`.
fn append_from_stdin(lab: &Lab, args: &[&OsStr], input: &std::path::Path) -> Out {
    let mut c = support::command();
    c.args(["append", "--db", lab.db.as_str()]).args(args);
    c.stdin(Stdio::from(std::fs::File::open(input).expect("the input"))).current_dir(lab.path(""));
    let cmdline = format!("{c:?}");
    Out::from_output(cmdline, c.output().expect("running the assay binary"))
}

/// Signs NDJSON into envelopes (one per line) without appending them.
fn signed(lab: &Lab, key: &std::path::Path, name: &str, ndjson: String) -> std::path::PathBuf {
    let file = lab.write(&format!("{name}.ndjson"), ndjson);
    let out = lab.run([
        "append".as_ref(),
        "--sign-only".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--ndjson".as_ref(),
        file.as_os_str(),
    ]);
    lab.write(&format!("{name}.envelopes"), out.ok().stdout)
}

fn lines(n: usize, bad_at: usize, bad: &str) -> String {
    (0..n)
        .map(|i| {
            if i == bad_at {
                format!("{bad}\n")
            } else {
                format!(
                    "{{\"type\":\"metric.recorded\",\"subject\":\"run/r\",\"data\":{{\"run\":\"r\",\"name\":\"x\",\"step\":{i},\"value\":1}}}}\n"
                )
            }
        })
        .collect()
}

#[test]
fn a_bad_line_late_in_a_large_input_stores_nothing() {
    let lab = Lab::new();
    let w = lab.worker("w1");
    let before = lab.records();
    let cases = [
        (
            "role",
            r#"{"type":"run.queued","subject":"run/r","data":{"run":"r","project":"p","needs_gpu":false,"spec":{}}}"#,
            "[role_not_allowed]",
        ),
        (
            "schema",
            r#"{"type":"metric.recorded","subject":"run/r","data":{"run":"r","name":"x","step":-1,"value":1}}"#,
            "[schema_violation]",
        ),
        (
            "ledger-only",
            r#"{"type":"artifact.admitted","subject":"artifact/a","data":{"slug":"a","version":1,"submission":"0000000000000000000000000000000000000000000000000000000000000000","reasons":[]}}"#,
            "[ledger_only]",
        ),
    ];
    for (name, bad, code) in cases {
        let file = lab.write(&format!("{name}.ndjson"), lines(2500, 2200, bad));
        let out = lab
            .db(&["append"], &["--key".as_ref(), w.key.as_os_str(), "--ndjson".as_ref(), file.as_os_str()]);
        let out = out.status(2);
        assert!(out.stderr.contains("line 2201"), "{name}: {}", out.stderr);
        assert!(out.stderr.contains(code), "{name}: {}", out.stderr);
        assert_eq!(lab.records(), before, "{name}: nothing stored");
    }
}

/// Envelopes on stdin are checked whole as a file is (the input is spooled to a temporary file
/// and read again to append); a good input appends every line, and `--json` prints one
/// `{"seq","digest"}` per line in input order.
#[test]
fn stdin_is_checked_whole_then_appended() {
    let lab = Lab::new();
    let w = lab.worker("w1");
    let before = lab.records();
    let bad =
        r#"{"type":"metric.recorded","subject":"run/r","data":{"run":"r","name":"x","step":-1,"value":1}}"#;
    let envelopes = signed(&lab, &w.key, "bad", lines(2500, 2200, bad));
    let out = append_from_stdin(&lab, &["--envelopes".as_ref(), "-".as_ref()], &envelopes).status(2);
    assert!(out.stderr.contains("line 2201") && out.stderr.contains("[schema_violation]"), "{}", out.stderr);
    assert_eq!(lab.records(), before, "nothing stored");

    let good =
        r#"{"type":"metric.recorded","subject":"run/r","data":{"run":"r","name":"x","step":0,"value":2}}"#;
    let envelopes = signed(&lab, &w.key, "good", lines(2500, 2200, good));
    let out =
        append_from_stdin(&lab, &["--envelopes".as_ref(), "-".as_ref(), "--json".as_ref()], &envelopes).ok();
    let acks = out.acks();
    assert_eq!(acks.len(), 2500);
    let seqs: Vec<u64> = acks.iter().map(|a| a.0).collect();
    assert_eq!(seqs, (before..before + 2500).collect::<Vec<_>>(), "one ack per line, in input order");
    for line in out.json_lines() {
        assert_eq!(line.as_object().map(|o| o.len()), Some(2), "only seq and digest: {line}");
    }
    assert_eq!(lab.records(), before + 2500);
}

/// A line that reuses the id of a line far before it (other requests' worth of lines apart)
/// with other bytes is refused before anything is stored, and the first bad line is the one
/// named, whichever kind of fault it has.
#[test]
fn an_id_reused_late_with_other_bytes_stores_nothing() {
    let lab = Lab::new();
    let w = lab.worker("w1");
    let before = lab.records();
    let with_id = |step: usize, id: &str| {
        format!(
            r#"{{"type":"metric.recorded","subject":"run/r","data":{{"run":"r","name":"x","step":{step},"value":1}},"id":"{id}"}}"#
        )
    };
    let schema_bad =
        r#"{"type":"metric.recorded","subject":"run/r","data":{"run":"r","name":"x","step":-1,"value":1}}"#;
    let input = |bad_at: Option<usize>| -> String {
        (0..2500)
            .map(|i| match i {
                4 => with_id(4, "same"),
                2299 => with_id(2299, "same"),
                i if Some(i) == bad_at => schema_bad.to_owned(),
                i => with_id(i, &format!("id-{i}")),
            })
            .map(|l| l + "\n")
            .collect()
    };
    for (name, bad_at, line, code) in [
        ("reuse", None, "line 2300", "[conflict]"),
        ("reuse-then-schema", Some(2400), "line 2300", "[conflict]"),
        ("schema-then-reuse", Some(1200), "line 1201", "[schema_violation]"),
    ] {
        let file = lab.write(&format!("{name}.ndjson"), input(bad_at));
        let out = lab
            .db(&["append"], &["--key".as_ref(), w.key.as_os_str(), "--ndjson".as_ref(), file.as_os_str()])
            .status(2);
        assert!(out.stderr.contains(line) && out.stderr.contains(code), "{name}: {}", out.stderr);
        if code == "[conflict]" {
            assert!(
                out.stderr.contains("\"same\"") || out.stderr.contains(", same)"),
                "{name}: {}",
                out.stderr
            );
        }
        assert_eq!(lab.records(), before, "{name}: nothing stored");
    }
}

/// What a run cut short during its append pass leaves (a prefix of the input appended) is no
/// obstacle to running the same envelopes again: the lines already in are acknowledged as
/// already present, the rest appended, each once.
#[test]
fn running_the_same_envelopes_again_appends_the_rest() {
    let lab = Lab::new();
    let w = lab.worker("w1");
    let before = lab.records();
    let good =
        r#"{"type":"metric.recorded","subject":"run/r","data":{"run":"r","name":"x","step":0,"value":2}}"#;
    let all = signed(&lab, &w.key, "all", lines(2500, 0, good));
    let text = std::fs::read_to_string(&all).expect("the envelopes");
    let prefix: String = text.lines().take(1200).map(|l| format!("{l}\n")).collect();
    let prefix = lab.write("prefix.envelopes", prefix);
    lab.db(&["append"], &["--envelopes".as_ref(), prefix.as_os_str()]).ok();
    assert_eq!(lab.records(), before + 1200);

    let out = lab.db(&["append"], &["--envelopes".as_ref(), all.as_os_str()]).ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 2500, "one acknowledgement a line");
    assert_eq!(lines.iter().filter(|l| l.ends_with("(already present)")).count(), 1200, "{}", out.stdout);
    assert!(lines[..1200].iter().all(|l| l.ends_with("(already present)")), "the prefix is what was present");
    assert_eq!(lab.records(), before + 2500, "each envelope once");
    let again = lab.db(&["append"], &["--envelopes".as_ref(), all.as_os_str(), "--json".as_ref()]).ok();
    assert_eq!(again.acks(), out_acks(&out), "a third run acknowledges the same records");
    assert_eq!(lab.records(), before + 2500);
}

/// The (seq, digest) pairs of plain `append` output (`seq N DIGEST[ (already present)]`).
fn out_acks(out: &Out) -> Vec<(u64, String)> {
    out.lines()
        .iter()
        .map(|l| {
            let mut words = l.split_whitespace().skip(1);
            let seq = words.next().and_then(|s| s.parse().ok()).expect("a seq");
            (seq, words.next().expect("a digest").to_owned())
        })
        .collect()
}

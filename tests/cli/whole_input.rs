//! A large input is checked whole before anything is appended: a bad line after the first
//! request's worth of lines stores nothing.

use crate::support;

use support::Lab;

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

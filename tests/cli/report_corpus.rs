//! `assay report --corpus` on the small demo lab: its headline, failing artifacts and reasons
//! are the audit's (`assay audit --json`); its trend has one point per signed checkpoint and
//! ends at the headline; the same ledger gives the same bytes; bad input writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::Lab;

/// (slug, reason code) → the reasons' details, from the Markdown report's sections.
type Failing = BTreeMap<(String, String), Vec<String>>;

fn cells(row: &str) -> Vec<String> {
    row.trim().trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect()
}

/// The trend table rows (size, passing, canonical) and the failing artifacts by code.
fn parse_md(md: &str) -> (Vec<(u64, u64, u64)>, Failing) {
    let trend_at = md.find("## Trend").expect("a trend section");
    let failing_at = md.find("## Failing artifacts, by reason").expect("a failing section");
    let trend = md[trend_at..failing_at]
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes().get(2).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let c: Vec<u64> = cells(l).iter().map(|x| x.parse().expect("a number")).collect();
            (c[0], c[1], c[2])
        })
        .collect();
    let mut failing = Failing::new();
    let mut code = String::new();
    for line in md[failing_at..].lines() {
        if let Some(rest) = line.strip_prefix('`') {
            code = rest.split('`').next().expect("a code").to_owned();
        } else if line.starts_with("| ") && !line.starts_with("| Artifact") {
            let c = cells(line);
            let details =
                if c[2].is_empty() { Vec::new() } else { c[2].split(", ").map(str::to_owned).collect() };
            failing.insert((c[0].clone(), code.clone()), details);
        }
    }
    (trend, failing)
}

/// The same, from the audit: canonical artifacts that do not pass, by reason code.
fn failing_of(audit: &Value) -> Failing {
    let mut out = Failing::new();
    for a in audit["artifacts"].as_array().expect("artifacts") {
        if a["canonical_version"].is_null() || a["passes"] == true {
            continue;
        }
        for r in a["reasons"].as_array().expect("reasons").iter().filter_map(Value::as_str) {
            let (code, detail) = r.split_once(':').map_or((r, None), |(c, d)| (c, Some(d)));
            let details =
                out.entry((a["slug"].as_str().expect("slug").to_owned(), code.to_owned())).or_default();
            details.extend(detail.map(str::to_owned));
        }
    }
    out
}

#[test]
fn the_corpus_report_is_the_audit_with_its_trend_and_the_same_bytes_twice() {
    let lab = Lab::new();
    let dir = lab.path("demo");
    let demo = lab.run(["demo", "--size", "small", "--dir", dir.to_str().expect("UTF-8")]).ok();
    // "verify:      ok (N records, K checkpoints)"
    let verify = demo.stdout.lines().find(|l| l.starts_with("verify:")).expect("the verify line").to_owned();
    let words: Vec<&str> = verify.split(['(', ' ', ')']).filter(|w| !w.is_empty()).collect();
    let records: u64 = words[2].parse().expect("records");
    let checkpoints: usize = words[4].parse().expect("checkpoints");
    let db = dir.join("assay.db");
    let db = db.to_str().expect("UTF-8");
    let audit = lab.run(["audit", "--db", db, "--json"]).ok().json();

    // --out DIR names the file; md and html from the same state.
    let out = lab.path("reports");
    std::fs::create_dir(&out).expect("mkdir");
    let said = lab.run(["report", "--corpus", "--db", db, "--out", out.to_str().expect("UTF-8")]).ok();
    let html = std::fs::read_to_string(out.join("corpus.html")).expect("corpus.html");
    assert!(said.stdout.contains("corpus.html"), "{}", said.stdout);
    let md_path = lab.path("corpus.md");
    lab.run(["report", "--corpus", "--db", db, "--format", "md", "--out", md_path.to_str().expect("UTF-8")])
        .ok();
    let md = std::fs::read_to_string(&md_path).expect("corpus.md");

    let headline = audit["headline"].as_str().expect("headline");
    assert!(md.contains(&format!("**{headline}.**")), "{md}");
    assert!(html.contains(&format!(
        "data-passing=\"{}\" data-canonical=\"{}\">{headline}.",
        audit["artifacts_passing"], audit["artifacts_canonical"]
    )));
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && !html.contains("<script"));

    let (trend, failing) = parse_md(&md);
    assert_eq!(failing, failing_of(&audit), "failing artifacts and reasons");
    assert!(failing.keys().any(|(_, code)| code == "claim_post_hoc"), "the demo's post-hoc claim");
    assert_eq!(trend.len(), checkpoints.min(200), "a point per checkpoint: {trend:?}");
    assert!(trend.windows(2).all(|w| w[0].0 < w[1].0), "ascending sizes");
    let last = *trend.last().expect("a point");
    let at_end = (
        records,
        audit["artifacts_passing"].as_u64().unwrap(),
        audit["artifacts_canonical"].as_u64().unwrap(),
    );
    assert_eq!(last, at_end, "the last point is the headline at the latest checkpoint");
    assert_eq!(html.matches("<tr data-size=").count(), trend.len());

    // The same ledger, the same bytes.
    let again = lab.path("again.html");
    lab.run(["report", "--corpus", "--db", db, "--out", again.to_str().expect("UTF-8")]).ok();
    let again = std::fs::read(&again).expect("again.html");
    assert_eq!(blake3::hash(&again), blake3::hash(html.as_bytes()));

    // Bad input: a ledger that does not exist, a format that does not: exit 2, nothing written.
    let nowhere = lab.path("nowhere.html");
    let missing = lab.path("missing.db");
    let bad = lab.run([
        "report",
        "--corpus",
        "--db",
        missing.to_str().expect("UTF-8"),
        "--out",
        nowhere.to_str().expect("UTF-8"),
    ]);
    let bad = bad.status(2);
    assert!(bad.stderr.contains("missing.db"), "{}", bad.stderr);
    lab.run(["report", "--corpus", "--db", db, "--format", "pdf", "--out", nowhere.to_str().expect("UTF-8")])
        .status(2);
    assert!(!nowhere.exists());
    let names: BTreeSet<String> = std::fs::read_dir(&out)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, BTreeSet::from(["corpus.html".to_owned()]));
}

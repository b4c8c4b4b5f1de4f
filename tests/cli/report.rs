//! `assay report --artifact`: the report states the numbers `assay audit --json` states (verdicts,
//! registration, n, estimates, intervals) and every claim verbatim; the same ledger (and a copy
//! of it) gives the same bytes; an unknown slug writes nothing; and every event the report
//! cites is in the artifact's audit bundle, which `assay verify-bundle` checks offline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::export::{Demo, Out, assay, s};
use crate::support::store::TestDb;

/// `assay report --artifact SLUG --db DB --out OUT [--format FORMAT]`.
fn report(db: &str, slug: &str, out: &Path, format: &str) -> Out {
    assay(&["report", "--artifact", slug, "--db", db, "--out", &s(out), "--format", format])
}

/// Appends group claims to the first artifact with `val/loss` metric claims: a group of every
/// such run, a group claimed far off, a ratio of two halves, and a replication of it. Returns
/// the artifact's slug.
fn group_claims(demo: &Demo) -> String {
    let mut runs: BTreeMap<String, String> = BTreeMap::new();
    let mut slug = None;
    for r in demo.log() {
        let data = &r["event"]["data"];
        // A preregistered claim is first asserted without evidence; its restatement cites it.
        if r["type"] == "claim.asserted"
            && data["check"]["kind"] == "metric"
            && data["check"]["metric"] == "val/loss"
            && let Some(evidence) = data["evidence"][0].as_str()
        {
            slug.get_or_insert_with(|| data["artifact"].as_str().expect("artifact").to_owned());
            runs.insert(data["check"]["run"].as_str().expect("run").to_owned(), evidence.to_owned());
        }
    }
    let slug = slug.expect("a val/loss claim in the demo");
    assert!(runs.len() >= 2, "two runs with val/loss: {runs:?}");
    let ids: Vec<&String> = runs.keys().collect();
    let (a, b) = ids.split_at(ids.len() / 2);
    let evidence: Vec<&String> = runs.values().collect::<BTreeSet<_>>().into_iter().collect();
    let claim = |id: &str, statement: &str, check: Value| {
        json!({"type": "claim.asserted", "subject": format!("artifact/{slug}"), "data": {
            "artifact": slug, "claim": id, "statement": statement, "location": "README.md#groups",
            "check": check, "evidence": evidence}})
    };
    let base = json!({"metric": "val/loss", "agg": "last", "stat": "mean"});
    let with = |extra: Value| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let events = [
        claim(
            "g1",
            "Mean validation loss over the seeds lies in [0, 100] <as \"stated\"> & checked.",
            with(json!({"kind": "group", "runs": ids, "claimed": {"lo": "0", "hi": "100"}})),
        ),
        claim(
            "g2",
            "Mean loss is at least 1e6.",
            with(json!({"kind": "group", "runs": ids, "claimed": {"lo": "1000000"}})),
        ),
        claim(
            "g3",
            "The first seeds' loss is 0.5–2× the others'.",
            with(json!({"kind": "compare_groups", "runs": a, "baseline_runs": b, "as": "ratio",
                "claimed": {"lo": "0.5", "hi": "2"}})),
        ),
        claim(
            "g4",
            "It replicates.",
            with(json!({"kind": "replicated", "as": "difference", "claimed": {"lo": "-1", "hi": "1"},
                "pairs": [{"runs": a, "baseline_runs": b}, {"runs": b, "baseline_runs": a}]})),
        ),
    ];
    demo.append("author-apatel", &events).ok();
    slug
}

/// `s` as maud writes it in text and attributes.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The `<section>` of claim `id` in an HTML report.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start =
        html.find(&format!("id=\"claim-{id}\"")).unwrap_or_else(|| panic!("no section of claim {id}"));
    let end = html[start..].find("</section>").expect("the section's end");
    &html[start..start + end]
}

/// The latest statement of every claim, by (artifact, claim), from the log: read once for all
/// the artifacts, not once per artifact (`assay log --json` of the whole ledger each time was a
/// quarter of the processes this module starts, for the same lines).
fn statements(demo: &Demo) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for r in demo.log() {
        let data = &r["event"]["data"];
        if r["type"] == "claim.asserted" {
            out.insert(
                (data["artifact"].as_str().unwrap().to_owned(), data["claim"].as_str().unwrap().to_owned()),
                data["statement"].as_str().unwrap().to_owned(),
            );
        }
    }
    out
}

#[test]
fn the_report_states_the_audits_numbers_and_every_claim_verbatim() {
    let demo = Demo::new(7);
    let grouped = group_claims(&demo);
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    let slugs: Vec<&str> =
        audit["artifacts"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap()).collect();
    assert!(slugs.contains(&grouped.as_str()));
    let out = demo.path("reports");
    std::fs::create_dir(&out).unwrap();
    let mut intervals = 0;
    let said = statements(&demo);
    // What `audit --artifact SLUG --json` prints, from the whole audit above: its artifact and
    // its claims (the command filters the same report). One process per artifact was a third
    // of the processes this test starts; the equality is checked once, on the grouped artifact.
    let of = |slug: &str| {
        let artifact = audit["artifacts"].as_array().unwrap().iter().find(|a| a["slug"] == slug).unwrap();
        let claims: Vec<&Value> =
            audit["claims"].as_array().unwrap().iter().filter(|c| c["artifact"] == slug).collect();
        json!({"artifact": artifact, "claims": claims})
    };
    let grouped_alone = assay(&["audit", "--db", &demo.db(), "--artifact", &grouped, "--json"]).json();
    assert_eq!(grouped_alone, of(&grouped), "`audit --artifact` is the whole audit's slice");
    for slug in slugs {
        let one = of(slug);
        report(&demo.db(), slug, &out, "html").ok();
        report(&demo.db(), slug, &out, "md").ok();
        let stem = slug.replace('/', "_");
        let html = std::fs::read_to_string(out.join(format!("{stem}.html"))).unwrap();
        let md = std::fs::read_to_string(out.join(format!("{stem}.md"))).unwrap();
        let passes = one["artifact"]["passes"].as_bool().unwrap();
        assert!(html.contains(&format!("id=\"report-verdict\" data-passes=\"{passes}\"")), "{slug}");
        assert!(md.contains(if passes { "**Passes**" } else { "**Does not pass**" }), "{slug}");
        for c in one["claims"].as_array().unwrap() {
            let id = c["claim"].as_str().unwrap();
            let part = section(&html, id);
            assert!(
                part.contains(&format!("data-verdict=\"{}\"", c["verdict"].as_str().unwrap())),
                "{slug} {id}"
            );
            assert!(
                part.contains(&format!("data-registration=\"{}\"", c["registration"].as_str().unwrap())),
                "{slug} {id}"
            );
            let statement = &said[&(slug.to_owned(), id.to_owned())];
            assert!(part.contains(&escaped(statement)), "{slug} {id}: the statement verbatim");
            assert!(md.contains(&format!("> {statement}")), "{slug} {id}: the statement in the markdown");
            for reason in c["reasons"].as_array().unwrap() {
                assert!(
                    part.contains(&format!("data-reason=\"{}\"", escaped(reason.as_str().unwrap()))),
                    "{reason}"
                );
            }
            for item in c["context"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()) {
                let (code, detail) = item.split_once(':').unwrap();
                let (value, pair) = match detail.rsplit_once(" (pair ") {
                    Some((v, p)) => (v, Some(format!("pair {}", p.trim_end_matches(')')))),
                    None => (detail, None),
                };
                let attr = match code {
                    "n" => "n",
                    "estimate" => "estimate",
                    "observed_interval" => "interval",
                    "observed" | "observed_delta" => "value",
                    _ => continue,
                };
                intervals += usize::from(attr == "interval");
                let wanted = format!("data-{attr}=\"{}\"", escaped(value));
                let row = match &pair {
                    Some(p) => {
                        let at =
                            part.find(&format!("data-pair=\"{p}\"")).unwrap_or_else(|| panic!("{id}: {p}"));
                        &part[at..at + part[at..].find("</tr>").unwrap()]
                    }
                    None => part,
                };
                assert!(row.contains(&wanted), "{slug} {id}: {wanted}");
            }
        }
    }
    // g1, g2, g3 and the two pairs of g4.
    assert!(intervals >= 5, "{intervals} intervals checked");
}

#[test]
fn the_same_ledger_gives_the_same_bytes_and_an_unknown_slug_writes_nothing() {
    let demo = Demo::new(3);
    let slug = group_claims(&demo);
    let copy = TestDb::new(demo.dir.path(), "copy.db");
    assay(&["copy", "--from", &demo.db(), "--to", &copy.target]).ok();
    let digest =
        |p: PathBuf| blake3::hash(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    for format in ["html", "md"] {
        let (one, two, three) = (demo.path("one"), demo.path("two"), demo.path("three"));
        for dir in [&one, &two, &three] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let printed = report(&demo.db(), &slug, &one, format).ok().stdout;
        let file = format!("{}.{format}", slug.replace('/', "_"));
        assert!(printed.starts_with(&s(&one.join(&file))), "prints where it wrote: {printed}");
        report(&demo.db(), &slug, &two, format).ok();
        report(&copy.target, &slug, &three, format).ok();
        let named = demo.path(&format!("named.{format}"));
        report(&demo.db(), &slug, &named, format).ok();
        let first = digest(one.join(&file));
        assert_eq!(first, digest(two.join(&file)), "{format}: twice");
        assert_eq!(first, digest(three.join(&file)), "{format}: a copy of the ledger");
        assert_eq!(first, digest(named), "{format}: --out FILE");
    }
    let md =
        std::fs::read_to_string(demo.path("one").join(format!("{}.md", slug.replace('/', "_")))).unwrap();
    assert!(md.starts_with("# ") && md.contains("\n## Provenance\n") && !md.contains("<html"), "markdown");

    let empty = demo.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = report(&demo.db(), "no-such-artifact", &empty, "html");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no-such-artifact"), "names the slug: {}", out.stderr);
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "nothing written");
}

/// The blake3 of every event envelope's payload in a bundle (its in-toto statements left out).
fn bundle_digests(file: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let env: Value = serde_json::from_str(line).unwrap();
            let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
            let event: Value = serde_json::from_slice(&payload).unwrap();
            event.get("specversion").map(|_| blake3::hash(&payload).to_hex().to_string())
        })
        .collect()
}

#[test]
fn every_event_the_report_cites_is_in_the_bundle_that_verifies_offline() {
    let demo = Demo::new(11);
    let slug = group_claims(&demo);
    let bundle = demo.path("b.intoto.jsonl");
    assay(&["export", "bundle", "--db", &demo.db(), "--artifact", &slug, "--out", &s(&bundle)]).ok();
    let verified = assay(&[
        "verify-bundle",
        &s(&bundle),
        "--ledger-key",
        &s(&demo.ledger_vkey()),
        "--authentic-only",
        "--json",
    ]);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
    let html_file = demo.path("r.html");
    let md_file = demo.path("r.md");
    report(&demo.db(), &slug, &html_file, "html").ok();
    report(&demo.db(), &slug, &md_file, "md").ok();
    let html = std::fs::read_to_string(&html_file).unwrap();
    let cited: BTreeSet<String> =
        html.split("data-digest=\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect();
    assert!(cited.len() > 3, "{} events cited", cited.len());
    assert_eq!(cited, bundle_digests(&bundle), "the report cites exactly the bundle's events");
    // Each inclusion proof of the sidecar is in the report, verbatim.
    let proofs = std::fs::read_to_string(format!("{}.proof", bundle.display())).unwrap();
    let md = std::fs::read_to_string(&md_file).unwrap();
    let header = "c2sp.org/tlog-proof@v1\n";
    let chunks: Vec<&str> = proofs.split(header).skip(1).collect();
    assert_eq!(chunks.len(), cited.len());
    for chunk in chunks {
        assert!(md.contains(&format!("```\n{header}{chunk}")), "a proof of the sidecar is in the report");
    }
    let vkey = std::fs::read_to_string(demo.ledger_vkey()).unwrap();
    // `name+id+key`: the key id is the first two parts (the key's base64 may hold `+`).
    let keyid = vkey.trim().splitn(3, '+').take(2).collect::<Vec<_>>().join("+");
    assert!(html.contains(&format!("id=\"report-keyid\">{keyid}<")), "the ledger key {keyid}");
}

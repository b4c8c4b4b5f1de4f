//! `assay demo` end to end at the small size, through the binary: it exits 0 and verifies;
//! the verdicts `assay audit --json` reports agree, claim by claim, with a recount made here
//! from the raw events of `assay log --json` (plain rules written for this test, not the
//! projections crate); every verdict class occurs; and replaying twice gives the same
//! digests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::demo_groups;
use crate::support::export::Demo;

pub(super) fn assay(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_LEDGER_KEY")
        .output()
        .expect("the assay binary runs");
    assert!(
        out.status.success(),
        "assay {} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Supported,
    Contradicted,
    Unsupported,
    Tainted,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::Unsupported => "unsupported",
            Verdict::Tainted => "tainted",
        }
    }
}

#[derive(Debug, Default)]
struct RunFacts {
    /// (worker, normalized PCI id): nodes of one model share PCI bus ids.
    gpus: BTreeSet<(String, String)>,
    started: Option<i64>,
    finished: Option<i64>,
    exit_code: Option<i64>,
    quiesced: bool,
    evidence: u32,
}

struct Launch {
    kernel: String,
    variant: Value,
    backend: String,
    run: String,
    /// "passed", "failed" or "faulted".
    outcome: &'static str,
}

struct Xid {
    /// (host, normalized PCI id).
    gpu: (String, String),
    time: i64,
    taints: bool,
}

/// (step, seq, value) of one metric point.
type Point = (u64, u64, f64);

struct ClaimState {
    check: Value,
    evidence: Vec<String>,
    withdrawn: bool,
    /// Its check was first asserted before any run it names started (a kernel check: before
    /// any matching launch).
    preregistered: bool,
}

/// Everything the recount needs, folded from the log in seq order.
#[derive(Default)]
struct Recount {
    roles: HashMap<String, Vec<String>>,
    runs: HashMap<String, RunFacts>,
    /// (run, metric) → (step, seq, value).
    metrics: HashMap<(String, String), Vec<Point>>,
    /// evidence.captured digest → signing key name.
    evidence: HashMap<String, String>,
    xids: Vec<Xid>,
    launches: Vec<Launch>,
    claims: BTreeMap<(String, String), ClaimState>,
    canonical: BTreeMap<String, u64>,
    /// (slug, version) submitted with `require_preregistration`.
    require_preregistration: BTreeSet<(String, u64)>,
}

/// `dddd:bb:dd` from either PCI form the drivers print.
fn pci(text: &str) -> String {
    let text = text.split('.').next().unwrap_or(text);
    let parts: Vec<u64> =
        text.split(':').map(|p| u64::from_str_radix(p, 16).expect("hex PCI field")).collect();
    assert_eq!(parts.len(), 3, "PCI id {text}");
    format!("{:04x}:{:02x}:{:02x}", parts[0], parts[1], parts[2])
}

fn time_ns(event: &Value) -> i64 {
    let t = event["time"].as_str().expect("time");
    chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339").timestamp_nanos_opt().expect("in range")
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// NVIDIA's hardware and NVLink Xids taint; 13, 31, 43, 45 are the application's;
/// anything else goes by the severity the runner recorded.
fn xid_taints(code: u64, severity: &str) -> bool {
    match code {
        48 | 61 | 62 | 63 | 64 | 74 | 79 | 92 | 94 | 95 | 119 | 120 | 144..=150 => true,
        13 | 31 | 43 | 45 => false,
        _ => matches!(severity, "hardware" | "nvlink"),
    }
}

impl Recount {
    fn from_log(lines: &str) -> Recount {
        let mut r = Recount::default();
        for line in lines.lines() {
            let record: Value = serde_json::from_str(line).expect("log --json lines are JSON");
            r.apply(&record);
        }
        r
    }

    fn run(&mut self, id: &str) -> &mut RunFacts {
        self.runs.entry(id.to_owned()).or_default()
    }

    fn apply(&mut self, record: &Value) {
        let event = &record["event"];
        let data = &event["data"];
        let seq = record["seq"].as_u64().expect("seq");
        let run = s(data, "run");
        match record["type"].as_str().unwrap_or_default() {
            "ledger.initialized" => {
                for k in data["admin_keys"].as_array().into_iter().flatten() {
                    let name = k.as_str().unwrap_or_default().split('+').next().unwrap_or_default();
                    self.roles.insert(name.to_owned(), vec!["admin".into()]);
                }
            }
            "key.registered" => {
                let name = s(data, "vkey").split('+').next().unwrap_or_default().to_owned();
                let roles = data["roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str())
                    .map(str::to_owned);
                self.roles.insert(name, roles.collect());
            }
            "dispatch.decided" => {
                if data["accepted"] == Value::Bool(true)
                    && let Some(gpu) = data["gpu"].as_str()
                {
                    self.run(&run).gpus.insert((s(data, "worker"), pci(gpu)));
                }
            }
            "run.started" => {
                let t = time_ns(event);
                let f = self.run(&run);
                f.started = Some(f.started.map_or(t, |s| s.min(t)));
                if let Some(gpu) = data["gpu"].as_str() {
                    f.gpus.insert((s(data, "worker"), pci(gpu)));
                }
            }
            "run.finished" => {
                let t = time_ns(event);
                let f = self.run(&run);
                f.finished = Some(f.finished.map_or(t, |x| x.max(t)));
                f.exit_code = data["exit_code"].as_i64();
            }
            "run.quiesced" => self.run(&run).quiesced = true,
            "evidence.captured" => {
                self.run(&run).evidence += 1;
                let signer = s(event, "source").trim_start_matches("assay:key/").to_owned();
                self.evidence.insert(s(record, "digest"), signer);
            }
            "metric.recorded" => {
                let value = data["value"].as_f64().expect("metric value");
                let step = data["step"].as_u64().expect("metric step");
                self.metrics.entry((run, s(data, "name"))).or_default().push((step, seq, value));
            }
            "gpu.xid" => {
                let code = data["code"].as_u64().expect("Xid code");
                // Every demo node names itself in its Xids.
                let host = data["host"].as_str().expect("gpu.xid host").to_owned();
                self.xids.push(Xid {
                    gpu: (host, pci(&s(data, "pci"))),
                    time: time_ns(event),
                    taints: xid_taints(code, &s(data, "severity")),
                });
            }
            ty @ ("kernel.launch.completed" | "kernel.launch.faulted") => {
                let outcome = if ty == "kernel.launch.faulted" {
                    "faulted"
                } else if data["passed"] == Value::Bool(true) {
                    "passed"
                } else {
                    "failed"
                };
                self.launches.push(Launch {
                    kernel: s(data, "kernel"),
                    variant: data["variant"].clone(),
                    backend: s(data, "backend"),
                    run,
                    outcome,
                });
            }
            "claim.asserted" => {
                let evidence = data["evidence"].as_array().into_iter().flatten().filter_map(|d| d.as_str());
                let key = (s(data, "artifact"), s(data, "claim"));
                let check = data["check"].clone();
                let preregistered = match self.claims.get(&key) {
                    Some(earlier) if earlier.check == check => earlier.preregistered,
                    _ => self.before_data(&check),
                };
                self.claims.insert(
                    key,
                    ClaimState {
                        check,
                        evidence: evidence.map(str::to_owned).collect(),
                        withdrawn: false,
                        preregistered,
                    },
                );
            }
            "artifact.submitted" if data["require_preregistration"] == Value::Bool(true) => {
                let version = data["version"].as_u64().expect("version");
                self.require_preregistration.insert((s(data, "slug"), version));
            }
            "claim.withdrawn" => {
                if let Some(c) = self.claims.get_mut(&(s(data, "artifact"), s(data, "claim"))) {
                    c.withdrawn = true;
                }
            }
            "artifact.admitted" => {
                self.canonical.insert(s(data, "slug"), data["version"].as_u64().expect("version"));
            }
            "artifact.superseded" => {
                let slug = s(data, "slug");
                if self.canonical.get(&slug) == data["version"].as_u64().as_ref() {
                    self.canonical.remove(&slug);
                }
            }
            _ => {}
        }
    }

    /// No run the check names has started yet (a kernel check: no launch matches it yet).
    fn before_data(&self, c: &Value) -> bool {
        let runs = match c["kind"].as_str().unwrap_or_default() {
            "kernel" => return !self.launches.iter().any(|l| Self::matches(c, l)),
            "compare" => vec![s(c, "run"), s(c, "baseline_run")],
            "metric" | "completed" => vec![s(c, "run")],
            _ => demo_groups::named_runs(c),
        };
        runs.iter().all(|r| self.runs.get(r).is_none_or(|f| f.started.is_none()))
    }

    fn matches(c: &Value, l: &Launch) -> bool {
        let want = c.get("variant").and_then(Value::as_object);
        l.kernel == s(c, "kernel")
            && c.get("backend").and_then(Value::as_str).is_none_or(|b| b == l.backend)
            && want.is_none_or(|w| w.iter().all(|(k, v)| l.variant.get(k) == Some(v)))
    }

    /// An artifact's canonical version requires every claim to be preregistered.
    fn requires_preregistration(&self, slug: &str) -> bool {
        self.canonical
            .get(slug)
            .is_some_and(|v| self.require_preregistration.contains(&(slug.to_owned(), *v)))
    }

    /// last = value at the highest step (latest seq on ties); min, max, mean.
    fn aggregate(&self, run: &str, metric: &str, agg: &str) -> Option<f64> {
        let points = self.metrics.get(&(run.to_owned(), metric.to_owned()))?;
        if points.is_empty() {
            return None;
        }
        let values = points.iter().map(|p| p.2);
        Some(match agg {
            "last" => points.iter().max_by_key(|p| (p.0, p.1))?.2,
            "min" => values.fold(f64::INFINITY, f64::min),
            "max" => values.fold(f64::NEG_INFINITY, f64::max),
            "mean" => values.sum::<f64>() / points.len() as f64,
            other => panic!("agg {other}"),
        })
    }

    /// A run a check rests on: finished, started, quiesced, with evidence; for `completed`
    /// checks a nonzero exit contradicts.
    fn require(&self, run: &str, completion: bool, out: &mut Vec<Verdict>) {
        let Some(f) = self.runs.get(run) else {
            out.push(Verdict::Unsupported);
            return;
        };
        match f.finished {
            None => out.push(Verdict::Unsupported),
            Some(_) => {
                if f.started.is_none() || !f.quiesced {
                    out.push(Verdict::Unsupported);
                }
                if completion && f.exit_code != Some(0) {
                    out.push(Verdict::Contradicted);
                }
            }
        }
        if f.evidence == 0 {
            out.push(Verdict::Unsupported);
        }
    }

    fn holds(op: &str, observed: f64, threshold: f64) -> bool {
        match op {
            "lt" => observed < threshold,
            "le" => observed <= threshold,
            "gt" => observed > threshold,
            "ge" => observed >= threshold,
            "eq" => observed == threshold,
            other => panic!("op {other}"),
        }
    }

    fn verdict(&self, claim: &ClaimState) -> Verdict {
        let mut found = Vec::new();
        if claim.evidence.is_empty() {
            found.push(Verdict::Unsupported);
        }
        for digest in &claim.evidence {
            match self.evidence.get(digest) {
                None => found.push(Verdict::Unsupported),
                Some(signer) => {
                    let roles = self.roles.get(signer).cloned().unwrap_or_default();
                    if !roles.iter().any(|r| r == "worker" || r == "runner") {
                        found.push(Verdict::Tainted);
                    }
                }
            }
        }
        let c = &claim.check;
        let number = |k: &str| s(c, k).parse::<f64>().expect("decimal threshold");
        let runs: Vec<String> = match c["kind"].as_str().unwrap_or_default() {
            "metric" => {
                let run = s(c, "run");
                self.require(&run, false, &mut found);
                match self.aggregate(&run, &s(c, "metric"), &s(c, "agg")) {
                    None => found.push(Verdict::Unsupported),
                    Some(v) if !Self::holds(&s(c, "op"), v, number("value")) => {
                        found.push(Verdict::Contradicted)
                    }
                    Some(_) => {}
                }
                vec![run]
            }
            "compare" => {
                let (run, base) = (s(c, "run"), s(c, "baseline_run"));
                self.require(&run, false, &mut found);
                self.require(&base, false, &mut found);
                let agg = s(c, "agg");
                match (
                    self.aggregate(&run, &s(c, "metric"), &agg),
                    self.aggregate(&base, &s(c, "metric"), &agg),
                ) {
                    (Some(a), Some(b)) => {
                        if !Self::holds(&s(c, "op"), a - b, number("margin")) {
                            found.push(Verdict::Contradicted);
                        }
                    }
                    _ => found.push(Verdict::Unsupported),
                }
                vec![run, base]
            }
            "kernel" => {
                let matching: Vec<&Launch> = self.launches.iter().filter(|l| Self::matches(c, l)).collect();
                if matching.is_empty() {
                    found.push(Verdict::Unsupported);
                }
                if matching.iter().any(|l| l.outcome != "passed") {
                    found.push(Verdict::Contradicted);
                }
                matching.iter().map(|l| l.run.clone()).collect()
            }
            "completed" => {
                let run = s(c, "run");
                self.require(&run, true, &mut found);
                vec![run]
            }
            _ if demo_groups::is_group(c) => {
                let runs = demo_groups::named_runs(c);
                for run in &runs {
                    self.require(run, false, &mut found);
                }
                let (metric, agg) = (s(c, "metric"), s(c, "agg"));
                match demo_groups::fit(c, |run| self.aggregate(run, &metric, &agg)) {
                    None | Some(demo_groups::Fit::Straddles) => found.push(Verdict::Unsupported),
                    Some(demo_groups::Fit::Outside) => found.push(Verdict::Contradicted),
                    Some(demo_groups::Fit::Inside) => {}
                }
                runs
            }
            other => panic!("check kind {other}"),
        };
        // A hardware Xid on the run's GPU (its PCI id on its worker) between its start and its
        // end taints.
        for run in runs {
            let Some(f) = self.runs.get(&run) else { continue };
            let Some(start) = f.started else { continue };
            let end = f.finished.unwrap_or(i64::MAX);
            if self
                .xids
                .iter()
                .any(|x| x.taints && f.gpus.contains(&x.gpu) && (start..=end).contains(&x.time))
            {
                found.push(Verdict::Tainted);
            }
        }
        found.into_iter().max().unwrap_or(Verdict::Supported)
    }
}

/// Checks the small demo of `seed` that `assay demo` built in `dir`, having printed `summary`.
fn check_demo(dir: &Path, seed: &str, summary: &str) {
    assert!(summary.contains("verify:      ok"), "{summary}");
    // Every dispatch refusal the gate knows shows up (the GPU left needing a reset included).
    let refusals = summary.lines().find(|l| l.starts_with("dispatch:")).expect("dispatch line");
    for reason in
        ["gpu_needs_reset", "lane_held_by", "maintenance", "paused", "preflight_failed", "preflight_stale"]
    {
        assert!(refusals.contains(&format!("{reason} ")), "no {reason} refusal in the demo: {refusals}");
    }
    let db = dir.join("assay.db");
    let db = db.to_str().expect("UTF-8 path");

    let audit: Value = serde_json::from_str(&assay(&["audit", "--db", db, "--json"])).expect("audit --json");
    let recount = Recount::from_log(&assay(&["log", "--db", db, "--json"]));

    // Claim by claim.
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_slug: BTreeMap<&str, Vec<Verdict>> = BTreeMap::new();
    let live: Vec<(&(String, String), &ClaimState)> =
        recount.claims.iter().filter(|(_, c)| !c.withdrawn).collect();
    let reported = audit["claims"].as_array().expect("claims");
    assert_eq!(reported.len(), live.len(), "claims not withdrawn");
    assert!(recount.claims.values().any(|c| c.withdrawn), "the demo withdraws claims");
    for ((slug, id), claim) in &live {
        let verdict = recount.verdict(claim);
        let theirs = reported
            .iter()
            .find(|c| c["artifact"] == slug.as_str() && c["claim"] == id.as_str())
            .unwrap_or_else(|| panic!("{slug}#{id} is not in the audit"));
        assert_eq!(
            theirs["verdict"].as_str(),
            Some(verdict.name()),
            "{slug}#{id} {}: reasons {}",
            claim.check,
            theirs["reasons"]
        );
        let registration = if claim.preregistered { "preregistered" } else { "post_hoc" };
        assert_eq!(theirs["registration"].as_str(), Some(registration), "{slug}#{id} {}", claim.check);
        if recount.canonical.contains_key(slug) {
            *counts.entry(verdict.name()).or_default() += 1;
            by_slug.entry(slug).or_default().push(verdict);
        }
    }

    // The counts over canonical artifacts, and every class present.
    for class in ["supported", "contradicted", "unsupported", "tainted"] {
        let theirs = audit["verdicts"][class].as_u64().expect("verdict count");
        let ours = counts.get(class).copied().unwrap_or(0);
        assert_eq!(theirs, ours, "{class} claims of canonical artifacts");
        assert!(ours >= 1, "no {class} claim in the demo (seed {seed})");
    }

    // The headline: canonical artifacts whose claims (at least one) are all supported, and
    // all preregistered where the canonical version requires it.
    let post_hoc = |slug: &str| {
        recount.requires_preregistration(slug) && live.iter().any(|((s, _), c)| s == slug && !c.preregistered)
    };
    let passing = recount
        .canonical
        .keys()
        .filter(|slug| by_slug.get(slug.as_str()).is_some_and(|v| v.iter().all(|v| *v == Verdict::Supported)))
        .filter(|slug| !post_hoc(slug))
        .count();
    let headline =
        format!("{passing} of {} canonical artifacts pass the claim/evidence audit", recount.canonical.len());
    assert_eq!(audit["headline"].as_str(), Some(headline.as_str()));
    assert!(summary.trim_end().ends_with(&headline), "{summary}");

    // Replay is deterministic.
    let first = assay(&["replay", "--db", db, "--digest-only"]);
    let second = assay(&["replay", "--db", db, "--digest-only"]);
    assert_eq!(first, second);
    assert!(first.lines().count() >= 7 && first.contains("verdicts "), "{first}");
}

#[test]
fn small_demo_agrees_with_a_recount_from_the_log() {
    // Seed 7 as the report tests use it: built once per test process (by the same `assay demo
    // --dir DIR --size small --seed 7`), what it printed kept; this test reads a copy.
    let demo = Demo::new(7);
    check_demo(&demo.dir.path().join("lab"), "7", &Demo::printed(7));
    // Another seed, built here.
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_text = dir.path().to_str().expect("UTF-8 temp path");
    let seed = "20260301";
    let summary = assay(&["demo", "--dir", dir_text, "--size", "small", "--seed", seed]);
    check_demo(dir.path(), seed, &summary);
}

/// The README's demo walkthrough, run as written (its `cargo install` line aside: the binary
/// under test stands in for the installed one), in an empty folder, each line under `set -e`
/// and `pipefail`, so a line that fails or a slug or size that does not exist fails the test.
#[test]
fn the_readme_demo_block_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let begin = readme.find("<!-- readme-demo: begin -->").expect("the README marks its demo block");
    let end = readme.find("<!-- readme-demo: end -->").expect("the demo block's end marker");
    let block = &readme[begin..end];
    let body = block.split_once("```sh\n").expect("a sh block").1.rsplit_once("```").expect("its end").0;
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 10, "{block}");
    assert!(
        lines[0].starts_with("cargo install --locked --path ."),
        "the block starts by installing assay: {}",
        lines[0]
    );
    let script = format!("set -euo pipefail\n{}\n", lines[1..].join("\n"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_assay")).parent().expect("the binary's folder").to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_LEDGER_KEY")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the README's demo block failed ({:?})\nscript:\n{script}\nstdout (tail):\n{}\nstderr (tail):\n{}",
        out.status.code(),
        tail(&String::from_utf8_lossy(&out.stdout)),
        tail(&String::from_utf8_lossy(&out.stderr))
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("canonical artifacts pass"), "the audit headline: {}", tail(&stdout));
    assert!(dir.path().join("export/manifest.json").is_file() || dir.path().join("export").is_dir());
    assert!(dir.path().join("fp8.intoto.jsonl").is_file());
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

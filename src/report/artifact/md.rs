//! The report as Markdown: the same model as the HTML page, figures given as the numbers they
//! draw (a table per figure), proofs in fenced blocks.

use std::fmt::Write;

use super::figures::Figure;
use super::model::{ArtifactReport, ClaimPart, Said, registration_words, verdict_words};

/// Text in a table cell or inline: `|` and line breaks would end the cell or the line.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn said(s: &Said) -> String {
    format!("{} (`{}`)", cell(&s.words), s.code)
}

/// `s` in a fenced block (its closing fence on a line of its own).
fn fenced(s: &str) -> String {
    format!("```\n{s}{}```\n", if s.ends_with('\n') { "" } else { "\n" })
}

fn or_dash(s: Option<&str>) -> String {
    s.map_or("—".to_owned(), cell)
}

/// The Markdown text.
pub fn render(r: &ArtifactReport) -> String {
    let mut o = String::new();
    let title = r.title.clone().unwrap_or_else(|| r.slug.clone());
    let _ = writeln!(o, "# {}\n", cell(&title));
    let _ = writeln!(
        o,
        "Artifact `{}`, canonical version {}. Built from the ledger `{}` at its signed checkpoint of size {}.\n",
        r.slug,
        r.canonical_version.map_or("none".to_owned(), |v| v.to_string()),
        cell(&r.provenance.origin),
        r.provenance.size
    );
    let c = &r.counts;
    let _ = writeln!(
        o,
        "**{}** the claim/evidence audit. {} claims: {} supported, {} contradicted, {} unsupported, {} tainted.\n",
        if r.passes { "Passes" } else { "Does not pass" },
        c.total(),
        c.supported,
        c.contradicted,
        c.unsupported,
        c.tainted
    );
    if !r.why_not.is_empty() {
        o.push_str("Why it does not pass:\n\n");
        for s in &r.why_not {
            let _ = writeln!(o, "- {}", said(s));
        }
        o.push('\n');
    }
    o.push_str("## Versions\n\n| version | status | title | content digest (blake3) | submitted at seq |\n|---:|---|---|---|---:|\n");
    for v in &r.versions {
        let _ = writeln!(
            o,
            "| {}{} | {}{} | {} | `{}` | {} |",
            v.version,
            if v.canonical { " (canonical)" } else { "" },
            v.status,
            if v.require_preregistration { ", requires preregistration" } else { "" },
            or_dash(v.title.as_deref()),
            v.content_digest.as_deref().unwrap_or("—"),
            v.submitted_seq
        );
    }
    o.push_str("\n## Claims\n\n");
    for c in &r.claims {
        claim(&mut o, c);
    }
    runs(&mut o, r);
    o.push_str("## What could not be checked\n\n");
    if r.uncertain.is_empty() {
        o.push_str("Nothing: every claim's inputs are in the ledger and every interval is decisive.\n\n");
    }
    for (claim, s) in &r.uncertain {
        let _ = writeln!(o, "- Claim `{claim}`: {}", said(s));
    }
    provenance(&mut o, r);
    o
}

fn claim(o: &mut String, c: &ClaimPart) {
    let _ = writeln!(o, "### Claim `{}` ({})\n", c.id, c.kind);
    for line in c.statement.lines() {
        let _ = writeln!(o, "> {line}");
    }
    let at = c
        .location
        .as_deref()
        .map(|l| format!("Stated at {}; asserted", cell(l)))
        .unwrap_or("Asserted".into());
    let _ = writeln!(o, "\n{at} at seq {}.\n", c.asserted_seq);
    let _ = writeln!(o, "**{}**\n\n{}\n", verdict_words(c.verdict), registration_words(c.registration));
    for s in &c.reasons {
        let _ = writeln!(o, "- {}", said(s));
    }
    if !c.reasons.is_empty() {
        o.push('\n');
    }
    if let Some(check) = &c.check {
        let _ = writeln!(o, "Check: `{check}`\n");
    }
    if !c.observed.is_empty() {
        o.push_str("| | n | estimate | observed interval | claimed | observed value |\n|---|---:|---:|---|---|---|\n");
        for v in &c.observed {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                v.pair.as_deref().unwrap_or(""),
                or_dash(v.n.as_deref()),
                or_dash(v.estimate.as_deref()),
                or_dash(v.interval.as_deref()),
                or_dash(c.claimed.as_deref()),
                or_dash(v.value_shown().as_deref())
            );
        }
        o.push('\n');
    }
    for f in &c.figures {
        figure(o, f);
    }
    for s in &c.notes {
        let _ = writeln!(o, "- {}", said(s));
    }
    let evidence: Vec<String> = c.evidence.iter().map(|d| format!("`{d}`")).collect();
    let _ = writeln!(
        o,
        "\nRuns: {}. Evidence cited: {}.\n",
        if c.runs.is_empty() { "none".to_owned() } else { c.runs.join(", ") },
        if evidence.is_empty() { "none".to_owned() } else { evidence.join(", ") }
    );
}

/// A figure as the numbers it draws.
fn figure(o: &mut String, f: &Figure) {
    match f {
        Figure::Series { title, series, .. } => {
            let _ = writeln!(
                o,
                "*Figure: {}*\n\n| run | points | first step | last step | last value |\n|---|---:|---:|---:|---:|",
                cell(title)
            );
            for (run, points) in series {
                let (first, last) = (points.first(), points.last());
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} |",
                    cell(run),
                    points.len(),
                    first.map_or("—".into(), |p| p.0.to_string()),
                    last.map_or("—".into(), |p| p.0.to_string()),
                    last.map_or("—".into(), |p| p.1.to_string())
                );
            }
        }
        Figure::Strip { title, rows, band } => {
            let _ = writeln!(o, "*Figure: {}*\n\n| group | run | value |\n|---|---|---:|", cell(title));
            for (group, dots) in rows {
                for (run, v) in dots {
                    let _ = writeln!(o, "| {group} | {} | {v} |", cell(run));
                }
            }
            if let Some(b) = band {
                let bound = |v: Option<f64>, inf: &str| v.map_or(inf.to_owned(), |v| v.to_string());
                let _ = writeln!(
                    o,
                    "| interval | {}..{} (estimate {}) | claimed {}..{} |",
                    b.lo,
                    b.hi,
                    b.estimate.map_or("—".into(), |e| e.to_string()),
                    bound(b.claimed_lo, "-inf"),
                    bound(b.claimed_hi, "inf")
                );
            }
        }
    }
    o.push('\n');
}

fn runs(o: &mut String, r: &ArtifactReport) {
    o.push_str("## Runs\n\n");
    if r.runs.is_empty() {
        o.push_str("No claim rests on a run.\n\n");
    } else {
        o.push_str("| run | worker | GPU | started | finished | exit | quiesced | evidence |\n|---|---|---|---|---|---|---|---:|\n");
        for run in &r.runs {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                run.id,
                or_dash(Some(&run.workers.join(", ")).filter(|s| !s.is_empty()).map(String::as_str)),
                or_dash(Some(&run.gpus.join(", ")).filter(|s| !s.is_empty()).map(String::as_str)),
                or_dash(run.started.as_deref()),
                or_dash(run.finished.as_deref()),
                run.exit,
                if run.quiesced { "yes" } else { "no" },
                run.evidence
            );
        }
        o.push('\n');
    }
    o.push_str("## Xids in the runs' windows\n\n");
    if r.xids.is_empty() {
        o.push_str("None: no Xid hit these runs' GPUs while they ran.\n\n");
    } else {
        o.push_str(
            "| run | GPU | host | Xid | class | taints | seq | time |\n|---|---|---|---:|---|---|---:|---|\n",
        );
        for x in &r.xids {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                x.run,
                x.gpu,
                or_dash(x.host.as_deref()),
                x.code,
                x.class,
                if x.taints { "yes" } else { "no" },
                x.seq,
                or_dash(x.time.as_deref())
            );
        }
        o.push('\n');
    }
    if !r.kernel_cells.is_empty() {
        o.push_str("## Kernel matrix cells cited\n\n| claim | kernel | variant | backend | passed | failed | faulted | errors |\n|---|---|---|---|---:|---:|---:|---|\n");
        for k in &r.kernel_cells {
            let _ = writeln!(
                o,
                "| `{}` | {} | `{}` | {} | {} | {} | {} | {} |",
                k.claim,
                cell(&k.kernel),
                cell(&k.variant),
                cell(&k.backend),
                k.passed,
                k.failed,
                k.faulted,
                or_dash(Some(k.errors.join("; ").as_str()).filter(|s| !s.is_empty()))
            );
        }
        o.push('\n');
    }
}

fn provenance(o: &mut String, r: &ArtifactReport) {
    let p = &r.provenance;
    let _ = writeln!(
        o,
        "\n## Provenance\n\nBuilt at the checkpoint of size {} (root `{}`), signed by the ledger key `{}` that the ledger's genesis names. Its note:\n\n{}",
        p.size,
        p.root_hex,
        p.ledger_keyid,
        fenced(&p.note)
    );
    let _ = writeln!(
        o,
        "Every event the verdicts rest on ({}), each with its inclusion proof in that checkpoint's tree. `assay export bundle --artifact {} --out bundle.intoto.jsonl` then `assay verify-bundle bundle.intoto.jsonl --ledger-key ledger.vkey` re-checks them offline.\n\n| seq | type | digest (blake3) |\n|---:|---|---|",
        p.events.len(),
        r.slug
    );
    for e in &p.events {
        let _ = writeln!(o, "| {} | {} | `{}` |", e.seq, e.ty, e.digest);
    }
    o.push_str("\n### Inclusion proofs\n\n");
    for e in &p.events {
        let _ = writeln!(o, "{}", fenced(&e.proof));
    }
}

//! `/artifacts`: every audited artifact with its verdict, filtered by verdict and searched by
//! slug or title; `/artifacts/{slug}`: its claims, each claim's verdict and reasons, the
//! evidence and runs they rest on, its versions, and how to export its audit bundle.

use std::fmt::Write;

use assay_projections::audit::{ArtifactVerdict, Verdict};
use axum::extract::{Path, State};
use axum::response::Html;
use serde::Deserialize;

use super::layout::{
    Nav, artifact_href, digest_link, document, enc, esc, link, pager, pass_badge, query, reason, reasons,
    run_href, thead, verdict_badge,
};
use super::{PageResult, Params, WebError, given, page_slice, paging};
use crate::http::state::AppState;

/// The verdict filters, as `?verdict=` takes them.
const FILTERS: &[(&str, &str)] = &[
    ("", "all"),
    ("pass", "passing"),
    ("fail", "failing"),
    ("supported", "with a supported claim"),
    ("contradicted", "with a contradicted claim"),
    ("unsupported", "with an unsupported claim"),
    ("tainted", "with a tainted claim"),
];

/// Claims shown on an artifact's page at most.
const CLAIMS_MAX: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    verdict: Option<String>,
    q: Option<String>,
    page: Option<String>,
}

fn keep(a: &ArtifactVerdict, verdict: &str) -> bool {
    match verdict {
        "pass" => a.passes,
        "fail" => !a.passes,
        "supported" => a.claims.supported > 0,
        "contradicted" => a.claims.contradicted > 0,
        "unsupported" => a.claims.unsupported > 0,
        "tainted" => a.claims.tainted > 0,
        _ => true,
    }
}

pub async fn list(State(state): State<AppState>, Params(q): Params<ListParams>) -> PageResult {
    let verdict = given(&q.verdict).unwrap_or("");
    if !FILTERS.iter().any(|(v, _)| *v == verdict) {
        let known: Vec<&str> = FILTERS.iter().map(|(v, _)| *v).filter(|v| !v.is_empty()).collect();
        return Err(WebError::bad_request(format!(
            "verdict must be one of {}, got {verdict:?}",
            known.join(", ")
        )));
    }
    let search = given(&q.q).unwrap_or("");
    let needle = search.to_lowercase();

    let p = state.live.read();
    let report = p.audit_report();
    let title_of = |slug: &str| {
        let a = p.corpus.artifact(slug)?;
        a.versions.get(&a.canonical?)?.title.clone()
    };
    let rows: Vec<(&ArtifactVerdict, Option<String>)> = report
        .artifacts
        .iter()
        .filter(|a| keep(a, verdict))
        .map(|a| (a, title_of(&a.slug)))
        .filter(|(a, title)| {
            needle.is_empty()
                || a.slug.to_lowercase().contains(&needle)
                || title.as_deref().is_some_and(|t| t.to_lowercase().contains(&needle))
        })
        .collect();
    let (page_no, pages) = paging(&q.page, rows.len() as u64)?;

    let mut body = format!(r#"<h1>Artifacts</h1><p class="lead">{}</p>"#, esc(&report.headline));
    body.push_str(
        r#"<form class="filters" method="get" action="/artifacts"><label>verdict <select name="verdict">"#,
    );
    for (value, label) in FILTERS {
        let selected = if *value == verdict { " selected" } else { "" };
        let _ = write!(body, r#"<option value="{}"{selected}>{}</option>"#, esc(value), esc(label));
    }
    let _ = write!(
        body,
        r#"</select></label> <label>search <input type="search" name="q" value="{}" placeholder="slug or title"></label> <button type="submit">Apply</button> {}</form>"#,
        esc(search),
        link("/artifacts", "clear"),
    );
    let _ = write!(body, r#"<p class="note" id="artifact-count">{} artifacts match.</p>"#, rows.len());
    let _ = write!(
        body,
        r#"<table id="artifacts">{}<tbody>"#,
        thead(&[
            "artifact",
            "title",
            "version",
            "audit",
            "supported",
            "contradicted",
            "unsupported",
            "tainted",
            "why not"
        ])
    );
    for (a, title) in page_slice(&rows, page_no) {
        let reasons = reasons(a.reasons.iter().take(4), "");
        let more = a.reasons.len().saturating_sub(4);
        let _ = write!(
            body,
            r#"<tr data-slug="{slug_attr}"><td>{slug}</td><td>{title}</td><td class="num">{version}</td><td>{badge}</td><td class="num">{s}</td><td class="num">{c}</td><td class="num">{u}</td><td class="num">{t}</td><td class="reasons">{reasons}{more}</td></tr>"#,
            slug_attr = esc(&a.slug),
            slug = link(&artifact_href(&a.slug), &a.slug),
            title = esc(title.as_deref().unwrap_or("—")),
            version = a.canonical_version.map_or("—".to_owned(), |v| v.to_string()),
            badge = pass_badge(a.passes),
            s = a.claims.supported,
            c = a.claims.contradicted,
            u = a.claims.unsupported,
            t = a.claims.tainted,
            more = if more > 0 { format!("<br>and {more} more") } else { String::new() },
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&pager("/artifacts", &[("verdict", verdict), ("q", search)], page_no, pages));
    Ok(Html(document("Artifacts", Nav::Artifacts, &body)))
}

/// A shell word: single-quoted unless plain.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./@:".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub async fn one(State(state): State<AppState>, Path(slug): Path<String>) -> PageResult {
    let p = state.live.read();
    let report = p.audit_report();
    let corpus_entry = p.corpus.artifact(&slug);
    let verdict = report.artifact(&slug);
    if verdict.is_none() && corpus_entry.is_none() {
        return Err(WebError::not_found(format!("no artifact {slug:?} has been submitted or claimed")));
    }
    let claims_of_slug = p.audit.claims().get(&slug);

    let mut body = format!(r#"<h1 id="artifact-slug">{}</h1>"#, esc(&slug));
    match verdict {
        Some(v) => {
            let _ = write!(
                body,
                r#"<p class="lead" id="artifact-verdict">{badge} canonical version {version}; {n} claims ({s} supported, {c} contradicted, {u} unsupported, {t} tainted).</p>"#,
                badge = pass_badge(v.passes),
                version = v.canonical_version.map_or("none".to_owned(), |v| v.to_string()),
                n = v.claims.total(),
                s = v.claims.supported,
                c = v.claims.contradicted,
                u = v.claims.unsupported,
                t = v.claims.tainted,
            );
            if !v.reasons.is_empty() {
                body.push_str(r#"<p>Why it does not pass:</p><ul class="reasons" id="artifact-reasons">"#);
                for r in &v.reasons {
                    let _ = write!(body, "<li>{}</li>", reason(r));
                }
                body.push_str("</ul>");
            }
        }
        None => body.push_str(
            r#"<p class="lead" id="artifact-verdict">Not audited: no version is canonical and no claim stands.</p>"#,
        ),
    }

    body.push_str("<h2>Claims</h2>");
    let claims: Vec<_> = report.claims_of(&slug).collect();
    if claims.is_empty() {
        body.push_str("<p>No claims stand (none asserted, or all withdrawn).</p>");
    } else {
        let _ = write!(
            body,
            r#"<table id="claims">{}<tbody>"#,
            thead(&["claim", "statement", "check", "verdict", "reasons", "context", "evidence", "runs"])
        );
        for c in claims.iter().take(CLAIMS_MAX) {
            let claim = claims_of_slug.and_then(|m| m.get(&c.claim));
            let statement = claim.map_or(String::new(), |cl| {
                let location = cl
                    .location
                    .as_deref()
                    .map_or(String::new(), |l| format!(r#"<br><span class="sub">at {}</span>"#, esc(l)));
                format!("{}{location}", esc(&cl.statement))
            });
            let evidence: Vec<String> = c.evidence.iter().map(|d| digest_link(d)).collect();
            let runs: Vec<String> = c.runs.iter().map(|r| link(&run_href(r), r)).collect();
            let _ = write!(
                body,
                r#"<tr id="claim-{id}" data-claim="{id}" data-verdict="{v}"><td>{id}</td><td class="statement">{statement}</td><td>{kind}</td><td>{badge}</td><td class="reasons">{reasons}</td><td class="reasons">{context}</td><td>{evidence}</td><td>{runs}</td></tr>"#,
                id = esc(&c.claim),
                v = c.verdict.as_str(),
                kind = esc(c.kind),
                badge = verdict_badge(c.verdict),
                reasons = if c.verdict == Verdict::Supported {
                    "—".to_owned()
                } else {
                    reasons(&c.reasons, "—")
                },
                context = reasons(&c.context, "—"),
                evidence = if evidence.is_empty() { "none cited".to_owned() } else { evidence.join("<br>") },
                runs = if runs.is_empty() { "—".to_owned() } else { runs.join("<br>") },
            );
        }
        body.push_str("</tbody></table>");
        if claims.len() > CLAIMS_MAX {
            let _ = write!(body, r#"<p class="note">The first {CLAIMS_MAX} of {} claims.</p>"#, claims.len());
        }
    }
    let withdrawn: Vec<_> = report.withdrawn.iter().filter(|w| w.artifact == slug).collect();
    if !withdrawn.is_empty() {
        body.push_str(r#"<h3>Withdrawn claims</h3><ul>"#);
        for w in withdrawn {
            let _ = write!(
                body,
                "<li><code>{}</code> at record {}{}</li>",
                esc(&w.claim),
                w.seq,
                w.reason.as_deref().map_or(String::new(), |r| format!(": {}", esc(r)))
            );
        }
        body.push_str("</ul>");
    }

    if let Some(a) = corpus_entry {
        let _ = write!(
            body,
            r#"<h2>Versions</h2><table id="versions">{}<tbody>"#,
            thead(&[
                "version",
                "status",
                "title",
                "runs",
                "files",
                "submission",
                "ledger's reasons",
                "duplicate of"
            ])
        );
        for (version, v) in a.versions.iter().rev() {
            let canonical = if a.canonical == Some(*version) { " (canonical)" } else { "" };
            let runs: Vec<String> = v.runs.iter().map(|r| link(&run_href(r), r)).collect();
            let _ = write!(
                body,
                r#"<tr><td class="num">{version}{canonical}</td><td>{status}</td><td>{title}</td><td>{runs}</td><td class="num">{files}</td><td>{submission}</td><td class="reasons">{reasons}</td><td>{dups}</td></tr>"#,
                status = esc(&serde_json::to_value(v.status)
                    .ok()
                    .and_then(|s| s.as_str().map(str::to_owned))
                    .unwrap_or_default()),
                title = esc(v.title.as_deref().unwrap_or("—")),
                runs = if runs.is_empty() { "—".to_owned() } else { runs.join(", ") },
                files = v.files,
                submission = digest_link(&v.submission),
                reasons = reasons(&v.reasons, ""),
                dups = esc(&v.duplicate_of.join(", ")),
            );
        }
        body.push_str("</tbody></table>");
    }

    let _ = write!(
        body,
        r#"<h2>Audit bundle</h2><p>An offline bundle: every event the verdict rests on, the in-toto claim statements and a SLSA verification summary signed by the ledger, with inclusion proofs. <a id="bundle-download" href="{href}" download>Download it</a> (a tar of the bundle and its proofs, built at the latest checkpoint), then check it anywhere with the ledger's public key alone:</p>
<pre id="bundle-command">tar -xf {file}.bundle.tar
assay verify-bundle {file}.intoto.jsonl --ledger-key ledger.vkey</pre>
<p>Beside the ledger, the CLI builds the same bundle: <code>assay export bundle --db assay.db --artifact {slug} --out bundle.intoto.jsonl</code>.</p>
<p>{events}</p>"#,
        href = esc(&format!("/v1/audit/{}/bundle", enc(&slug))),
        file = esc(&crate::http::bundle_file_stem(&slug)),
        slug = esc(&shell_word(&slug)),
        events = link(
            &format!("/events{}", query(&[("subject", &format!("artifact/{slug}"))])),
            "Every event of this artifact"
        ),
    );
    drop(p);
    Ok(Html(document(&slug, Nav::Artifacts, &body)))
}

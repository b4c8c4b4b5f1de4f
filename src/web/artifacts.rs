//! `/artifacts`: every audited artifact with its verdict, filtered by verdict and searched by
//! slug or title; `/artifacts/{slug}`: its claims, each claim's verdict and reasons, the
//! evidence and runs they rest on, its versions, and how to export its audit bundle; and
//! `/artifacts/{slug}/report`, its report ([`super::report`]).

use assay_projections::audit::{ArtifactVerdict, Registration, Verdict};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Nav, artifact_href, digest_link, enc, joined, lines, link, pager, pass_badge, query, reason, reasons,
    run_href, thead, verdict_badge,
};
use super::page::{Page, PageResult, Params, Viewer, WebError, given, page_slice, paging};
use super::report::{self, ReportParams};
use crate::http::state::AppState;
use crate::report::serde_name;

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

pub async fn list(viewer: Viewer, State(state): State<AppState>, Params(q): Params<ListParams>) -> Response {
    viewer.show(artifacts(&state, q))
}

fn artifacts(state: &AppState, q: ListParams) -> PageResult {
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

    let body = html! {
        h1 { "Artifacts" }
        p.lead { (report.headline) }
        form.filters method="get" action="/artifacts" {
            label {
                "verdict "
                select name="verdict" {
                    @for (value, label) in FILTERS {
                        option value=(value) selected[*value == verdict] { (label) }
                    }
                }
            }
            " "
            label { "search " input type="search" name="q" value=(search) placeholder="slug or title"; }
            " " button type="submit" { "Apply" } " " (link("/artifacts", "clear"))
        }
        p.note #artifact-count { (rows.len()) " artifacts match." }
        table #artifacts {
            (thead(&[
                "artifact",
                "title",
                "version",
                "audit",
                "supported",
                "contradicted",
                "unsupported",
                "tainted",
                "why not"
            ]))
            tbody {
                @for (a, title) in page_slice(&rows, page_no) {
                    @let more = a.reasons.len().saturating_sub(4);
                    tr data-slug=(a.slug) {
                        td { (link(&artifact_href(&a.slug), &a.slug)) }
                        td { (title.as_deref().unwrap_or("—")) }
                        td.num { (a.canonical_version.map_or("—".to_owned(), |v| v.to_string())) }
                        td { (pass_badge(a.passes)) }
                        td.num { (a.claims.supported) }
                        td.num { (a.claims.contradicted) }
                        td.num { (a.claims.unsupported) }
                        td.num { (a.claims.tainted) }
                        td.reasons {
                            (reasons(a.reasons.iter().take(4), ""))
                            @if more > 0 { br; "and " (more) " more" }
                        }
                    }
                }
            }
        }
        (pager("/artifacts", &[("verdict", verdict), ("q", search)], page_no, pages))
    };
    drop(p);
    Ok(Page::new("Artifacts", Nav::Artifacts, body))
}

/// A shell word: single-quoted unless plain.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./@:".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// An artifact's page; or, for a path `<slug>/report` that is not itself an artifact's, the
/// report of `<slug>` (a slug may hold `/`, so the artifact of the whole path comes first).
pub async fn one(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Params(q): Params<ReportParams>,
) -> Response {
    if let Some(of) = slug.strip_suffix(report::SUFFIX)
        && !known(&state, &slug)
    {
        let shown = match report::format_of(&q) {
            Ok(format) => report::artifact_report(&state, of, format).await,
            Err(e) => Err(e),
        };
        return shown.unwrap_or_else(|e| e.page(viewer.signed_in));
    }
    viewer.show(artifact(&state, &slug))
}

/// Whether `slug` was submitted or has claims.
fn known(state: &AppState, slug: &str) -> bool {
    let p = state.live.read();
    p.corpus.artifact(slug).is_some() || p.audit.claims().contains_key(slug)
}

fn artifact(state: &AppState, slug: &str) -> PageResult {
    let p = state.live.read();
    let report = p.audit_report();
    let corpus_entry = p.corpus.artifact(slug);
    let verdict = report.artifact(slug);
    if verdict.is_none() && corpus_entry.is_none() {
        return Err(WebError::not_found(format!("no artifact {slug:?} has been submitted or claimed")));
    }
    let claims_of_slug = p.audit.claims().get(slug);
    let claims: Vec<_> = report.claims_of(slug).collect();
    let withdrawn: Vec<_> = report.withdrawn.iter().filter(|w| w.artifact == slug).collect();

    let body = html! {
        h1 #artifact-slug { (slug) }
        @match verdict {
            Some(v) => {
                p.lead #artifact-verdict {
                    (pass_badge(v.passes)) " canonical version "
                    (v.canonical_version.map_or("none".to_owned(), |v| v.to_string())) "; " (v.claims.total())
                    " claims (" (v.claims.supported) " supported, " (v.claims.contradicted) " contradicted, "
                    (v.claims.unsupported) " unsupported, " (v.claims.tainted) " tainted)."
                }
                @if !v.reasons.is_empty() {
                    p { "Why it does not pass:" }
                    ul.reasons #artifact-reasons { @for r in &v.reasons { li { (reason(r)) } } }
                }
            },
            None => p.lead #artifact-verdict { "Not audited: no version is canonical and no claim stands." },
        }
        h2 { "Claims" }
        @if claims.is_empty() {
            p { "No claims stand (none asserted, or all withdrawn)." }
        } @else {
            table #claims {
                (thead(&["claim", "statement", "check", "verdict", "reasons", "context", "evidence", "runs"]))
                tbody {
                    @for c in claims.iter().take(CLAIMS_MAX) {
                        @let claim = claims_of_slug.and_then(|m| m.get(&c.claim));
                        tr #{ "claim-" (c.claim) } data-claim=(c.claim) data-verdict=(c.verdict.as_str())
                            data-registration=(c.registration.as_str()) {
                            td { (c.claim) }
                            td.statement {
                                @if let Some(cl) = claim {
                                    (cl.statement)
                                    @if let Some(l) = &cl.location { br; span.sub { "at " (l) } }
                                }
                            }
                            td {
                                (c.kind) br;
                                span.sub {
                                    @if c.registration == Registration::Preregistered {
                                        "preregistered"
                                    } @else {
                                        "post hoc"
                                    }
                                }
                            }
                            td { (verdict_badge(c.verdict)) }
                            td.reasons {
                                @if c.verdict == Verdict::Supported {
                                    "—"
                                } @else {
                                    (reasons(&c.reasons, "—"))
                                }
                            }
                            td.reasons { (reasons(&c.context, "—")) }
                            td { (lines(c.evidence.iter().map(|d| digest_link(d)), "none cited")) }
                            td { (lines(c.runs.iter().map(|r| link(&run_href(r), r)), "—")) }
                        }
                    }
                }
            }
            @if claims.len() > CLAIMS_MAX {
                p.note { "The first " (CLAIMS_MAX) " of " (claims.len()) " claims." }
            }
        }
        @if !withdrawn.is_empty() {
            h3 { "Withdrawn claims" }
            ul {
                @for w in withdrawn {
                    li {
                        code { (w.claim) } " at record " (w.seq)
                        @if let Some(r) = &w.reason { ": " (r) }
                    }
                }
            }
        }
        @if let Some(a) = corpus_entry {
            h2 { "Versions" }
            table #versions {
                (thead(&[
                    "version",
                    "status",
                    "title",
                    "runs",
                    "files",
                    "submission",
                    "ledger's reasons",
                    "duplicate of"
                ]))
                tbody {
                    @for (version, v) in a.versions.iter().rev() {
                        tr {
                            td.num { (version) @if a.canonical == Some(*version) { " (canonical)" } }
                            td { (serde_name(v.status)) }
                            td { (v.title.as_deref().unwrap_or("—")) }
                            td { (joined(v.runs.iter().map(|r| link(&run_href(r), r)), html! { ", " }, "—")) }
                            td.num { (v.files) }
                            td { (digest_link(&v.submission)) }
                            td.reasons { (reasons(&v.reasons, "")) }
                            td { (v.duplicate_of.join(", ")) }
                        }
                    }
                }
            }
        }
        h2 { "Report" }
        p #artifact-report {
            "A printable report of this artifact, built at the latest checkpoint with its provenance: "
            a href={ (artifact_href(slug)) (report::SUFFIX) } { "HTML" } " · "
            a href={ (artifact_href(slug)) (report::SUFFIX) "?format=md" } { "Markdown" }
            " (the same bytes as " code { "assay report --artifact " (shell_word(slug)) " --out DIR" } ")."
        }
        (bundle(slug))
    };
    drop(p);
    Ok(Page::new(slug, Nav::Artifacts, body))
}

/// How to download the artifact's audit bundle and check it offline.
fn bundle(slug: &str) -> Markup {
    let file = crate::http::bundle_file_stem(slug);
    html! {
        h2 { "Audit bundle" }
        p {
            "An offline bundle: every event the verdict rests on, the in-toto claim statements and a SLSA "
            "verification summary signed by the ledger, with inclusion proofs. "
            a #bundle-download href={ "/v1/audit/" (enc(slug)) "/bundle" } download { "Download it" }
            " (a tar of the bundle and its proofs, built at the latest checkpoint), then check it "
            "anywhere with the ledger's public key alone:"
        }
        pre #bundle-command {
            "tar -xf " (file) ".bundle.tar\n"
            "assay verify-bundle " (file) ".intoto.jsonl --ledger-key ledger.vkey"
        }
        p {
            "Beside the ledger, the CLI builds the same bundle: "
            code {
                "assay export bundle --db assay.db --artifact " (shell_word(slug))
                " --out bundle.intoto.jsonl"
            }
            "."
        }
        p {
            (link(
                &format!("/events{}", query(&[("subject", &format!("artifact/{slug}"))])),
                "Every event of this artifact"
            ))
        }
    }
}

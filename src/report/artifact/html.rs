//! The report as one self-contained, printable HTML page ([`crate::report::page::document`]).
//! Elements carry the report's numbers as `data-` attributes (`data-verdict`, `data-n`,
//! `data-interval`, …) so a reader program finds them without parsing prose.

use maud::{Markup, html};

use super::figures::svg;
use super::model::{ArtifactReport, ClaimPart, Said, registration_words, verdict_words};
use crate::report::page::document;

/// The page.
pub fn render(r: &ArtifactReport) -> String {
    let title = r.title.clone().unwrap_or_else(|| r.slug.clone());
    let body = html! {
        header {
            h1 #report-title { (title) }
            p.muted {
                "Artifact " code #report-slug { (r.slug) }
                ", canonical version " (r.canonical_version.map_or("none".to_owned(), |v| v.to_string()))
                ". Built from the ledger " code { (r.provenance.origin) } " at its signed checkpoint of size "
                span #report-size { (r.provenance.size) } "."
            }
            p.lead #report-verdict data-passes=(r.passes) {
                @if r.passes {
                    span.pass { "Passes" } " the claim/evidence audit: every claim is supported."
                } @else {
                    span.fail { "Does not pass" } " the claim/evidence audit."
                }
                " " (r.counts.total()) " claims: " (r.counts.supported) " supported, " (r.counts.contradicted)
                " contradicted, " (r.counts.unsupported) " unsupported, " (r.counts.tainted) " tainted."
            }
            @if !r.why_not.is_empty() {
                p { "Why it does not pass:" }
                ul #report-why-not { @for s in &r.why_not { li { (said(s)) } } }
            }
        }
        (versions(r))
        h2 { "Claims" }
        @if r.claims.is_empty() { p { "No claim stands." } }
        @for c in &r.claims { (claim(c)) }
        (runs(r))
        (xids(r))
        (cells(r))
        h2 { "What could not be checked" }
        @if r.uncertain.is_empty() {
            p #report-uncertain { "Nothing: every claim's inputs are in the ledger and every interval is decisive." }
        } @else {
            ul #report-uncertain {
                @for (claim, s) in &r.uncertain { li data-claim=(claim) { "Claim " code { (claim) } ": " (said(s)) } }
            }
        }
        (provenance(r))
    };
    document(&format!("{title}: audit report"), body)
}

fn said(s: &Said) -> Markup {
    html! { (s.words) " " code.muted { "(" (s.code) ")" } }
}

fn versions(r: &ArtifactReport) -> Markup {
    html! {
        h2 { "Versions" }
        table #report-versions {
            thead { tr { th { "version" } th { "status" } th { "title" } th { "content digest (blake3)" } th.num { "submitted at seq" } } }
            tbody {
                @for v in &r.versions {
                    tr {
                        td.num { (v.version) @if v.canonical { " (canonical)" } }
                        td { (v.status) @if v.require_preregistration { br; span.muted { "requires preregistration" } } }
                        td { (v.title.as_deref().unwrap_or("—")) }
                        td { code { (v.content_digest.as_deref().unwrap_or("—")) } }
                        td.num { (v.submitted_seq) }
                    }
                }
            }
        }
    }
}

fn claim(c: &ClaimPart) -> Markup {
    html! {
        section.claim #{ "claim-" (c.id) } data-claim=(c.id) data-verdict=(c.verdict.as_str())
            data-registration=(c.registration.as_str()) {
            h3 { "Claim " code { (c.id) } " (" (c.kind) ")" }
            blockquote.statement { (c.statement) }
            p.muted {
                @if let Some(l) = &c.location { "Stated at " (l) "; asserted" } @else { "Asserted" }
                " at seq " (c.asserted_seq) "."
            }
            p { span.verdict.(c.verdict.as_str()) { (verdict_words(c.verdict)) } }
            p.registration { (registration_words(c.registration)) }
            @if !c.reasons.is_empty() {
                ul.reasons { @for s in &c.reasons { li data-reason=(s.code) { (said(s)) } } }
            }
            @if let Some(check) = &c.check { p { "Check: " code.check { (check) } } }
            @if !c.observed.is_empty() {
                table.observed {
                    thead { tr { th { "" } th.num { "n" } th.num { "estimate" } th { "observed interval" } th { "claimed" } th { "observed value" } } }
                    tbody {
                        @for o in &c.observed {
                            tr data-pair=[o.pair.as_deref()] data-n=[o.n.as_deref()] data-estimate=[o.estimate.as_deref()]
                                data-interval=[o.interval.as_deref()] data-value=[o.value.as_deref()] {
                                td { (o.pair.as_deref().unwrap_or("")) }
                                td.num { (o.n.as_deref().unwrap_or("—")) }
                                td.num { (o.estimate.as_deref().unwrap_or("—")) }
                                td { (o.interval.as_deref().unwrap_or("—")) }
                                td { (c.claimed.as_deref().unwrap_or("—")) }
                                td { (o.value_shown().as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
            @for f in &c.figures { figure { (svg(f)) } }
            @if !c.notes.is_empty() { ul.notes { @for s in &c.notes { li { (said(s)) } } } }
            p.muted {
                "Runs: " (if c.runs.is_empty() { "none".to_owned() } else { c.runs.join(", ") }) ". Evidence cited: "
                @if c.evidence.is_empty() { "none" }
                @for (i, d) in c.evidence.iter().enumerate() { @if i > 0 { ", " } code { (d) } }
                "."
            }
        }
    }
}

fn runs(r: &ArtifactReport) -> Markup {
    html! {
        h2 { "Runs" }
        @if r.runs.is_empty() { p { "No claim rests on a run." } } @else {
            table #report-runs {
                thead { tr { th { "run" } th { "worker" } th { "GPU" } th { "started" } th { "finished" } th { "exit" } th { "quiesced" } th.num { "evidence" } } }
                tbody {
                    @for run in &r.runs {
                        tr data-run=(run.id) {
                            td { code { (run.id) } }
                            td { (dash(&run.workers.join(", "))) }
                            td { (dash(&run.gpus.join(", "))) }
                            td { (run.started.as_deref().unwrap_or("—")) }
                            td { (run.finished.as_deref().unwrap_or("—")) }
                            td { (run.exit) }
                            td { (if run.quiesced { "yes" } else { "no" }) }
                            td.num { (run.evidence) }
                        }
                    }
                }
            }
        }
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "—" } else { s }
}

fn xids(r: &ArtifactReport) -> Markup {
    html! {
        h2 { "Xids in the runs' windows" }
        @if r.xids.is_empty() { p #report-xids { "None: no Xid hit these runs' GPUs while they ran." } } @else {
            table #report-xids {
                thead { tr { th { "run" } th { "GPU" } th { "host" } th.num { "Xid" } th { "class" } th { "taints" } th.num { "seq" } th { "time" } } }
                tbody {
                    @for x in &r.xids {
                        tr {
                            td { code { (x.run) } } td { (x.gpu) } td { (x.host.as_deref().unwrap_or("—")) }
                            td.num { (x.code) } td { (x.class) } td { (if x.taints { "yes" } else { "no" }) }
                            td.num { (x.seq) } td { (x.time.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
}

fn cells(r: &ArtifactReport) -> Markup {
    html! {
        @if !r.kernel_cells.is_empty() {
            h2 { "Kernel matrix cells cited" }
            table #report-kernels {
                thead { tr { th { "claim" } th { "kernel" } th { "variant" } th { "backend" } th.num { "passed" } th.num { "failed" } th.num { "faulted" } th { "errors" } th { "runs" } } }
                tbody {
                    @for k in &r.kernel_cells {
                        tr {
                            td { code { (k.claim) } } td { (k.kernel) } td { code { (k.variant) } } td { (k.backend) }
                            td.num { (k.passed) } td.num { (k.failed) } td.num { (k.faulted) }
                            td { (dash(&k.errors.join("; "))) } td { (dash(&k.runs.join(", "))) }
                        }
                    }
                }
            }
        }
    }
}

fn provenance(r: &ArtifactReport) -> Markup {
    let p = &r.provenance;
    html! {
        h2 { "Provenance" }
        p {
            "Built at the checkpoint of size " (p.size) " (root " code { (p.root_hex) } "), signed by the ledger key "
            code #report-keyid { (p.ledger_keyid) } " that the ledger's genesis names. Its note:"
        }
        pre.proof #report-checkpoint { (p.note) }
        p {
            "Every event the verdicts rest on (" (p.events.len()) "), each with its inclusion proof in that checkpoint's "
            "tree (" code { "c2sp.org/tlog-proof@v1" } "). The artifact's audit bundle holds the same events: "
            code { "assay export bundle --artifact " (r.slug) " --out bundle.intoto.jsonl" } " then "
            code { "assay verify-bundle bundle.intoto.jsonl --ledger-key ledger.vkey" } " re-checks them offline."
        }
        table #report-events {
            thead { tr { th.num { "seq" } th { "type" } th { "digest (blake3)" } } }
            tbody {
                @for e in &p.events {
                    tr data-seq=(e.seq) data-digest=(e.digest) {
                        td.num { (e.seq) } td { (e.ty) } td { code { (e.digest) } }
                    }
                }
            }
        }
        h3 { "Inclusion proofs" }
        @for e in &p.events {
            pre.proof data-seq=(e.seq) { (e.proof) }
        }
    }
}

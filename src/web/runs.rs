//! `/runs/{id}`: a run's state and facts, the claims that cite it (linked to their rows), a
//! line chart per quantity (`metric.recorded` of `run/<id>`; `train/loss` and `val/loss` on
//! one chart, ticks and units on both axes, and the claims that read it), its heartbeats' CPU
//! and RSS, and the evidence it captured.

use std::collections::BTreeMap;

use assay_events::EventType;
use assay_events::record::Record;
use assay_projections::Projections;
use assay_projections::audit::Verdict;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::evidence::{self, Presence};
use super::layout::{
    Nav, artifact_href, claim_href, digest_link, duration_ms, exit_text, joined, link, num, or_dash,
    parse_time_ns, query, thead, time_ns, verdict_badge,
};
use super::page::{Page, PageResult, Viewer, WebError};
use super::svg::{Axis, SERIES_MAX, Scale, Series as Svg, line_chart};
use crate::http::events::PAGE_MAX;
use crate::http::state::AppState;
use crate::store::Store;

/// Records of one type read for a run at most (then charts say they are partial).
const RUN_EVENTS_MAX: usize = 20_000;

/// Metric charts drawn at most (one per quantity and unit).
const CHARTS_MAX: usize = 40;

/// Claims citing the run listed at most.
const CLAIMS_MAX: usize = 500;

/// A claim whose check rests on the run, and the run's metrics it reads.
struct Citation {
    artifact: String,
    claim: String,
    verdict: Verdict,
    metrics: Vec<String>,
}

/// The quantity a metric measures: `loss` of `train/loss` and `val/loss` (also `valid/`,
/// `validation/`, `eval/`, `test/`), so that a chart shows both; any other name is its own.
fn quantity(name: &str) -> &str {
    match name.split_once('/') {
        Some(("train" | "val" | "valid" | "validation" | "eval" | "test", rest)) if !rest.is_empty() => rest,
        _ => name,
    }
}

/// A claim, linked to its row on its artifact's page, with its verdict.
fn claim_link(artifact: &str, claim: &str, verdict: Verdict) -> Markup {
    let text = format!("{artifact}: {claim}");
    html! { (link(&claim_href(artifact, claim), &text)) " " (verdict_badge(verdict)) }
}

/// A metric's unit and its (step, value) points.
type Series = (Option<String>, Vec<(f64, f64)>);

/// A metric's name and its (step, value) points, sorted by step.
type Line = (String, Vec<(f64, f64)>);

/// The run's records of type `ty`, in seq order, at most [`RUN_EVENTS_MAX`], read a page
/// (at most 1000) at a time; and whether there were more.
async fn records_of(store: &Store, subject: &str, ty: EventType) -> Result<(Vec<Record>, bool), WebError> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = store.records_filtered(from, PAGE_MAX, Some(ty.as_str()), Some(subject)).await?;
        let full = page.len() == PAGE_MAX as usize;
        for stored in &page {
            out.push(stored.to_record()?);
        }
        match page.last() {
            Some(last) if full && out.len() < RUN_EVENTS_MAX => from = last.seq + 1,
            _ => return Ok((out, full)),
        }
    }
}

pub async fn page(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> Response {
    viewer.show(run(&state, &id).await)
}

async fn run(state: &AppState, id: &str) -> PageResult {
    let store = state.ledger.store();
    // The rule for identifiers (no record's subject can hold what breaks it).
    assay_events::text::check_text(id, assay_events::text::SUBJECT_CHARS_MAX)
        .map_err(|e| WebError::bad_request(format!("the run id {e}")))?;
    let subject = format!("run/{id}");
    let any = store.records_filtered(0, 1, None, Some(&subject)).await?;
    let (metrics, metrics_more) = records_of(store, &subject, EventType::MetricRecorded).await?;
    let (beats, beats_more) = records_of(store, &subject, EventType::RunHeartbeat).await?;
    let (evidence, _) = records_of(store, &subject, EventType::EvidenceCaptured).await?;

    let presence =
        evidence::presence(state, evidence.iter().flat_map(|r| evidence::files(&r.event.data))).await;
    let (facts, citations) = {
        let p = state.live.read();
        if p.queue.run(id).is_none() && p.audit.run(id).is_none() && any.is_empty() {
            return Err(WebError::not_found(format!("no run {id:?}: no record has subject {subject:?}")));
        }
        let citations = citations(&p, id);
        (facts(&p, id, &subject, &citations), citations)
    };
    let body = html! {
        h1 { "Run " span #run-id { (id) } }
        (facts)
        h2 { "Metrics" }
        (metric_charts(&metrics, metrics_more, &citations))
        h2 { "Heartbeats" }
        (heartbeat_charts(&beats, beats_more))
        h2 { "Evidence" }
        @if evidence.is_empty() { p { "No evidence captured." } }
        @for r in &evidence { (evidence_table(r, &presence)) }
    };
    Ok(Page::new(format!("Run {id}"), Nav::None, body))
}

/// The claims that cite run `id`, and the metrics of this run their checks read.
fn citations(p: &Projections, id: &str) -> Vec<Citation> {
    let report = p.audit_report();
    report
        .claims
        .iter()
        .filter(|c| c.runs.iter().any(|r| r == id))
        .take(CLAIMS_MAX)
        .map(|c| {
            let check = p
                .audit
                .claims()
                .get(&c.artifact)
                .and_then(|m| m.get(&c.claim))
                .and_then(|c| c.check.as_ref());
            let metrics = match check {
                Some(c) if c.named_runs().is_some_and(|runs| runs.contains(&id)) => {
                    c.metric().map(|m| vec![m.to_owned()]).unwrap_or_default()
                }
                _ => Vec::new(),
            };
            Citation { artifact: c.artifact.clone(), claim: c.claim.clone(), verdict: c.verdict, metrics }
        })
        .collect()
}

/// The run's state and facts (the `queue` and `audit` projections), and the claims citing it.
fn facts(p: &Projections, id: &str, subject: &str, citations: &[Citation]) -> Markup {
    html! {
        dl.facts #run-facts {
            @if let Some(r) = p.queue.run(id) {
                dt { "state" } dd { span.state.(r.state.as_str()) { (r.state.as_str()) } }
                dt { "project" } dd { (r.project.as_deref().unwrap_or("—")) }
                dt { "worker" } dd { (r.worker.as_deref().unwrap_or("—")) }
                dt { "GPU" } dd.mono { (r.gpu.as_deref().unwrap_or("none (CPU only)")) }
                dt { "queued" } dd { (happened(r.producer_time.queued.as_deref(), r.queued_at_ns)) }
                dt { "started" } dd { (happened(r.producer_time.started.as_deref(), r.started_at_ns)) }
                dt { "finished" } dd { (happened(r.producer_time.finished.as_deref(), r.finished_at_ns)) }
                dt { "duration" } dd { (or_dash(r.duration_ms.map(duration_ms))) }
                dt { "exit" } dd { (exit_text(r.exit_code, r.signal)) }
                dt { "quiesced" } dd { (happened(r.producer_time.quiesced.as_deref(), r.quiesced_at_ns)) }
                @if let Some(reason) = &r.cancel_reason {
                    dt { "cancelled" } dd { (reason) }
                }
                @if let Some(spec) = &r.spec {
                    dt { "spec" } dd { code.wrap { (spec.to_string()) } }
                }
            }
            @if let Some(f) = p.audit.run(id) {
                dt { "evidence bundles" } dd { (f.evidence) }
                dt { "GPUs (audit)" } dd { (f.gpus.iter().cloned().collect::<Vec<_>>().join(", ")) }
            }
        }
        p { (link(&format!("/events{}", query(&[("subject", subject)])), "Every event of this run")) }
        @if !citations.is_empty() {
            h2 { "Claims citing this run" }
            table #run-claims {
                (thead(&["artifact", "claim", "verdict", "metric"]))
                tbody {
                    @for c in citations {
                        tr {
                            td { (link(&artifact_href(&c.artifact), &c.artifact)) }
                            td { (link(&claim_href(&c.artifact, &c.claim), &c.claim)) }
                            td { (verdict_badge(c.verdict)) }
                            td { @if c.metrics.is_empty() { "—" } @else { (c.metrics.join(", ")) } }
                        }
                    }
                }
            }
        }
    }
}

/// Metrics: one chart per quantity, x = step; train/ and val/ (eval/, test/) of one quantity
/// in one unit share it, with the claims that read it.
fn metric_charts(metrics: &[Record], more: bool, citations: &[Citation]) -> Markup {
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    for r in metrics {
        let d = &r.event.data;
        let (Some(name), Some(step), Some(value)) = (
            d.get("name").and_then(Value::as_str),
            d.get("step").and_then(Value::as_f64),
            d.get("value").and_then(Value::as_f64),
        ) else {
            continue;
        };
        let entry = series.entry(name.to_owned()).or_default();
        if entry.0.is_none() {
            entry.0 = d.get("unit").and_then(Value::as_str).map(str::to_owned);
        }
        entry.1.push((step, value));
    }
    let mut charts: BTreeMap<(String, Option<String>), Vec<Line>> = BTreeMap::new();
    for (name, (unit, mut points)) in series {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        charts.entry((quantity(&name).to_owned(), unit)).or_default().push((name, points));
    }
    html! {
        @if charts.is_empty() { p { "No metric recorded." } }
        @if more { p.note { "The first " (metrics.len()) " metric values are charted." } }
        div.charts {
            @for ((quantity, unit), lines) in charts.into_iter().take(CHARTS_MAX) {
                (metric_chart(&quantity, unit.as_deref(), lines, citations))
            }
        }
    }
}

/// The chart of one quantity in one unit: its lines, train/ first.
fn metric_chart(quantity: &str, unit: Option<&str>, mut lines: Vec<Line>, citations: &[Citation]) -> Markup {
    // train/ first, then the rest by name.
    lines.sort_by_key(|(name, _)| (!name.starts_with("train/"), name.clone()));
    // `1` is the unit of a dimensionless quantity: nothing to say.
    let y_label = match unit {
        Some(u) if u != "1" && !u.is_empty() => format!("{quantity} ({u})"),
        _ => quantity.to_owned(),
    };
    let shown: Vec<Svg<'_>> =
        lines.iter().take(SERIES_MAX).map(|(name, points)| Svg { name, points }).collect();
    let summary: Vec<String> = lines
        .iter()
        .map(|(name, points)| {
            let last = points.last().map(|p| num(p.1)).unwrap_or_default();
            let values = if points.len() == 1 { "value" } else { "values" };
            format!("{name}: {} {values}, last {last}", points.len())
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    let citing: Vec<Markup> = citations
        .iter()
        .filter(|c| c.metrics.iter().any(|m| names.contains(&m.as_str())))
        .map(|c| claim_link(&c.artifact, &c.claim, c.verdict))
        .collect();
    html! {
        figure.metric data-metric=(quantity) {
            figcaption {
                (y_label) span.sub { " — " (summary.join("; ")) }
                @if !citing.is_empty() {
                    br; span.cites { "Cited by " (joined(citing, html! { ", " }, "")) }
                }
            }
            (line_chart(
                &y_label,
                &shown,
                &Axis { label: "step", scale: Scale::Number },
                &Axis { label: &y_label, scale: Scale::Number },
            ))
        }
    }
}

/// Heartbeats: CPU and RSS over the run's time.
fn heartbeat_charts(beats: &[Record], more: bool) -> Markup {
    let t0 = beats.iter().filter_map(|r| parse_time_ns(&r.event.time)).min();
    let mut cpu = Vec::new();
    let mut rss = Vec::new();
    for r in beats {
        let (Some(t), Some(t0)) = (parse_time_ns(&r.event.time), t0) else { continue };
        let seconds = (t - t0) as f64 / 1e9;
        if let Some(c) = r.event.data.get("cpu_pct").and_then(Value::as_f64) {
            cpu.push((seconds, c));
        }
        if let Some(b) = r.event.data.get("rss_bytes").and_then(Value::as_f64) {
            rss.push((seconds, b / (1u64 << 30) as f64));
        }
    }
    cpu.sort_by(|a, b| a.0.total_cmp(&b.0));
    rss.sort_by(|a, b| a.0.total_cmp(&b.0));
    let x = Axis { label: "time since the first heartbeat", scale: Scale::Seconds };
    html! {
        @if cpu.is_empty() && rss.is_empty() {
            p { "No heartbeat recorded." }
        } @else {
            @if more { p.note { "The first " (beats.len()) " heartbeats are charted." } }
            div.charts {
                figure.metric data-metric="cpu_pct" {
                    figcaption { "CPU (% of one core)" span.sub { " — " (cpu.len()) " samples" } }
                    (line_chart(
                        "CPU",
                        &[Svg { name: "cpu_pct", points: &cpu }],
                        &x,
                        &Axis { label: "CPU (%)", scale: Scale::Number },
                    ))
                }
                figure.metric data-metric="rss" {
                    figcaption { "RSS (GiB)" span.sub { " — " (rss.len()) " samples" } }
                    (line_chart(
                        "RSS",
                        &[Svg { name: "rss", points: &rss }],
                        &x,
                        &Axis { label: "RSS (GiB)", scale: Scale::Number },
                    ))
                }
            }
        }
    }
}

/// One `evidence.captured` record: its bundle digest and its files.
fn evidence_table(r: &Record, presence: &BTreeMap<String, Presence>) -> Markup {
    let d = &r.event.data;
    html! {
        h3 { "Record " (r.seq) " · " (digest_link(&r.digest.to_hex())) }
        p { "Bundle digest " code { (d.get("bundle_digest").and_then(Value::as_str).unwrap_or("—")) } }
        (evidence::table(d, presence))
    }
}

/// When something happened to a run: the producer's time (its CloudEvents `time`), with the
/// ledger's receive time in the tooltip; the receive time alone when the producer gave none.
pub(super) fn happened(producer: Option<&str>, received_ns: Option<i64>) -> Markup {
    let Some(received_ns) = received_ns else { return html! { (or_dash(None)) } };
    let received = time_ns(received_ns);
    match producer.and_then(|t| parse_time_ns(t).map(|ns| (t, ns))) {
        Some((t, ns)) => html! {
            time datetime=(t) title={ "received by the ledger " (received) } { (time_ns(ns)) }
        },
        None => html! { span title="received by the ledger" { (received) } },
    }
}

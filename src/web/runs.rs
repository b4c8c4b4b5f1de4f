//! `/runs/{id}`: a run's state and facts, the claims that cite it (linked to their rows), a
//! line chart per quantity (`metric.recorded` of `run/<id>`; `train/loss` and `val/loss` on
//! one chart, ticks and units on both axes, and the claims that read it), its heartbeats' CPU
//! and RSS, and the evidence it captured.

use std::collections::BTreeMap;
use std::fmt::Write;

use assay_events::record::Record;
use assay_projections::audit::{Check, Verdict};
use axum::extract::{Path, State};
use axum::response::Html;
use serde_json::Value;

use super::layout::{
    Nav, artifact_href, bytes, claim_href, digest_link, document, duration_ms, esc, exit_text, link, num,
    or_dash, query, thead, time_ns, verdict_badge,
};
use super::svg::{Axis, SERIES_MAX, Scale, Series as Svg, line_chart};
use super::{PageResult, WebError};
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
fn claim_link(artifact: &str, claim: &str, verdict: Verdict) -> String {
    format!(
        "{} {}",
        link(&claim_href(artifact, claim), &format!("{artifact}: {claim}")),
        verdict_badge(verdict)
    )
}

/// A metric's unit and its (step, value) points.
type Series = (Option<String>, Vec<(f64, f64)>);

/// A metric's name and its (step, value) points, sorted by step.
type Line = (String, Vec<(f64, f64)>);

/// The run's records of type `ty`, in seq order, at most [`RUN_EVENTS_MAX`], read a page
/// (at most 1000) at a time; and whether there were more.
async fn records_of(store: &Store, subject: &str, ty: &str) -> Result<(Vec<Record>, bool), WebError> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = store.records_filtered(from, PAGE_MAX, Some(ty), Some(subject)).await?;
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

pub async fn page(State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let store = state.ledger.store();
    // The rule for identifiers (no record's subject can hold what breaks it).
    assay_events::text::check_text(&id, assay_events::text::SUBJECT_CHARS_MAX)
        .map_err(|e| WebError::bad_request(format!("the run id {e}")))?;
    let subject = format!("run/{id}");
    let any = store.records_filtered(0, 1, None, Some(&subject)).await?;
    let (metrics, metrics_more) = records_of(store, &subject, "metric.recorded").await?;
    let (beats, beats_more) = records_of(store, &subject, "run.heartbeat").await?;
    let (evidence, _) = records_of(store, &subject, "evidence.captured").await?;

    let mut body = format!(r#"<h1>Run <span id="run-id">{}</span></h1>"#, esc(&id));
    let mut citations: Vec<Citation> = Vec::new();
    {
        let p = state.live.read();
        let run = p.queue.run(&id);
        let facts = p.audit.run(&id);
        if run.is_none() && facts.is_none() && any.is_empty() {
            return Err(WebError::not_found(format!("no run {id:?}: no record has subject {subject:?}")));
        }
        body.push_str(r#"<dl class="facts" id="run-facts">"#);
        if let Some(r) = run {
            let exit = exit_text(r.exit_code, r.signal);
            let _ = write!(
                body,
                r#"<dt>state</dt><dd><span class="state {st}">{st}</span></dd><dt>project</dt><dd>{project}</dd><dt>worker</dt><dd>{worker}</dd><dt>GPU</dt><dd class="mono">{gpu}</dd><dt>queued</dt><dd>{queued}</dd><dt>started</dt><dd>{started}</dd><dt>finished</dt><dd>{finished}</dd><dt>duration</dt><dd>{duration}</dd><dt>exit</dt><dd>{exit}</dd><dt>quiesced</dt><dd>{quiesced}</dd>"#,
                st = r.state.as_str(),
                project = esc(r.project.as_deref().unwrap_or("—")),
                worker = esc(r.worker.as_deref().unwrap_or("—")),
                gpu = esc(r.gpu.as_deref().unwrap_or("none (CPU only)")),
                queued = happened(r.producer_time.queued.as_deref(), r.queued_at_ns),
                started = happened(r.producer_time.started.as_deref(), r.started_at_ns),
                finished = happened(r.producer_time.finished.as_deref(), r.finished_at_ns),
                quiesced = happened(r.producer_time.quiesced.as_deref(), r.quiesced_at_ns),
                duration = or_dash(r.duration_ms.map(duration_ms)),
            );
            if let Some(reason) = &r.cancel_reason {
                let _ = write!(body, "<dt>cancelled</dt><dd>{}</dd>", esc(reason));
            }
            if let Some(spec) = &r.spec {
                let _ = write!(
                    body,
                    r#"<dt>spec</dt><dd><code class="wrap">{}</code></dd>"#,
                    esc(&spec.to_string())
                );
            }
        }
        if let Some(f) = facts {
            let _ = write!(
                body,
                "<dt>evidence bundles</dt><dd>{}</dd><dt>GPUs (audit)</dt><dd>{}</dd>",
                f.evidence,
                esc(&f.gpus.iter().cloned().collect::<Vec<_>>().join(", "))
            );
        }
        body.push_str("</dl>");
        let _ = write!(
            body,
            "<p>{}</p>",
            link(&format!("/events{}", query(&[("subject", &subject)])), "Every event of this run")
        );

        // The claims that cite this run, and the metrics of this run their checks read.
        let report = p.audit_report();
        for c in report.claims.iter().filter(|c| c.runs.contains(&id)).take(CLAIMS_MAX) {
            let check = p
                .audit
                .claims()
                .get(&c.artifact)
                .and_then(|m| m.get(&c.claim))
                .and_then(|c| c.check.as_ref());
            let metrics = match check {
                Some(Check::Metric { run, metric, .. }) if *run == id => vec![metric.clone()],
                Some(Check::Compare { metric, run, baseline_run, .. })
                    if *run == id || *baseline_run == id =>
                {
                    vec![metric.clone()]
                }
                _ => Vec::new(),
            };
            citations.push(Citation {
                artifact: c.artifact.clone(),
                claim: c.claim.clone(),
                verdict: c.verdict,
                metrics,
            });
        }
        if !citations.is_empty() {
            let _ = write!(
                body,
                r#"<h2>Claims citing this run</h2><table id="run-claims">{}<tbody>"#,
                thead(&["artifact", "claim", "verdict", "metric"])
            );
            for c in &citations {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    link(&artifact_href(&c.artifact), &c.artifact),
                    link(&claim_href(&c.artifact, &c.claim), &c.claim),
                    super::layout::verdict_badge(c.verdict),
                    if c.metrics.is_empty() { "—".to_owned() } else { esc(&c.metrics.join(", ")) },
                );
            }
            body.push_str("</tbody></table>");
        }
    }

    // Metrics: one chart per quantity, x = step; train/ and val/ (eval/, test/) of one
    // quantity in one unit share it.
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    for r in &metrics {
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
    body.push_str("<h2>Metrics</h2>");
    if charts.is_empty() {
        body.push_str("<p>No metric recorded.</p>");
    }
    if metrics_more {
        let _ = write!(body, r#"<p class="note">The first {} metric values are charted.</p>"#, metrics.len());
    }
    body.push_str(r#"<div class="charts">"#);
    for ((quantity, unit), mut lines) in charts.into_iter().take(CHARTS_MAX) {
        // train/ first, then the rest by name.
        lines.sort_by_key(|(name, _)| (!name.starts_with("train/"), name.clone()));
        // `1` is the unit of a dimensionless quantity: nothing to say.
        let y_label = match unit.as_deref() {
            Some(u) if u != "1" && !u.is_empty() => format!("{quantity} ({u})"),
            _ => quantity.clone(),
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
        let citing: Vec<String> = citations
            .iter()
            .filter(|c| c.metrics.iter().any(|m| names.contains(&m.as_str())))
            .map(|c| claim_link(&c.artifact, &c.claim, c.verdict))
            .collect();
        let _ = write!(
            body,
            r#"<figure class="metric" data-metric="{q}"><figcaption>{t}<span class="sub"> — {summary}</span>{cites}</figcaption>{chart}</figure>"#,
            q = esc(&quantity),
            t = esc(&y_label),
            summary = esc(&summary.join("; ")),
            cites = if citing.is_empty() {
                String::new()
            } else {
                format!(r#"<br><span class="cites">Cited by {}</span>"#, citing.join(", "))
            },
            chart = line_chart(
                &y_label,
                &shown,
                &Axis { label: "step", scale: Scale::Number },
                &Axis { label: &y_label, scale: Scale::Number },
            ),
        );
    }
    body.push_str("</div>");

    // Heartbeats: CPU and RSS over the run's time.
    body.push_str("<h2>Heartbeats</h2>");
    let t0 = beats.iter().filter_map(|r| super::layout::parse_time_ns(&r.event.time)).min();
    let mut cpu = Vec::new();
    let mut rss = Vec::new();
    for r in &beats {
        let (Some(t), Some(t0)) = (super::layout::parse_time_ns(&r.event.time), t0) else { continue };
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
    if cpu.is_empty() && rss.is_empty() {
        body.push_str("<p>No heartbeat recorded.</p>");
    } else {
        if beats_more {
            let _ = write!(body, r#"<p class="note">The first {} heartbeats are charted.</p>"#, beats.len());
        }
        let x = Axis { label: "time since the first heartbeat", scale: Scale::Seconds };
        let _ = write!(
            body,
            r#"<div class="charts"><figure class="metric" data-metric="cpu_pct"><figcaption>CPU (% of one core)<span class="sub"> — {} samples</span></figcaption>{}</figure><figure class="metric" data-metric="rss"><figcaption>RSS (GiB)<span class="sub"> — {} samples</span></figcaption>{}</figure></div>"#,
            cpu.len(),
            line_chart(
                "CPU",
                &[Svg { name: "cpu_pct", points: &cpu }],
                &x,
                &Axis { label: "CPU (%)", scale: Scale::Number }
            ),
            rss.len(),
            line_chart(
                "RSS",
                &[Svg { name: "rss", points: &rss }],
                &x,
                &Axis { label: "RSS (GiB)", scale: Scale::Number }
            ),
        );
    }

    // Evidence.
    body.push_str("<h2>Evidence</h2>");
    if evidence.is_empty() {
        body.push_str("<p>No evidence captured.</p>");
    }
    for r in &evidence {
        let d = &r.event.data;
        let _ = write!(
            body,
            r#"<h3>Record {} · {}</h3><p>Bundle digest <code>{}</code></p><table class="evidence">{}<tbody>"#,
            r.seq,
            digest_link(&r.digest.to_hex()),
            esc(d.get("bundle_digest").and_then(Value::as_str).unwrap_or("—")),
            thead(&["path", "bytes", "blake3"])
        );
        for f in d.get("files").and_then(Value::as_array).into_iter().flatten().take(1000) {
            let _ = write!(
                body,
                r#"<tr><td class="mono">{}</td><td class="num">{}</td><td class="mono">{}</td></tr>"#,
                esc(f.get("path").and_then(Value::as_str).unwrap_or("—")),
                f.get("bytes").and_then(Value::as_u64).map_or("—".to_owned(), bytes),
                esc(f.get("blake3").and_then(Value::as_str).unwrap_or("—")),
            );
        }
        body.push_str("</tbody></table>");
    }
    Ok(Html(document(&format!("Run {id}"), Nav::None, &body)))
}

/// When something happened to a run: the producer's time (its CloudEvents `time`), with the
/// ledger's receive time in the tooltip; the receive time alone when the producer gave none.
pub(super) fn happened(producer: Option<&str>, received_ns: Option<i64>) -> String {
    let Some(received_ns) = received_ns else { return or_dash(None) };
    let received = time_ns(received_ns);
    match producer.and_then(|t| super::layout::parse_time_ns(t).map(|ns| (t, ns))) {
        Some((t, ns)) => format!(
            r#"<time datetime="{}" title="received by the ledger {received}">{}</time>"#,
            esc(t),
            time_ns(ns)
        ),
        None => format!(r#"<span title="received by the ledger">{received}</span>"#),
    }
}

//! `/events`: the log, filtered by type and subject, a page at a time (the query of
//! `GET /v1/events`), live at its tail; `/events/{digest}`: one record with its verbatim
//! envelope, its inclusion proof and the checkpoint the proof ends at.

use assay_events::{EventType, Hash32};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, artifact_href, digest_link, link, query, run_href, thead, time_text};
use super::page::{Page, PageResult, Params, Viewer, WebError, given, int_param};
use crate::http::events::PAGE_MAX;
use crate::http::state::AppState;
use crate::view::RecordView;

/// Records per page unless `?limit=` says otherwise.
const LIMIT_DEFAULT: u64 = 100;

/// How a table of records takes records that arrive live (see `assets/live.js`).
pub struct Live<'a> {
    /// The seq the live feed starts at; `None`: the table is not live.
    pub from: Option<u64>,
    /// `Some(n)`: a newest-first feed of at most n rows; `None`: new rows go at the end.
    pub newest_first: Option<u32>,
    /// Only live records of this type and subject are added (empty: any).
    pub ty: &'a str,
    pub subject: &'a str,
}

/// A table of records, in the order given (reversed for a newest-first feed).
pub fn table(id: &str, records: &[RecordView], live: &Live<'_>) -> Markup {
    let rows: Box<dyn Iterator<Item = &RecordView>> =
        if live.newest_first.is_some() { Box::new(records.iter().rev()) } else { Box::new(records.iter()) };
    html! {
        table.events #(id) data-live-from=(live.from.map_or(String::new(), |f| f.to_string()))
            data-live-order=(if live.newest_first.is_some() { "prepend" } else { "append" })
            data-live-max=(live.newest_first.unwrap_or(0)) data-filter-type=(live.ty)
            data-filter-subject=(live.subject) {
            (thead(&["seq", "received", "type", "subject", "source", "digest"]))
            tbody { @for r in rows { (row(r)) } }
        }
    }
}

/// One record's row. `assets/live.js` builds the same cells for records that arrive live.
fn row(r: &RecordView) -> Markup {
    html! {
        tr data-seq=(r.seq) data-digest=(r.digest) {
            td.num { (r.seq) }
            td { (time_text(&r.received_at)) }
            td { (type_link(&r.ty)) }
            td { (r.subject.as_deref().map_or(html! { "—" }, subject_link)) }
            td { (r.source) }
            td { (digest_link(&r.digest)) }
        }
    }
}

/// An event type, linked to the log filtered by it.
fn type_link(ty: &str) -> Markup {
    link(&format!("/events{}", query(&[("type", ty)])), ty)
}

/// A subject, linked to its page when it has one (runs, artifacts), else to its events.
pub fn subject_link(subject: &str) -> Markup {
    if let Some(run) = subject.strip_prefix("run/") {
        return link(&run_href(run), subject);
    }
    if let Some(slug) = subject.strip_prefix("artifact/") {
        return link(&artifact_href(slug), subject);
    }
    link(&format!("/events{}", query(&[("subject", subject)])), subject)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(rename = "type")]
    ty: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    limit: Option<String>,
}

pub async fn list(viewer: Viewer, State(state): State<AppState>, Params(q): Params<ListParams>) -> Response {
    viewer.show(log(&state, q).await)
}

async fn log(state: &AppState, q: ListParams) -> PageResult {
    let ty = given(&q.ty);
    let subject = given(&q.subject);
    let limit = int_param("limit", &q.limit, 1, u64::from(PAGE_MAX))?.unwrap_or(LIMIT_DEFAULT);
    let from_given = int_param("from", &q.from, 0, i64::MAX as u64)?;
    let size = state.ledger.head().borrow().size;
    // Unfiltered and without `from`, the page is the tail of the log (and stays live).
    let from =
        from_given.unwrap_or(if ty.is_none() && subject.is_none() { size.saturating_sub(limit) } else { 0 });
    let page_records = state.ledger.store().records_filtered(from, limit as u32, ty, subject).await?;
    let next = match page_records.last() {
        Some(last) if page_records.len() as u64 == limit => Some(last.seq + 1),
        _ => None,
    };
    let records: Vec<RecordView> =
        page_records.iter().map(RecordView::of_stored).collect::<Result<_, _>>()?;

    let live = Live {
        // Only the tail of the log grows.
        from: next.is_none().then_some(size),
        newest_first: None,
        ty: ty.unwrap_or(""),
        subject: subject.unwrap_or(""),
    };
    let limit_text = limit.to_string();
    let base = [("type", ty.unwrap_or("")), ("subject", subject.unwrap_or("")), ("limit", &limit_text)];
    let href_from = |from: &str| {
        let mut p = base.to_vec();
        p.push(("from", from));
        format!("/events{}", query(&p))
    };
    let body = html! {
        h1 { "Events" }
        form.filters method="get" action="/events" {
            label {
                "type "
                input name="type" list="event-types" value=(ty.unwrap_or("")) placeholder="e.g. gpu.xid";
            }
            " "
            label {
                "subject "
                input name="subject" value=(subject.unwrap_or("")) placeholder="e.g. run/r-0002";
            }
            " " button type="submit" { "Filter" } " " (link("/events", "clear"))
        }
        datalist #event-types {
            @for t in assay_events::schemas::EVENT_TYPES { option value=(t) {} }
        }
        p.note {
            "Records "
            @match (records.first(), records.last()) {
                (Some(a), Some(b)) => { (a.seq) "–" (b.seq) },
                _ => "none",
            }
            " of " (size) " in seq order"
            @if next.is_none() { "; new records matching the filter appear at the end" }
            ". "
            label {
                "Search these rows "
                input type="search" data-filter-table="events-log" placeholder="text in any column";
            }
        }
        (table("events-log", &records, &live))
        nav.pager aria-label="pages" {
            @if from > 0 {
                @if ty.is_none() && subject.is_none() {
                    a rel="prev" href=(href_from(&from.saturating_sub(limit).to_string())) { "← earlier" }
                } @else {
                    a href=(href_from("0")) { "⇤ first" }
                }
            }
            @if let Some(next) = next {
                a rel="next" href=(href_from(&next.to_string())) { "later →" }
            }
        }
    };
    Ok(Page::new("Events", Nav::Events, body))
}

pub async fn one(viewer: Viewer, State(state): State<AppState>, Path(digest): Path<String>) -> Response {
    viewer.show(record(&state, &digest).await)
}

async fn record(state: &AppState, digest: &str) -> PageResult {
    let hash = Hash32::from_hex(digest).map_err(|e| {
        WebError::bad_request(format!("{digest:?} is not an event digest (64 hex characters): {e}"))
    })?;
    let stored = state
        .ledger
        .store()
        .record_by_digest(&hash)
        .await?
        .ok_or_else(|| WebError::not_found(format!("no record with digest {}", hash.to_hex())))?;
    let view = RecordView::of_stored(&stored)?;
    let proof = crate::proof::inclusion(state.ledger.store(), view.seq, None)
        .await
        .map_err(crate::http::error::ApiError::from)?;
    let event: serde_json::Value = serde_json::from_str(view.event.get()).unwrap_or_default();
    let pretty = serde_json::to_string_pretty(&event).unwrap_or_else(|_| view.event.get().to_owned());
    let evidence = (view.ty == EventType::EvidenceCaptured.as_str()).then(|| &event["data"]);
    let presence = match evidence {
        Some(data) => super::evidence::presence(state, super::evidence::files(data)).await,
        None => Default::default(),
    };

    let body = html! {
        h1 { "Record " (view.seq) " " span.sub { (view.ty) } }
        dl.facts {
            dt { "digest" } dd.mono { (view.digest) }
            dt { "type" } dd { (type_link(&view.ty)) }
            dt { "subject" } dd { (view.subject.as_deref().map_or(html! { "—" }, subject_link)) }
            dt { "source" } dd { (view.source) }
            dt { "event id" } dd.mono { (view.id) }
            dt { "producer time" } dd { (view.time) }
            dt { "received" } dd { (view.received_at) }
        }
        @if let Some(data) = evidence {
            h2 { "Evidence files" }
            (super::evidence::table(data, &presence))
        }
        h2 { "The CloudEvent" }
        pre.json { (pretty) }
        h2 { "The DSSE envelope, verbatim" }
        p.note {
            "As " code { "GET /v1/events/" (view.digest) } " serves it: the payload bytes as stored, the "
            "signatures in canonical form."
        }
        pre.wrap #envelope { (view.envelope.get()) }
        h2 { "Inclusion proof" }
        p.note {
            "Record " (proof.seq) " is leaf " (proof.seq) " of the tree of size " (proof.tree_size) "; these "
            (proof.proof.len()) " hashes lead from its leaf hash to the root the checkpoint below signs ("
            code { "GET /v1/proof/inclusion?seq=" (proof.seq) } ")."
        }
        dl.facts {
            dt { "leaf hash" } dd.mono { (proof.leaf_hash) }
            dt { "tree size" } dd { (proof.tree_size) }
        }
        ol.mono.proof { @for h in &proof.proof { li { (h) } } }
        h2 { "Checkpoint" }
        pre #proof-checkpoint { (proof.checkpoint) }
    };
    Ok(Page::new(format!("Record {}", view.seq), Nav::Events, body))
}

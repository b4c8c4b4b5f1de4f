//! `/events`: the log, filtered by type and subject, a page at a time (the query of
//! `GET /v1/events`), live at its tail; `/events/{digest}`: one record with its verbatim
//! envelope, its inclusion proof and the checkpoint the proof ends at.

use std::fmt::Write;

use assay_events::Hash32;
use axum::extract::{Path, State};
use axum::response::Html;
use serde::Deserialize;

use super::layout::{Nav, digest_link, document, esc, link, query, thead, time_text};
use super::{PageResult, Params, WebError, given, int_param};
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
pub fn table(id: &str, records: &[RecordView], live: &Live<'_>) -> String {
    let mut out = format!(
        r#"<table class="events" id="{id}" data-live-from="{from}" data-live-order="{order}" data-live-max="{max}" data-filter-type="{ty}" data-filter-subject="{subject}">{head}<tbody>"#,
        id = esc(id),
        from = live.from.map_or(String::new(), |f| f.to_string()),
        order = if live.newest_first.is_some() { "prepend" } else { "append" },
        max = live.newest_first.unwrap_or(0),
        ty = esc(live.ty),
        subject = esc(live.subject),
        head = thead(&["seq", "received", "type", "subject", "source", "digest"]),
    );
    let rows: Box<dyn Iterator<Item = &RecordView>> =
        if live.newest_first.is_some() { Box::new(records.iter().rev()) } else { Box::new(records.iter()) };
    for r in rows {
        out.push_str(&row(r));
    }
    out.push_str("</tbody></table>");
    out
}

/// One record's row. `assets/live.js` builds the same cells for records that arrive live.
fn row(r: &RecordView) -> String {
    let subject = match r.subject.as_deref() {
        Some(s) => subject_link(s),
        None => "—".to_owned(),
    };
    format!(
        r#"<tr data-seq="{seq}" data-digest="{digest}"><td class="num">{seq}</td><td>{received}</td><td>{ty}</td><td>{subject}</td><td>{source}</td><td>{link}</td></tr>"#,
        seq = r.seq,
        digest = esc(&r.digest),
        received = esc(&time_text(&r.received_at)),
        ty = link(&format!("/events{}", query(&[("type", &r.ty)])), &r.ty),
        source = esc(&r.source),
        link = digest_link(&r.digest),
    )
}

/// A subject, linked to its page when it has one (runs, artifacts), else to its events.
pub fn subject_link(subject: &str) -> String {
    if let Some(run) = subject.strip_prefix("run/") {
        return link(&super::layout::run_href(run), subject);
    }
    if let Some(slug) = subject.strip_prefix("artifact/") {
        return link(&super::layout::artifact_href(slug), subject);
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

pub async fn list(State(state): State<AppState>, Params(q): Params<ListParams>) -> PageResult {
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

    let mut body = String::from("<h1>Events</h1>");
    let _ = write!(
        body,
        r#"<form class="filters" method="get" action="/events">
<label>type <input name="type" list="event-types" value="{ty}" placeholder="e.g. gpu.xid"></label>
<label>subject <input name="subject" value="{subject}" placeholder="e.g. run/r-0002"></label>
<button type="submit">Filter</button> {clear}
</form>
<datalist id="event-types">{types}</datalist>"#,
        ty = esc(ty.unwrap_or("")),
        subject = esc(subject.unwrap_or("")),
        clear = link("/events", "clear"),
        types = assay_events::schemas::EVENT_TYPES
            .iter()
            .map(|t| format!(r#"<option value="{}"></option>"#, esc(t)))
            .collect::<String>(),
    );
    let _ = write!(
        body,
        r#"<p class="note">Records {range} of {size} in seq order{live}. <label>Search these rows <input type="search" data-filter-table="events-log" placeholder="text in any column"></label></p>"#,
        range = match (records.first(), records.last()) {
            (Some(a), Some(b)) => format!("{}–{}", a.seq, b.seq),
            _ => "none".to_owned(),
        },
        live = if next.is_none() { "; new records matching the filter appear at the end" } else { "" },
    );
    let live = Live {
        // Only the tail of the log grows.
        from: next.is_none().then_some(size),
        newest_first: None,
        ty: ty.unwrap_or(""),
        subject: subject.unwrap_or(""),
    };
    let table = table("events-log", &records, &live);
    body.push_str(&table);
    let limit_text = limit.to_string();
    let base = [("type", ty.unwrap_or("")), ("subject", subject.unwrap_or("")), ("limit", &limit_text)];
    body.push_str(r#"<nav class="pager" aria-label="pages">"#);
    if from > 0 {
        let prev = from.saturating_sub(limit).to_string();
        if ty.is_none() && subject.is_none() {
            let mut p = base.to_vec();
            p.push(("from", &prev));
            let _ = write!(
                body,
                r#"<a rel="prev" href="{}">← earlier</a>"#,
                esc(&format!("/events{}", query(&p)))
            );
        } else {
            let mut p = base.to_vec();
            p.push(("from", "0"));
            let _ = write!(body, r#"<a href="{}">⇤ first</a>"#, esc(&format!("/events{}", query(&p))));
        }
    }
    if let Some(next) = next {
        let next = next.to_string();
        let mut p = base.to_vec();
        p.push(("from", &next));
        let _ = write!(body, r#"<a rel="next" href="{}">later →</a>"#, esc(&format!("/events{}", query(&p))));
    }
    body.push_str("</nav>");
    Ok(Html(document("Events", Nav::Events, &body)))
}

pub async fn one(State(state): State<AppState>, Path(digest): Path<String>) -> PageResult {
    let hash = Hash32::from_hex(&digest).map_err(|e| {
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

    let mut body = format!(r#"<h1>Record {} <span class="sub">{}</span></h1>"#, view.seq, esc(&view.ty));
    let _ = write!(
        body,
        r#"<dl class="facts"><dt>digest</dt><dd class="mono">{digest}</dd><dt>type</dt><dd>{ty}</dd><dt>subject</dt><dd>{subject}</dd><dt>source</dt><dd>{source}</dd><dt>event id</dt><dd class="mono">{id}</dd><dt>producer time</dt><dd>{time}</dd><dt>received</dt><dd>{received}</dd></dl>"#,
        digest = esc(&view.digest),
        ty = link(&format!("/events{}", query(&[("type", &view.ty)])), &view.ty),
        subject = view.subject.as_deref().map_or("—".to_owned(), subject_link),
        source = esc(&view.source),
        id = esc(&view.id),
        time = esc(&view.time),
        received = esc(&view.received_at),
    );
    let _ = write!(
        body,
        r#"<h2>The CloudEvent</h2><pre class="json">{pretty}</pre>
<h2>The DSSE envelope, verbatim</h2><p class="note">As <code>GET /v1/events/{digest}</code> serves it: the payload bytes as stored, the signatures in canonical form.</p><pre class="wrap" id="envelope">{envelope}</pre>"#,
        pretty = esc(&pretty),
        digest = esc(&view.digest),
        envelope = esc(view.envelope.get()),
    );
    let _ = write!(
        body,
        r#"<h2>Inclusion proof</h2><p class="note">Record {seq} is leaf {seq} of the tree of size {size}; these {n} hashes lead from its leaf hash to the root the checkpoint below signs (<code>GET /v1/proof/inclusion?seq={seq}</code>).</p>
<dl class="facts"><dt>leaf hash</dt><dd class="mono">{leaf_hash}</dd><dt>tree size</dt><dd>{size}</dd></dl><ol class="mono proof">"#,
        seq = proof.seq,
        size = proof.tree_size,
        n = proof.proof.len(),
        leaf_hash = esc(&proof.leaf_hash),
    );
    for h in &proof.proof {
        let _ = write!(body, "<li>{}</li>", esc(h));
    }
    let _ = write!(
        body,
        r#"</ol><h2>Checkpoint</h2><pre id="proof-checkpoint">{}</pre>"#,
        esc(&proof.checkpoint)
    );
    Ok(Html(document(&format!("Record {}", view.seq), Nav::Events, &body)))
}

//! `/`: the headline with GPU and queue health beside it, the latest checkpoint (its root in
//! the base64 of the signed note, and in hex) and what its signature proves, verdict counts,
//! and the live activity feed.

use std::fmt::Write;

use assay_events::checkpoint::Checkpoint;
use assay_projections::Projections;
use assay_projections::queue::RunState;
use axum::extract::State;
use axum::response::Html;

use super::layout::{Nav, document, esc, link, query, time_ns};
use super::svg::{Bar, bars};
use super::{PageResult, events};
use crate::http::state::AppState;
use crate::view::RecordView;

/// Events the live feed shows (the newest first; older rows fall off as new ones arrive).
pub const LIVE_ROWS: u32 = 25;

/// GPUs needing a reset named on the overview at most (the GPUs page lists them all).
const RESETS_NAMED_MAX: usize = 5;

/// GPU and queue health, beside the headline: GPUs needing a reset (the `gpus` projection of
/// `GET /v1/gpus`), runs running, dispatched and queued (the `queue` projection), and whether
/// the queue is paused.
fn health(p: &Projections) -> String {
    let needing: Vec<String> = p.gpus.needing_reset().map(|(k, _)| k.to_string()).collect();
    let counts = p.queue.counts();
    let count = |s: RunState| counts.get(s.as_str()).copied().unwrap_or(0);
    let state_link = |s: RunState| {
        format!(
            r#"<a id="health-{name}" data-count="{n}" href="{href}">{n} {name}</a>"#,
            name = s.as_str(),
            n = count(s),
            href = esc(&format!("/queue{}", query(&[("state", s.as_str())]))),
        )
    };
    let resets = if needing.is_empty() {
        r#"<p class="ok" id="health-gpus" data-needing-reset="0"><a href="/gpus">No GPU needs a reset</a></p>"#
            .to_owned()
    } else {
        let named: Vec<String> = needing.iter().take(RESETS_NAMED_MAX).map(|k| esc(k)).collect();
        let more = needing.len().saturating_sub(RESETS_NAMED_MAX);
        format!(
            r#"<p class="bad" id="health-gpus" data-needing-reset="{n}"><a href="/gpus"><strong>{n} GPU{s} need{v} a reset</strong></a>: {named}{more}</p>"#,
            n = needing.len(),
            s = if needing.len() == 1 { "" } else { "s" },
            v = if needing.len() == 1 { "s" } else { "" },
            named = named.join(", "),
            more = if more > 0 { format!(" and {more} more") } else { String::new() },
        )
    };
    let paused = match p.queue.paused() {
        Some(_) => r#" <span class="badge fail" id="health-paused">queue paused</span>"#,
        None => "",
    };
    format!(
        r#"<aside class="health" id="health" aria-label="GPU and queue health"><h2>Health</h2>{resets}<p id="health-runs">Runs: {running} · {dispatched} · {queued}{paused}</p></aside>"#,
        running = state_link(RunState::Running),
        dispatched = state_link(RunState::Dispatched),
        queued = state_link(RunState::Queued),
    )
}

pub async fn page(State(state): State<AppState>) -> PageResult {
    let head = state.ledger.head().borrow().clone();
    let signed_at = match head.size {
        0 => None,
        size => state.ledger.store().checkpoint_at(size).await?.map(|c| c.signed_at_ns),
    };
    let from = head.size.saturating_sub(u64::from(LIVE_ROWS));
    let recent = state.ledger.store().records(from, LIVE_ROWS).await?;
    let recent: Vec<RecordView> = recent.iter().map(RecordView::of_stored).collect::<Result<_, _>>()?;

    let mut body = String::new();
    // The same report as `GET /v1/audit` (the `verdicts` projection of the live state).
    {
        let p = state.live.read();
        let report = p.audit_report();
        let v = &report.verdicts;
        let _ = write!(
            body,
            r#"<section class="headline" id="headline" data-passing="{passing}" data-canonical="{canonical}" data-seq="{seq}"><div class="headline-main">
<h1><span class="big">{passing}</span> of <span class="big">{canonical}</span> canonical artifacts pass the claim/evidence audit</h1>
<p>As of record {seq_text}. {fail_link} · {all_link}</p>
</div>{health}</section>"#,
            passing = report.artifacts_passing,
            canonical = report.artifacts_canonical,
            seq = p.seq().map_or(String::new(), |s| s.to_string()),
            seq_text = p.seq().map_or("none (empty ledger)".to_owned(), |s| s.to_string()),
            fail_link = link(&format!("/artifacts{}", query(&[("verdict", "fail")])), "artifacts that fail"),
            all_link = link("/artifacts", "all artifacts"),
            health = health(&p),
        );
        body.push_str(r#"<div class="grid">"#);
        let _ = write!(
            body,
            r#"<section class="card"><h2>Claims by verdict</h2>{chart}<table class="compact">{thead}<tbody>"#,
            chart = bars(
                "Claims of canonical artifacts by verdict",
                &[
                    Bar { label: "supported", value: v.supported, class: "v-supported" },
                    Bar { label: "contradicted", value: v.contradicted, class: "v-contradicted" },
                    Bar { label: "unsupported", value: v.unsupported, class: "v-unsupported" },
                    Bar { label: "tainted", value: v.tainted, class: "v-tainted" },
                ],
            ),
            thead = super::layout::thead(&["verdict", "claims"]),
        );
        for (name, n) in [
            ("supported", v.supported),
            ("contradicted", v.contradicted),
            ("unsupported", v.unsupported),
            ("tainted", v.tainted),
        ] {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td class="num" data-verdict="{name}">{n}</td></tr>"#,
                link(&format!("/artifacts{}", query(&[("verdict", name)])), name)
            );
        }
        body.push_str("</tbody></table></section>");
    }

    body.push_str(r#"<section class="card" id="checkpoint"><h2>Latest checkpoint</h2>"#);
    if head.size == 0 || head.checkpoint.is_empty() {
        body.push_str("<p>No checkpoint yet: the ledger is empty.</p>");
    } else {
        let key = state.ledger.ledger_key();
        let check = match Checkpoint::open(&head.checkpoint, key) {
            Ok(cp) if cp.size == head.size && cp.root == head.root => format!(
                r#"<p class="ok" id="checkpoint-status"><span aria-hidden="true">✓</span> The signature verifies under the ledger key <code>{}</code>, for this size and root.</p>"#,
                esc(&key.keyid())
            ),
            Ok(cp) => format!(
                r#"<p class="bad" id="checkpoint-status"><span aria-hidden="true">✗</span> The note verifies but names size {} while the head is {}.</p>"#,
                cp.size, head.size
            ),
            Err(e) => format!(
                r#"<p class="bad" id="checkpoint-status"><span aria-hidden="true">✗</span> The signature does not verify under the ledger key: {}</p>"#,
                esc(&e.to_string())
            ),
        };
        let _ = write!(
            body,
            r#"<dl class="facts"><dt>size</dt><dd id="checkpoint-size">{size}</dd><dt>root</dt><dd><code id="checkpoint-root">{root}</code> <span class="sub">(base64, as in the signed note)</span><br><code class="sub" id="checkpoint-root-hex">{root_hex}</code> <span class="sub">(hex)</span></dd><dt>signed</dt><dd>{when}</dd><dt>origin</dt><dd>{origin}</dd></dl>{check}
<p class="note">The checkpoint is the ledger's signed statement that the log holds exactly these {size} records under this Merkle root; any proof a client checks ends at it. It does not re-check the stored chain and tree: <code>assay verify</code> does (and names the first bad record). Store: {health}.</p>
<details><summary>The signed note</summary><pre>{note}</pre></details>"#,
            size = head.size,
            root = esc(&assay_events::b64::encode_std(&head.root.0)),
            root_hex = esc(&head.root.to_hex()),
            when = signed_at.map_or("—".to_owned(), time_ns),
            origin = esc(state.ledger.origin()),
            health = if state.ledger.healthy() { "reachable" } else { "failing (appends are refused)" },
            note = esc(&head.checkpoint),
        );
    }
    body.push_str("</section></div>");

    let _ = write!(
        body,
        r#"<section class="card"><h2>Live activity</h2>
<p class="note">The last {LIVE_ROWS} records, newest first; new records appear as they are committed (<span id="live-status" role="status">live updates need JavaScript</span>). {all}</p>"#,
        all = link("/events", "All events"),
    );
    let live = events::Live { from: Some(head.size), newest_first: Some(LIVE_ROWS), ty: "", subject: "" };
    body.push_str(&events::table("live-feed", &recent, &live));
    body.push_str("</section>");
    Ok(Html(document("Overview", Nav::Home, &body)))
}

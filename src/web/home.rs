//! `/`: the headline with GPU and queue health beside it, the latest checkpoint (its root in
//! the base64 of the signed note, and in hex) and what its signature proves, verdict counts,
//! and the live activity feed.

use assay_events::checkpoint::Checkpoint;
use assay_projections::Projections;
use assay_projections::queue::RunState;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::events;
use super::layout::{Nav, gpus_need_reset, link, query, thead, time_ns};
use super::page::{Page, PageResult, Viewer};
use super::svg::{Bar, bars};
use crate::http::state::AppState;
use crate::view::RecordView;

/// Events the live feed shows (the newest first; older rows fall off as new ones arrive).
pub const LIVE_ROWS: u32 = 25;

/// GPUs needing a reset named on the overview at most (the GPUs page lists them all).
const RESETS_NAMED_MAX: usize = 5;

/// GPU and queue health, beside the headline: GPUs needing a reset (the `gpus` projection of
/// `GET /v1/gpus`), runs running, dispatched and queued (the `queue` projection), and whether
/// the queue is paused.
fn health(p: &Projections) -> Markup {
    let needing: Vec<String> = p.gpus.needing_reset().map(|(k, _)| k.to_string()).collect();
    let counts = p.queue.counts();
    let count = |s: RunState| counts.get(s.as_str()).copied().unwrap_or(0);
    let state_link = |s: RunState| {
        html! {
            a #{ "health-" (s.as_str()) } data-count=(count(s))
                href={ "/queue" (query(&[("state", s.as_str())])) } {
                (count(s)) " " (s.as_str())
            }
        }
    };
    let n = needing.len();
    let more = n.saturating_sub(RESETS_NAMED_MAX);
    html! {
        aside.health #health aria-label="GPU and queue health" {
            h2 { "Health" }
            @if needing.is_empty() {
                p.ok #health-gpus data-needing-reset="0" { a href="/gpus" { "No GPU needs a reset" } }
            } @else {
                p.bad #health-gpus data-needing-reset=(n) {
                    a href="/gpus" {
                        strong { (gpus_need_reset(n)) }
                    }
                    ": " (needing[..n.min(RESETS_NAMED_MAX)].join(", "))
                    @if more > 0 { " and " (more) " more" }
                }
            }
            p #health-runs {
                "Runs: " (state_link(RunState::Running)) " · " (state_link(RunState::Dispatched)) " · "
                (state_link(RunState::Queued))
                @if p.queue.paused().is_some() {
                    " " span.badge.fail #health-paused { "queue paused" }
                }
            }
        }
    }
}

pub async fn page(viewer: Viewer, State(state): State<AppState>) -> Response {
    viewer.show(overview(&state).await)
}

async fn overview(state: &AppState) -> PageResult {
    let head = state.ledger.head().borrow().clone();
    let signed_at = match head.size {
        0 => None,
        size => state.ledger.store().checkpoint_at(size).await?.map(|c| c.signed_at_ns),
    };
    let from = head.size.saturating_sub(u64::from(LIVE_ROWS));
    let recent = state.ledger.store().records(from, LIVE_ROWS).await?;
    let recent: Vec<RecordView> = recent.iter().map(RecordView::of_stored).collect::<Result<_, _>>()?;

    // The same report as `GET /v1/audit` (the `verdicts` projection of the live state).
    let audit = {
        let p = state.live.read();
        let report = p.audit_report();
        let v = &report.verdicts;
        let counts = [
            ("supported", v.supported, "v-supported"),
            ("contradicted", v.contradicted, "v-contradicted"),
            ("unsupported", v.unsupported, "v-unsupported"),
            ("tainted", v.tainted, "v-tainted"),
        ];
        let bar_items: Vec<Bar<'_>> =
            counts.iter().map(|(label, value, class)| Bar { label, value: *value, class }).collect();
        let headline = html! {
            section.headline #headline data-passing=(report.artifacts_passing)
                data-canonical=(report.artifacts_canonical)
                data-seq=(p.seq().map_or(String::new(), |s| s.to_string())) {
                div.headline-main {
                    h1 {
                        span.big { (report.artifacts_passing) } " of "
                        span.big { (report.artifacts_canonical) }
                        " canonical artifacts pass the claim/evidence audit"
                    }
                    p {
                        "As of record "
                        (p.seq().map_or("none (empty ledger)".to_owned(), |s| s.to_string())) ". "
                        (link(&format!("/artifacts{}", query(&[("verdict", "fail")])), "artifacts that fail"))
                        " · " (link("/artifacts", "all artifacts"))
                        " · " a #corpus-report href="/report" { "the corpus report" }
                    }
                }
                (health(&p))
            }
        };
        let verdicts = html! {
            section.card {
                h2 { "Claims by verdict" }
                (bars("Claims of canonical artifacts by verdict", &bar_items))
                table.compact {
                    (thead(&["verdict", "claims"]))
                    tbody {
                        @for (name, n, _) in counts {
                            tr {
                                td { (link(&format!("/artifacts{}", query(&[("verdict", name)])), name)) }
                                td.num data-verdict=(name) { (n) }
                            }
                        }
                    }
                }
            }
        };
        (headline, verdicts)
    };
    let (headline, verdicts) = audit;

    let checkpoint = if head.size == 0 || head.checkpoint.is_empty() {
        html! { p { "No checkpoint yet: the ledger is empty." } }
    } else {
        let key = state.ledger.ledger_key();
        let check = match Checkpoint::open(&head.checkpoint, key) {
            Ok(cp) if cp.size == head.size && cp.root == head.root => html! {
                p.ok #checkpoint-status {
                    span aria-hidden="true" { "✓" }
                    " The signature verifies under the ledger key " code { (key.keyid()) }
                    ", for this size and root."
                }
            },
            Ok(cp) => html! {
                p.bad #checkpoint-status {
                    span aria-hidden="true" { "✗" }
                    " The note verifies but names size " (cp.size) " while the head is " (head.size) "."
                }
            },
            Err(e) => html! {
                p.bad #checkpoint-status {
                    span aria-hidden="true" { "✗" }
                    " The signature does not verify under the ledger key: " (e.to_string())
                }
            },
        };
        let health = if state.ledger.healthy() { "reachable" } else { "failing (appends are refused)" };
        html! {
            dl.facts {
                dt { "size" } dd #checkpoint-size { (head.size) }
                dt { "root" }
                dd {
                    code #checkpoint-root { (assay_events::b64::encode_std(&head.root.0)) } " "
                    span.sub { "(base64, as in the signed note)" } br;
                    code.sub #checkpoint-root-hex { (head.root.to_hex()) } " " span.sub { "(hex)" }
                }
                dt { "signed" } dd { (signed_at.map_or("—".to_owned(), time_ns)) }
                dt { "origin" } dd { (state.ledger.origin()) }
            }
            (check)
            p.note {
                "The checkpoint is the ledger's signed statement that the log holds exactly these "
                (head.size) " records under this Merkle root; any proof a client checks ends at it. "
                "It does not re-check the stored chain and tree: " code { "assay verify" }
                " does (and names the first bad record). Store: " (health) "."
            }
            details { summary { "The signed note" } pre { (head.checkpoint) } }
        }
    };

    let live = events::Live { from: Some(head.size), newest_first: Some(LIVE_ROWS), ty: "", subject: "" };
    let body = html! {
        (headline)
        div.grid {
            (verdicts)
            section.card #checkpoint { h2 { "Latest checkpoint" } (checkpoint) }
        }
        section.card {
            h2 { "Live activity" }
            p.note {
                "The last " (LIVE_ROWS) " records, newest first; new records appear as they are committed ("
                span #live-status role="status" { "live updates need JavaScript" } "). "
                (link("/events", "All events"))
            }
            (events::table("live-feed", &recent, &live))
        }
    };
    Ok(Page::new("Overview", Nav::Home, body))
}

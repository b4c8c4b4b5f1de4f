//! `assay demo`: build the demonstration ledger of a research lab, check and verify it, and
//! print what it holds and the audit headline.

use std::path::PathBuf;

use crate::demo::{DemoOptions, DemoSize, DemoStage, build};
use anyhow::Context;
use assay::clock::rfc3339;
use assay::store::Durability;

use super::Exit;
use super::progress::Progress;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo ledger, its keys and its evidence files (default: a fresh
    /// temporary folder). Must not hold a ledger.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of the generated history: the same seed gives the same lab.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// small (seconds, for tests), default (~6 weeks, ~400 artifact submissions) or large.
    #[arg(long, value_enum, default_value_t = DemoSize::Default)]
    size: DemoSize,
    /// Runs to queue (overrides the size's).
    #[arg(long)]
    runs: Option<u32>,
    /// Artifact submissions, roughly (overrides the size's).
    #[arg(long)]
    artifacts: Option<u32>,
    /// First day of the history, `YYYY-MM-DD` (UTC); default: the history ends at 00:00 UTC
    /// today. The same seed, size and start give the same history.
    #[arg(long, value_parser = day_start_ns)]
    start: Option<i64>,
    /// Then serve the demo ledger over HTTP (the URL is printed on its own line once the
    /// server accepts connections) until SIGINT or SIGTERM.
    #[arg(long)]
    serve: bool,
    /// Address to serve on, with --serve; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", requires = "serve")]
    listen: std::net::SocketAddr,
}

pub async fn run(a: DemoArgs) -> anyhow::Result<Exit> {
    let dir = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("assay-demo-{}", uuid::Uuid::now_v7())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let options = DemoOptions {
        seed: a.seed,
        size: a.size,
        runs: a.runs,
        artifacts: a.artifacts,
        durability: Durability::Relaxed,
        start_ns: a.start,
    };
    // One bar per stage, each replaced by its summary line when the next begins.
    let current: std::sync::Mutex<Option<(DemoStage, Progress)>> = std::sync::Mutex::new(None);
    let progress = |stage: DemoStage, done: u64, total: u64| {
        let Ok(mut current) = current.lock() else { return };
        if current.as_ref().is_none_or(|(s, _)| *s != stage) {
            if let Some((_, bar)) = current.take() {
                bar.finish();
            }
            let bar = match stage {
                DemoStage::Generating => {
                    Progress::new("generating the lab's history", "generated the lab's history", "events")
                }
                DemoStage::Appending => Progress::new("appending", "appended", "events"),
                DemoStage::Checking => Progress::new("checking", "checked", "records"),
                DemoStage::Verifying => Progress::new("verifying", "verified", "records"),
            };
            *current = Some((stage, bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.update(done, total);
        }
    };
    let built = build(&dir, &options, &progress).await;
    if let Some((_, bar)) = current.lock().ok().and_then(|mut c| c.take()) {
        bar.finish();
    }
    let s = built?;
    let st = &s.stats;
    let day = |ns: i64| rfc3339(ns).chars().take(10).collect::<String>();
    let list = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    };
    outln!("demo ledger: {}", s.db.display());
    outln!("keys:        {}", s.keys.display());
    outln!("files:       {} (evidence/, artifacts/)", s.files.display());
    outln!("history:     {} to {} (seed {})", day(s.history_start_ns), day(s.history_end_ns), a.seed);
    outln!(
        "runs:        {}",
        st.runs
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    outln!(
        "dispatch:    {} accepted, {} refused ({})",
        st.dispatch_accepted,
        st.dispatch_refused,
        list(&st.refusals)
    );
    outln!(
        "artifacts:   {} submitted, {} admitted, {} rejected, {} superseded; {} claims withdrawn",
        st.artifacts_submitted,
        st.artifacts_admitted,
        st.artifacts_rejected,
        st.artifacts_superseded,
        st.claims_withdrawn
    );
    outln!(
        "kernels:     {} launches passed, {} failed, {} faulted (CUDA faults simulated)",
        st.launches_passed,
        st.launches_failed,
        st.launches_faulted
    );
    outln!(
        "xids:        {} hardware in a run's window, {} hardware outside any, {} other; GPUs needing a reset: {}",
        st.xids_hardware_in_window,
        st.xids_hardware_outside,
        st.xids_other,
        st.gpus_needing_reset
    );
    outln!("records:     {}", s.records);
    if s.verify.ok {
        outln!(
            "verify:      ok ({} records, {} checkpoints)",
            s.verify.records,
            s.verify.checkpoints_checked
        );
    } else {
        outln!(
            "verify:      FAILED at seq {:?}: {}",
            s.verify.first_bad_seq,
            s.verify.reason.as_deref().unwrap_or("")
        );
    }
    let v = s.verdicts();
    // Of the same claims the verdicts count: those of canonical artifacts.
    let canonical = |slug: &str| s.audit.artifact(slug).is_some_and(|a| a.canonical_version.is_some());
    let preregistered = s
        .audit
        .claims
        .iter()
        .filter(|c| canonical(&c.artifact))
        .filter(|c| c.registration == assay_projections::audit::Registration::Preregistered)
        .count();
    outln!(
        "claims:      {} supported, {} contradicted, {} unsupported, {} tainted; {preregistered} preregistered",
        v.supported,
        v.contradicted,
        v.unsupported,
        v.tainted
    );
    outln!("built in:    {:.1} s", s.elapsed.as_secs_f64());
    outln!("checkpoint:");
    out!("{}", s.checkpoint);
    outln!("{}", s.headline());
    if !s.verify.ok {
        return Ok(Exit::VerifyFailed);
    }
    if a.serve {
        let db = super::DbArgs { db: s.db.to_string_lossy().into_owned(), durability: Durability::Relaxed };
        let key = super::LedgerKeyArgs { ledger_key: Some(s.keys.join("ledger.key")) };
        let options = assay::http::ServeOptions { listen: a.listen, ..assay::http::ServeOptions::default() };
        return super::serve::serve_ledger(&db, &key, options).await;
    }
    Ok(Exit::Ok)
}

/// 00:00 UTC of a `YYYY-MM-DD` day, in Unix ns.
fn day_start_ns(day: &str) -> Result<i64, String> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| format!("{day:?}: {e}"))?;
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
        .ok_or_else(|| format!("{day:?} is out of range"))
}

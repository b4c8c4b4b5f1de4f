//! `bench report`: the demo lab (built by `assay demo`, not timed), then, alternating, (a) a
//! plain replay of its log, (b) the claim/evidence audit of the replayed state, and (c) the
//! report of every artifact the audit lists (bundle selection, inclusion proofs and HTML
//! rendering; given the replayed state at the checkpoint, as the dashboard does). (b) and (c)
//! are reported as ratios of (a), each taken in the same round.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use assay::export::source::LedgerSource;
use assay::report::{Format, artifact};
use assay::store::{Durability, Store};

use super::median;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The `assay` binary that builds the demo lab (default: beside this one).
    #[arg(long)]
    assay: Option<PathBuf>,
    /// The demo's size: small, default or large.
    #[arg(long, default_value = "default")]
    size: String,
    /// Rounds; each times the three in turn. Medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub async fn run(a: ReportArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=50).contains(&a.rounds), "--rounds must be 1 to 50");
    let assay = match a.assay {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("assay"),
    };
    let dir = tempfile::tempdir()?;
    let lab = dir.path().join("lab");
    let t = Instant::now();
    let built = Command::new(&assay)
        .args(["demo", "--size", &a.size, "--dir"])
        .arg(&lab)
        .output()
        .with_context(|| format!("running {}", assay.display()))?;
    anyhow::ensure!(built.status.success(), "assay demo failed: {}", String::from_utf8_lossy(&built.stderr));
    let db = lab.join("assay.db");
    let store = Store::open(db.to_str().context("a UTF-8 path")?, Durability::Full, false).await?;
    let size = store.latest_checkpoint().await?.size;
    println!(
        "bench report: demo lab --size {} ({size} records at the latest checkpoint) built in {:.1} s (not timed)",
        a.size,
        t.elapsed().as_secs_f64()
    );

    let (mut replay_s, mut audit_s, mut reports_s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut artifacts, mut claims, mut bytes) = (0usize, 0usize, 0usize);
    for _ in 0..a.rounds {
        let t = Instant::now();
        let state = assay::replay::replay(&store, Some(size - 1), |_, _| {}).await?;
        replay_s.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let audit = state.audit_report();
        audit_s.push(t.elapsed().as_secs_f64());
        claims = audit.claims.len();

        let t = Instant::now();
        artifacts = audit.artifacts.len();
        bytes = 0;
        for a in &audit.artifacts {
            let report = artifact::build(&store, &a.slug, |_| Some(state.clone())).await?;
            bytes += artifact::render(&report, Format::Html).len();
        }
        reports_s.push(t.elapsed().as_secs_f64());
    }
    let (replay, audit, reports) = (median(replay_s), median(audit_s), median(reports_s));
    println!("replay   all projections to the checkpoint: {replay:>8.3} s");
    println!(
        "audit    {claims} claims:                     {audit:>8.3} s  = {:.3} × replay",
        audit / replay
    );
    println!(
        "reports  {artifacts} artifacts ({:.1} MB of HTML): {reports:>8.3} s  = {:.2} × replay ({:.4} × replay each)",
        bytes as f64 / 1e6,
        reports / replay,
        reports / replay / artifacts.max(1) as f64
    );
    Ok(())
}

//! `assay demo`: build the demonstration ledger, verify it, print a summary.

use std::path::PathBuf;

use anyhow::Context;
use assay::demo::{DemoOptions, build};
use assay::store::Durability;

use super::Exit;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo ledger (default: a fresh temporary folder). Must not hold a ledger.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of the generated history.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Research runs to simulate.
    #[arg(long, default_value_t = 120)]
    runs: u32,
}

pub async fn run(a: DemoArgs) -> anyhow::Result<Exit> {
    let dir = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("assay-demo-{}", uuid::Uuid::now_v7())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let options = DemoOptions { seed: a.seed, runs: a.runs, durability: Durability::Relaxed };
    let summary = build(&dir, &options).await?;
    println!("demo ledger: {}", summary.db.display());
    println!("keys:        {}", summary.keys.display());
    println!("records:     {}", summary.records);
    if summary.verify.ok {
        println!(
            "verify:      ok ({} records, {} checkpoints)",
            summary.verify.records, summary.verify.checkpoints_checked
        );
    } else {
        println!(
            "verify:      FAILED at seq {:?}: {}",
            summary.verify.first_bad_seq,
            summary.verify.reason.as_deref().unwrap_or("")
        );
    }
    println!("checkpoint:");
    print!("{}", summary.checkpoint);
    Ok(if summary.verify.ok { Exit::Ok } else { Exit::VerifyFailed })
}

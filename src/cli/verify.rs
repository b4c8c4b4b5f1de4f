//! `assay verify` and `assay checkpoint`.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::{DbArgs, Exit, open};

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    db: DbArgs,
    /// A checkpoint note saved earlier: the log must be consistent with it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    server: super::remote::ServerArgs,
}

pub async fn run(a: VerifyArgs) -> anyhow::Result<Exit> {
    let store = open::store(&a.db).await?;
    let saved = match &a.checkpoint {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("verifying {bar:40} {pos}/{len} records ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = assay::verify::verify(&store, saved.as_deref(), |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    if a.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else if report.ok {
        outln!("ok: {} records, {} checkpoints verified", report.records, report.checkpoints_checked);
    } else {
        let reason = report.reason.as_deref().unwrap_or("unknown");
        match report.first_bad_seq {
            Some(seq) => outln!("first bad seq {seq}: {reason}"),
            None => outln!("{reason}"),
        }
    }
    Ok(if report.ok { Exit::Ok } else { Exit::VerifyFailed })
}

pub async fn checkpoint(a: CheckpointArgs) -> anyhow::Result<Exit> {
    if let Some(client) = a.server.client()? {
        out!("{}", client.checkpoint().await?);
        return Ok(Exit::Ok);
    }
    let store = open::store(&a.db).await?;
    let head = store.head().await?.context("the ledger is empty")?;
    let cp = store.checkpoint_at(head.checkpoint_size).await?.context("the latest checkpoint is missing")?;
    out!("{}", cp.note);
    Ok(Exit::Ok)
}

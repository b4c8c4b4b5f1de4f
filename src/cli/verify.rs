//! `assay verify` and `assay checkpoint`.

use std::path::PathBuf;

use anyhow::Context;

use super::progress::Progress;
use super::{Exit, ReadDbArgs, open};

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    /// A checkpoint note saved earlier: the log must be consistent with it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    #[command(flatten)]
    server: super::remote::ServerArgs,
}

pub async fn run(a: VerifyArgs) -> anyhow::Result<Exit> {
    let store = open::store(&a.db).await?;
    let saved = match &a.checkpoint {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let progress = Progress::new("verifying", "verified", "records");
    let report =
        assay::verify::verify(&store, saved.as_deref(), |done, total| progress.update(done, total)).await?;
    progress.finish();
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

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
    /// List every signed checkpoint (size, root, signed at) instead of printing the latest
    /// note: the sizes `assay proof consistency OLD NEW` and `proof inclusion --size` accept.
    #[arg(long)]
    list: bool,
    /// With --list: one JSON object per line.
    #[arg(long, requires = "list")]
    json: bool,
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
    if a.list {
        return list_checkpoints(a).await;
    }
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

/// `assay checkpoint --list`: every signed checkpoint, a page at a time (locally or from a
/// server), ascending by size.
async fn list_checkpoints(a: CheckpointArgs) -> anyhow::Result<Exit> {
    use assay::http::wire::{CHECKPOINTS_PAGE_MAX, CheckpointEntry};
    let client = a.server.client()?;
    let store = match client {
        Some(_) => None,
        None => Some(open::store(&a.db).await?),
    };
    let mut from = 0u64;
    // Bounded: each page starts past the last size seen, and sizes are below 2^63.
    loop {
        let (page, next) = match (&client, &store) {
            (Some(c), _) => {
                let list = c.checkpoints(from, CHECKPOINTS_PAGE_MAX).await?;
                (list.checkpoints, list.next)
            }
            (None, Some(s)) => {
                let rows = s.checkpoints(from, CHECKPOINTS_PAGE_MAX).await?;
                let full = rows.len() == CHECKPOINTS_PAGE_MAX as usize;
                let next = rows.last().filter(|_| full).map(|r| r.size + 1);
                (rows.iter().map(CheckpointEntry::from_row).collect::<Vec<_>>(), next)
            }
            (None, None) => unreachable!("a store or a client"),
        };
        for c in &page {
            if a.json {
                outln!("{}", serde_json::to_string(c)?);
            } else {
                outln!("{:>12}  {}  {}", c.size, c.signed_at, c.root);
            }
        }
        match next {
            Some(n) if n > from => from = n,
            _ => break,
        }
    }
    Ok(Exit::Ok)
}

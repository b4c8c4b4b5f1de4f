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
    /// A witness policy (`witness <vkey>` lines, `quorum K`): the largest stored checkpoint
    /// whose stored cosignatures (each line verified again) come from K listed witnesses must be
    /// one this run checked the tree against; exit 1 naming the missing witnesses otherwise.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
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
    let policy = a.witness_policy.as_deref().map(super::keys::witness_policy).transpose()?;
    // Checkpoints up to this one are the ones the walk below checks the tree against.
    let verified_up_to = store.head().await?.map_or(0, |h| h.checkpoint_size);
    let progress = Progress::new("verifying", "verified", "records");
    let mut report =
        assay::verify::verify(&store, saved.as_deref(), |done, total| progress.update(done, total)).await?;
    progress.finish();
    let mut witnessed = None;
    if let (true, Some(policy)) = (report.ok, &policy) {
        match assay::witnessed::latest_witnessed(&store, policy, verified_up_to).await {
            Ok(w) => witnessed = Some(w),
            Err(assay::witnessed::WitnessedError::Store(e)) => return Err(e.into()),
            Err(e) => {
                report.ok = false;
                report.reason = Some(format!("witness policy: {e}"));
            }
        }
    }
    if a.json {
        let mut json = serde_json::to_value(&report)?;
        if let Some(w) = &witnessed {
            json["witnessed"] = serde_json::to_value(w)?;
        }
        outln!("{json}");
    } else if report.ok {
        outln!("ok: {} records, {} checkpoints verified", report.records, report.checkpoints_checked);
        if let (Some(w), Some(policy)) = (&witnessed, &policy) {
            outln!("witnessed: {}", w.describe());
            // What else the store holds, per listed witness (rows, not checked here).
            let mut latest = Vec::new();
            for v in policy.witnesses() {
                let size = store.cosigned_size(&v.keyid()).await?;
                latest.push(format!("{} {}", v.name(), size.map_or("none".to_owned(), |n| n.to_string())));
            }
            outln!("largest size stored per witness: {}", latest.join(", "));
        }
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

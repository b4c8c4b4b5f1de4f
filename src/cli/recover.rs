//! `assay recover --truncate-to SIZE`: cut the log back to a checkpoint the ledger signed,
//! keeping what is removed in a file.

use std::path::PathBuf;

use assay::recover::{self, RecoverError};

use super::{DbArgs, Exit, open};

#[derive(clap::Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Keep the first SIZE records: SIZE must be the size of a checkpoint signed by the ledger
    /// key over those records (see `assay verify`). Records, tree nodes and checkpoints beyond
    /// it are removed and the head is rewritten at SIZE.
    #[arg(long, value_name = "SIZE")]
    truncate_to: u64,
    /// The new file the removed records and checkpoints are written to (NDJSON) before anything
    /// is removed [default: beside a SQLite ledger, DB.removed-SIZE-HEAD.ndjson; for PostgreSQL,
    /// assay-removed-SIZE-HEAD.ndjson in the current folder].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub async fn run(a: RecoverArgs) -> anyhow::Result<Exit> {
    let store = open::store(&a.db).await?;
    let plan = match recover::plan(&store, a.truncate_to).await {
        Ok(plan) => plan,
        Err(e @ RecoverError::Mismatch { .. }) => {
            // The kept part itself does not verify: a verification failure, not bad input.
            eprintln!("error: {e}; choose an earlier checkpoint");
            return Ok(Exit::VerifyFailed);
        }
        Err(e) => return Err(e.into()),
    };
    if !plan.changes {
        outln!("nothing to remove: the log ends at the checkpoint signed at size {}", plan.size);
        return Ok(Exit::Ok);
    }
    let out = a.out.unwrap_or_else(|| default_out(&a.db.db, plan.size, plan.head.size));
    let done = recover::apply(&store, &plan, &out).await?;
    let r = done.removed;
    outln!(
        "kept {} records (the checkpoint signed at size {}); removed {} records, {} checkpoints, {} cosignatures \
         and {} tree nodes beyond it; the removed records, checkpoints and cosignatures are in {}",
        done.size,
        done.size,
        r.records,
        r.checkpoints,
        r.cosignatures,
        r.nodes,
        done.file.display()
    );
    outln!("run `assay verify` to check the log");
    Ok(Exit::Ok)
}

/// Beside a SQLite file; in the current folder for a PostgreSQL URL (which has no folder).
fn default_out(db: &str, size: u64, head: u64) -> PathBuf {
    let name = format!("removed-{size}-{head}.ndjson");
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        return PathBuf::from(format!("assay-{name}"));
    }
    PathBuf::from(format!("{}.{name}", db.strip_prefix("sqlite://").unwrap_or(db)))
}

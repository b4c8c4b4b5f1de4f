//! `assay copy --from SRC --to DST`: move a ledger between backends, then verify the copy;
//! then the evidence its log cites, from the source's evidence store into the destination's
//! (`assay::blobs::copy`).

use assay::blobs::BlobStore;
use assay::blobs::copy::copy_cited;
use assay::store::{Durability, Store};

use super::progress::Progress;
use super::{Exit, open};

#[derive(clap::Args)]
pub struct CopyArgs {
    /// The source ledger: a SQLite file path or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL")]
    from: String,
    /// The destination: a SQLite file path or a postgres:// URL (created; must not hold a ledger).
    #[arg(long, value_name = "PATH|URL")]
    to: String,
}

pub async fn run(a: CopyArgs) -> anyhow::Result<Exit> {
    let src = open::existing(&a.from, Durability::Full).await?;
    let dst = Store::open(&a.to, Durability::Full, true).await?;
    let bar = Progress::new("copying", "copied", "records");
    let n = assay::copy::copy(&src, &dst, |done, total| bar.update(done, total)).await?;
    bar.finish();
    let bar = Progress::new("verifying the copy", "verified", "records");
    let report = assay::verify::verify(&dst, None, |done, total| bar.update(done, total)).await?;
    bar.finish();
    let (src_head, dst_head) = (src.head().await?, dst.head().await?);
    let same_root = match (src_head, dst_head) {
        (Some(s), Some(d)) => {
            let (a, b) =
                (src.checkpoint_at(s.checkpoint_size).await?, dst.checkpoint_at(d.checkpoint_size).await?);
            a.zip(b).is_some_and(|(a, b)| a.root == b.root && a.note == b.note)
        }
        _ => false,
    };
    if report.ok && same_root {
        outln!("copied {n} records; the copy verifies and carries the same signed checkpoints");
        copy_evidence(&a, &src).await?;
        Ok(Exit::Ok)
    } else {
        outln!("the copy does not verify: {}", report.reason.unwrap_or_else(|| "checkpoints differ".into()));
        Ok(Exit::VerifyFailed)
    }
}

/// Copies the blobs the log cites; names each the source lacks or holds damaged (the log's
/// copy stands: `assay evidence verify` on either side names the same blobs).
async fn copy_evidence(a: &CopyArgs, src: &Store) -> anyhow::Result<()> {
    let (from, to) = (BlobStore::open(&a.from, u64::MAX).await?, BlobStore::open(&a.to, u64::MAX).await?);
    let bar = Progress::new("copying evidence", "copied", "blobs");
    let done = copy_cited(src, &from, &to, |done, total| bar.update(done, total)).await?;
    bar.finish();
    outln!("copied {} evidence blob(s), {} bytes; {} already there", done.copied, done.bytes, done.existed);
    for (what, list) in [("missing in the source", &done.missing), ("damaged in the source", &done.damaged)] {
        for (name, c) in list {
            eprintln!(
                "warning: evidence {name} {what}, not copied (run {}, {}, record {})",
                c.run, c.path, c.seq
            );
        }
    }
    Ok(())
}

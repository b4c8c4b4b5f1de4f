//! `assay copy --from SRC --to DST`: move a ledger between backends, then verify the copy.

use indicatif::{ProgressBar, ProgressStyle};

use assay::store::{Durability, Store};

use super::Exit;

#[derive(clap::Args)]
pub struct CopyArgs {
    /// The source ledger (SQLite path or postgres:// URL).
    #[arg(long)]
    from: String,
    /// The destination (created; must not hold a ledger).
    #[arg(long)]
    to: String,
}

pub async fn run(a: CopyArgs) -> anyhow::Result<Exit> {
    let src = Store::open(&a.from, Durability::Full, false).await?;
    let dst = Store::open(&a.to, Durability::Full, true).await?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("copying {bar:40} {pos}/{len} records")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let n = assay::copy::copy(&src, &dst, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    let report = assay::verify::verify(&dst, None, |_, _| {}).await?;
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
        Ok(Exit::Ok)
    } else {
        outln!("the copy does not verify: {}", report.reason.unwrap_or_else(|| "checkpoints differ".into()));
        Ok(Exit::VerifyFailed)
    }
}

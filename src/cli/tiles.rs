//! `assay tiles export --out DIR`: the tree as C2SP tlog-tiles files (see `assay::tiles`).

use std::path::PathBuf;

use super::{Exit, ReadDbArgs, open};

#[derive(clap::Subcommand)]
pub enum TilesCommand {
    /// Write the tiles, entry bundles and `checkpoint` of the latest signed checkpoint to a
    /// folder (C2SP tlog-tiles), byte for byte what `GET /tile/…` serves; rerun to add what
    /// the log grew by (full tiles already there are kept).
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    /// The folder to write (created if absent).
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON: `{"size","written","skipped"}`.
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: TilesCommand) -> anyhow::Result<Exit> {
    let TilesCommand::Export(a) = cmd;
    let store = open::store(&a.db).await?;
    let done = assay::tiles::files::export(&store, &a.out).await;
    store.close().await;
    let done = done?;
    if a.json {
        let summary =
            serde_json::json!({"size": done.size, "written": done.written, "skipped": done.skipped});
        outln!("{summary}");
    } else {
        outln!(
            "tiles of tree size {} in {}: {} written, {} full ones already there",
            done.size,
            a.out.display(),
            done.written,
            done.skipped
        );
    }
    Ok(Exit::Ok)
}

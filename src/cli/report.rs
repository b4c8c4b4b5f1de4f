//! `assay report --artifact SLUG | --corpus (--db|--server) --out DIR|FILE [--format html|md]`:
//! publication-style reports (`assay::report`).

use std::path::PathBuf;

use assay::report::Format;

use super::Exit;
use super::export::SourceArgs;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["artifact", "corpus"])))]
pub struct ReportArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The report of this artifact (by slug).
    #[arg(long)]
    artifact: Option<String>,
    /// The corpus report: the headline, the failing artifacts by reason, and its trend.
    #[arg(long)]
    corpus: bool,
    /// Where to write it: a file, or a folder (the file is then named for the artifact, or
    /// `corpus`, with the format's extension).
    #[arg(long)]
    out: PathBuf,
    /// html (self-contained and printable) or md.
    #[arg(long, value_enum, default_value = "html")]
    format: Format,
}

pub async fn run(a: ReportArgs) -> anyhow::Result<Exit> {
    match &a.artifact {
        Some(slug) => artifact(&a, slug).await,
        None => corpus(&a).await,
    }
}

async fn artifact(_a: &ReportArgs, _slug: &str) -> anyhow::Result<Exit> {
    anyhow::bail!("the artifact report is being built")
}

async fn corpus(_a: &ReportArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("the corpus report is being built")
}

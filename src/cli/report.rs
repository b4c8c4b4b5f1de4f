//! `assay report --artifact SLUG | --corpus (--db|--server) --out DIR|FILE [--format html|md]`:
//! publication-style reports (`assay::report`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use assay::report::{self, Format};

use super::Exit;
use super::export::{Source, SourceArgs, open};

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

async fn artifact(a: &ReportArgs, slug: &str) -> anyhow::Result<Exit> {
    let source = open(&a.source).await?;
    // The whole report is built before anything is written: an unknown slug writes nothing.
    let report = match &source {
        Source::Db(store) => report::artifact::build(store, slug, |_| None).await?,
        Source::Server(server) => report::artifact::build(server, slug, |_| None).await?,
    };
    let path = out_path(&a.out, &report::file_stem(slug), a.format);
    let text = report::artifact::render(&report, a.format);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    outln!(
        "{}: the report of {slug} ({} claims, {}) at checkpoint size {}",
        path.display(),
        report.claims.len(),
        if report.passes { "passes" } else { "does not pass" },
        report.provenance.size
    );
    Ok(Exit::Ok)
}

/// `out` itself, or when it is a folder (or ends with a `/`), `<stem>.<extension>` in it.
fn out_path(out: &Path, stem: &str, format: Format) -> PathBuf {
    let folder = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if folder { out.join(format!("{stem}.{}", format.extension())) } else { out.to_owned() }
}

async fn corpus(_a: &ReportArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("the corpus report is being built")
}

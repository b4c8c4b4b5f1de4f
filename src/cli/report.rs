//! `assay report --artifact SLUG | --corpus (--db|--server) --out DIR|FILE [--format html|md]`:
//! publication-style reports (`assay::report`).

use std::path::PathBuf;

use anyhow::Context;
use assay::report::corpus::CorpusReport;
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
    let path = write(a, &report::file_stem(slug), &report::artifact::render(&report, a.format))?;
    outln!(
        "{}: the report of {slug} ({} claims, {}) at checkpoint size {}",
        path.display(),
        report.claims.len(),
        if report.passes { "passes" } else { "does not pass" },
        report.provenance.size
    );
    Ok(Exit::Ok)
}

async fn corpus(a: &ReportArgs) -> anyhow::Result<Exit> {
    let report = match open(&a.source).await? {
        Source::Db(store) => CorpusReport::build(&store).await?,
        Source::Server(server) => CorpusReport::build(&server).await?,
    };
    let path = write(a, "corpus", &report.render(a.format))?;
    outln!("{}: the corpus report at checkpoint size {}: {}", path.display(), report.size, report.headline);
    Ok(Exit::Ok)
}

/// Writes a report to `--out`: a folder (existing, or named with a trailing `/`) gets
/// `<stem>.<extension>` inside it; any other path is the file. Returns the file's path.
fn write(a: &ReportArgs, stem: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = if a.out.is_dir() || a.out.as_os_str().to_string_lossy().ends_with('/') {
        a.out.join(format!("{stem}.{}", a.format.extension()))
    } else {
        a.out.clone()
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

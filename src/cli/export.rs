//! `assay export parquet|bundle`: Parquet tables for analysis, and per-artifact audit bundles.

use std::path::PathBuf;

use anyhow::Context;
use assay::blobs::BlobStore;
use assay::blobs::source::BlobSource;
use assay::export::evidence_tar::{EvidenceSummary, export_bundle_with_evidence};
use assay::export::source::ServerSource;
use assay::export::{
    BundleSummary, ExportError, ExportOptions, export_bundle, export_parquet, files::ROW_GROUP_ROWS,
};
use assay::store::{Durability, Store};

use super::open::LEDGER_KEY_SETTING;
use super::progress::Progress;
use super::remote::ServerArgs;
use super::{Exit, keys, open};

#[derive(clap::Subcommand)]
pub enum ExportCommand {
    /// Parquet: `events/type=<type>/` (verbatim payloads, signatures and leaves), the typed
    /// tables, and manifest.json naming the signed checkpoint the export ends at.
    Parquet(ParquetArgs),
    /// An artifact's offline audit bundle: DSSE envelopes, in-toto statements, a SLSA
    /// verification summary signed by the ledger, and inclusion proofs beside it (FILE.proof).
    Bundle(BundleArgs),
}

/// Where to read the ledger.
#[derive(clap::Args, Clone, Debug)]
pub struct SourceArgs {
    /// The ledger: a SQLite file path or a postgres:// URL (default assay.db).
    #[arg(long, value_name = "PATH|URL", env = "ASSAY_DB")]
    db: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// The ledger an export reads.
pub(super) enum Source {
    Db(Store),
    Server(ServerSource),
}

#[derive(clap::Args)]
pub struct ParquetArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The export folder (created if absent).
    #[arg(long)]
    out: PathBuf,
    /// Append to the export already in --out, which must end just before this seq.
    #[arg(long)]
    since: Option<u64>,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = ROW_GROUP_ROWS, hide = true)]
    row_group_rows: usize,
    /// Print the summary as JSON: `{"from","size","records","files","manifest"}`.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct BundleArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The artifact's slug.
    #[arg(long)]
    artifact: String,
    /// The bundle (`.intoto.jsonl`); its proofs go to FILE.proof.
    #[arg(long)]
    out: PathBuf,
    /// The ledger's signing key, which signs the statements (default: the one recorded in the
    /// ledger's settings by `assay init`).
    #[arg(long, env = "ASSAY_LEDGER_KEY")]
    ledger_key: Option<PathBuf>,
    /// Also write FILE.evidence.tar: every file of every evidence.captured event in the bundle,
    /// from the evidence store (or the server's), with a manifest. A cited file missing from
    /// the store exits 1 (the store's state, not the request, is wrong) and writes nothing.
    #[arg(long)]
    with_evidence: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: ExportCommand) -> anyhow::Result<Exit> {
    match cmd {
        ExportCommand::Parquet(a) => parquet(a).await,
        ExportCommand::Bundle(a) => bundle(a).await,
    }
}

pub(super) async fn open(source: &SourceArgs) -> anyhow::Result<Source> {
    if let Some(client) = source.server.client()? {
        return Ok(Source::Server(ServerSource::new(client)));
    }
    let db = source.db.as_deref().unwrap_or("assay.db");
    Ok(Source::Db(open::existing(db, Durability::Full).await?))
}

async fn parquet(a: ParquetArgs) -> anyhow::Result<Exit> {
    let source = open(&a.source).await?;
    anyhow::ensure!(a.row_group_rows > 0, "--row-group-rows must be at least 1");
    let options = ExportOptions { row_group_rows: a.row_group_rows, ..ExportOptions::default() };
    let bar = Progress::new("exporting", "exported", "records");
    let progress = |done, total| bar.update(done, total);
    let summary = match &source {
        Source::Db(store) => export_parquet(store, &a.out, a.since, &options, progress).await?,
        Source::Server(server) => export_parquet(server, &a.out, a.since, &options, progress).await?,
    };
    bar.finish();
    if a.json {
        outln!(
            "{}",
            serde_json::json!({
                "from": summary.from,
                "size": summary.size,
                "records": summary.size - summary.from,
                "files": summary.files,
                "manifest": summary.manifest,
            })
        );
    } else if summary.files.is_empty() {
        outln!("nothing new: the latest checkpoint is at size {}, already exported", summary.size);
    } else {
        outln!(
            "exported seqs {}..={} ({} records) to {}: {} files, consistent with the checkpoint at size {}",
            summary.from,
            summary.size - 1,
            summary.size - summary.from,
            a.out.display(),
            summary.files.len(),
            summary.size
        );
    }
    Ok(Exit::Ok)
}

async fn bundle(a: BundleArgs) -> anyhow::Result<Exit> {
    let source = open(&a.source).await?;
    let key_path = match (&a.ledger_key, &source) {
        (Some(p), _) => p.clone(),
        (None, Source::Db(store)) => store
            .setting(LEDGER_KEY_SETTING)
            .await?
            .context("the ledger key's path is not recorded; pass --ledger-key")?
            .into(),
        (None, Source::Server(_)) => {
            anyhow::bail!("--server: pass the ledger's signing key with --ledger-key")
        }
    };
    let key = keys::signer("--ledger-key", &key_path)?;
    let now = assay::clock::rfc3339(assay::clock::now_ns());
    let (s, evidence) = if a.with_evidence {
        match with_evidence(&a, &source, &key, &now).await? {
            Ok((s, e)) => (s, Some(e)),
            Err(detail) => {
                eprintln!("error: {detail}");
                return Ok(Exit::VerifyFailed);
            }
        }
    } else {
        let s = match &source {
            Source::Db(store) => export_bundle(store, &a.artifact, &key, &a.out, &now).await?,
            Source::Server(server) => export_bundle(server, &a.artifact, &key, &a.out, &now).await?,
        };
        (s, None)
    };
    if a.json {
        let mut summary = serde_json::json!({
            "bundle": s.path, "proofs": s.proof_path, "events": s.events, "claims": s.claims,
            "checkpoint_size": s.size, "passes": s.passes,
        });
        if let Some(e) = &evidence {
            summary["evidence"] =
                serde_json::json!({"tar": e.path, "files": e.files, "blobs": e.blobs, "bytes": e.bytes});
        }
        outln!("{summary}");
    } else {
        outln!(
            "{}: {} events, {} claim statements and the verification summary ({}), at checkpoint size {}",
            s.path.display(),
            s.events,
            s.claims,
            if s.passes { "PASSED" } else { "FAILED" },
            s.size
        );
        outln!("{}: inclusion proofs", s.proof_path.display());
        if let Some(e) = &evidence {
            outln!(
                "{}: {} evidence file(s), {} distinct blob(s), {} bytes",
                e.path.display(),
                e.files,
                e.blobs,
                e.bytes
            );
        }
    }
    Ok(Exit::Ok)
}

/// The bundle and its evidence tar; `Err(detail)` when the store lacks or has damaged evidence
/// the bundle cites (nothing is written then).
async fn with_evidence(
    a: &BundleArgs,
    source: &Source,
    key: &assay_events::keys::SignerKey,
    now: &str,
) -> anyhow::Result<Result<(BundleSummary, EvidenceSummary), String>> {
    let result = match source {
        Source::Db(store) => {
            let db = a.source.db.as_deref().unwrap_or("assay.db");
            let blobs = BlobStore::open(db, u64::MAX).await?;
            export_bundle_with_evidence(store, BlobSource::Store(blobs), &a.artifact, key, &a.out, now).await
        }
        Source::Server(server) => {
            let client = a.source.server.client()?.context("--server: no client")?;
            export_bundle_with_evidence(server, BlobSource::Server(client), &a.artifact, key, &a.out, now)
                .await
        }
    };
    match result {
        Ok(done) => Ok(Ok(done)),
        Err(ExportError::Evidence(detail)) => Ok(Err(detail)),
        Err(e) => Err(e.into()),
    }
}

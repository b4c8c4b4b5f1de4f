//! `assay verify-export` and `assay verify-bundle`: offline checks against the ledger key.

use std::path::PathBuf;

use assay::export::bundle::proof_path;
use assay::export::bundle_check::PASSED;
use assay::export::{verify_bundle, verify_export};

use super::progress::Progress;
use super::{Exit, keys};

#[derive(clap::Args)]
pub struct VerifyExportArgs {
    /// The export folder (holding manifest.json).
    dir: PathBuf,
    /// The ledger's public verifier key (ledger.vkey): the only thing trusted.
    #[arg(long)]
    ledger_key: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct VerifyBundleArgs {
    /// The bundle (`.intoto.jsonl`).
    file: PathBuf,
    /// The ledger's public verifier key (ledger.vkey): the only thing trusted.
    #[arg(long)]
    ledger_key: PathBuf,
    /// The inclusion proofs (default: FILE.proof).
    #[arg(long)]
    proof: Option<PathBuf>,
    /// Check only that the bundle is authentic (signatures, proofs, the recomputed verdict
    /// equals the stated one), and exit 0 even when the artifact's verdict is FAILED.
    #[arg(long)]
    authentic_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn export(a: VerifyExportArgs) -> anyhow::Result<Exit> {
    let key = keys::verifier("--ledger-key", &a.ledger_key)?;
    anyhow::ensure!(a.dir.is_dir(), "{} is not a folder", a.dir.display());
    let bar = std::sync::Arc::new(Progress::new("verifying", "verified", "records"));
    let progress = bar.clone();
    let dir = a.dir.clone();
    let report = tokio::task::spawn_blocking(move || {
        verify_export(&dir, &key, |done, total| progress.update(done, total))
    })
    .await?;
    bar.finish();
    if a.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else if report.ok {
        outln!("ok: {} records and {} files verified", report.records, report.files);
    } else {
        let mut at = Vec::new();
        if let Some(f) = &report.first_bad_file {
            at.push(f.clone());
        }
        if let Some(r) = report.first_bad_row {
            at.push(format!("row {r}"));
        }
        if let Some(s) = report.first_bad_seq {
            at.push(format!("seq {s}"));
        }
        outln!("bad: {}: {}", at.join(" "), report.reason.as_deref().unwrap_or("unknown"));
    }
    Ok(if report.ok { Exit::Ok } else { Exit::VerifyFailed })
}

pub async fn bundle(a: VerifyBundleArgs) -> anyhow::Result<Exit> {
    let key = keys::verifier("--ledger-key", &a.ledger_key)?;
    let proof = a.proof.clone().unwrap_or_else(|| proof_path(&a.file));
    let file = a.file.clone();
    let report = tokio::task::spawn_blocking(move || verify_bundle(&file, &proof, &key)).await?;
    if a.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else if report.ok {
        outln!(
            "authentic: {} {} — {} events and {} statements verified against the checkpoint at size {}",
            report.artifact.as_deref().unwrap_or("-"),
            report.verdict.as_deref().unwrap_or("-"),
            report.events,
            report.statements,
            report.checkpoint_size.unwrap_or(0)
        );
    } else {
        let mut at = Vec::new();
        if let Some(l) = report.first_bad_line {
            at.push(format!("line {l}"));
        }
        if let Some(s) = report.first_bad_seq {
            at.push(format!("seq {s}"));
        }
        let at = if at.is_empty() { String::new() } else { format!("{}: ", at.join(" ")) };
        outln!("bad: {at}{}", report.reason.as_deref().unwrap_or("unknown"));
    }
    // A bundle is a gate: authentic but FAILED is a failure unless only authenticity was asked.
    let passed = report.verdict.as_deref() == Some(PASSED);
    if report.ok && !passed && !a.authentic_only && !a.json {
        eprintln!(
            "error: the artifact does not pass its audit (verdict {}); --authentic-only checks only the bundle's authenticity",
            report.verdict.as_deref().unwrap_or("-")
        );
    }
    Ok(if report.ok && (passed || a.authentic_only) { Exit::Ok } else { Exit::VerifyFailed })
}

//! `assay verify-export` and `assay verify-bundle`: offline checks against the ledger key.

use std::path::PathBuf;

use assay::export::bundle::proof_path;
use assay::export::bundle_check::PASSED;
use assay::export::evidence_tar::evidence_path;
use assay::export::tlog_proof::parse_many;
use assay::export::{BundleReport, Manifest, bundle_check::verify_bundle_with_evidence, verify_export};
use assay::witnessed::{Witnessed, check_note};
use assay_events::witness_policy::WitnessPolicy;

use super::progress::Progress;
use super::{Exit, keys};

#[derive(clap::Args)]
pub struct VerifyExportArgs {
    /// The export folder (holding manifest.json).
    dir: PathBuf,
    /// The ledger's public verifier key (ledger.vkey): the only thing trusted.
    #[arg(long)]
    ledger_key: PathBuf,
    /// A witness policy (`witness <vkey>` lines, `quorum K`): the checkpoint of the export's last step (manifest.json) must carry
    /// valid cosignatures from K listed witnesses; exit 1 naming the missing ones otherwise.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
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
    /// The evidence tar to check against the bundle's evidence.captured events (default:
    /// FILE.evidence.tar when it exists).
    #[arg(long, value_name = "TAR")]
    evidence: Option<PathBuf>,
    /// Check only that the bundle is authentic (signatures, proofs, the recomputed verdict
    /// equals the stated one), and exit 0 even when the artifact's verdict is FAILED.
    #[arg(long)]
    authentic_only: bool,
    /// A witness policy (`witness <vkey>` lines, `quorum K`): the checkpoint the bundle's proofs hold must carry
    /// valid cosignatures from K listed witnesses; exit 1 naming the missing ones otherwise.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn export(a: VerifyExportArgs) -> anyhow::Result<Exit> {
    let key = keys::verifier("--ledger-key", &a.ledger_key)?;
    let policy = a.witness_policy.as_deref().map(keys::witness_policy).transpose()?;
    anyhow::ensure!(a.dir.is_dir(), "{} is not a folder", a.dir.display());
    let bar = std::sync::Arc::new(Progress::new("verifying", "verified", "records"));
    let progress = bar.clone();
    let dir = a.dir.clone();
    let report = tokio::task::spawn_blocking(move || {
        verify_export(&dir, &key, |done, total| progress.update(done, total))
    })
    .await?;
    bar.finish();
    let mut report = report;
    let witnessed = judge(policy.as_ref(), report.ok, || {
        let m = Manifest::read(&a.dir)?.ok_or_else(|| anyhow::anyhow!("no manifest.json"))?;
        Ok(m.checkpoint)
    });
    let witnessed = match witnessed {
        Ok(w) => w,
        Err(reason) => {
            report.ok = false;
            report.reason = Some(reason);
            None
        }
    };
    if a.json {
        outln!("{}", with_witnessed(serde_json::to_value(&report)?, witnessed.as_ref())?);
    } else if report.ok {
        outln!("ok: {} records and {} files verified", report.records, report.files);
        if let Some(w) = &witnessed {
            outln!("witnessed: the last step's checkpoint, {}", w.describe());
        }
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
    let policy = a.witness_policy.as_deref().map(keys::witness_policy).transpose()?;
    let proof = a.proof.clone().unwrap_or_else(|| proof_path(&a.file));
    let file = a.file.clone();
    let evidence = a.evidence.clone().or_else(|| Some(evidence_path(&a.file)).filter(|p| p.exists()));
    if let Some(tar) = &evidence {
        anyhow::ensure!(tar.is_file(), "--evidence {}: no such file", tar.display());
    }
    let proof_file = proof.clone();
    let mut report = tokio::task::spawn_blocking(move || {
        verify_bundle_with_evidence(&file, &proof, &key, evidence.as_deref())
    })
    .await?;
    // Every proof carries the same checkpoint (checked above): the first one's is judged.
    let witnessed = judge(policy.as_ref(), report.ok, || {
        let text = std::fs::read_to_string(&proof_file)?;
        let first = parse_many(&text)?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no proofs"))?;
        Ok(first.checkpoint)
    });
    let witnessed = match witnessed {
        Ok(w) => w,
        Err(reason) => {
            report.ok = false;
            report.verdict = None;
            report.reason = Some(reason);
            None
        }
    };
    if a.json {
        outln!("{}", with_witnessed(serde_json::to_value(&report)?, witnessed.as_ref())?);
        return Ok(bundle_exit(&report, &a));
    }
    if let Some(e) = &report.evidence {
        for p in &e.problems {
            outln!("bad evidence: {p}");
        }
        if e.ok {
            outln!("evidence: {} file(s) in {} blob(s), every one whole", e.files, e.blobs_whole);
        } else if e.problem_count > e.problems.len() as u64 {
            outln!("bad evidence: … {} problem(s) in all", e.problem_count);
        }
    }
    if report.ok {
        outln!(
            "authentic: {} {} — {} events and {} statements verified against the checkpoint at size {}",
            report.artifact.as_deref().unwrap_or("-"),
            report.verdict.as_deref().unwrap_or("-"),
            report.events,
            report.statements,
            report.checkpoint_size.unwrap_or(0)
        );
        if let Some(w) = &witnessed {
            outln!("witnessed: the proofs' checkpoint, {}", w.describe());
        }
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
    if report.ok && report.verdict.as_deref() != Some(PASSED) && !a.authentic_only {
        eprintln!(
            "error: the artifact does not pass its audit (verdict {}); --authentic-only checks only the bundle's authenticity",
            report.verdict.as_deref().unwrap_or("-")
        );
    }
    Ok(bundle_exit(&report, &a))
}

/// A bundle is a gate: authentic but FAILED is a failure unless only authenticity was asked.
fn bundle_exit(report: &BundleReport, a: &VerifyBundleArgs) -> Exit {
    let passed = report.verdict.as_deref() == Some(PASSED);
    if report.ok && (passed || a.authentic_only) { Exit::Ok } else { Exit::VerifyFailed }
}

/// With a policy and files that verified: the policy judged on the checkpoint `note` reads
/// from them; the reason to refuse them otherwise.
fn judge(
    policy: Option<&WitnessPolicy>,
    verified: bool,
    note: impl FnOnce() -> anyhow::Result<String>,
) -> Result<Option<Witnessed>, String> {
    let Some(policy) = policy.filter(|_| verified) else { return Ok(None) };
    let note = note().map_err(|e| format!("witness policy: the checkpoint cannot be read: {e:#}"))?;
    check_note(policy, &note).map(Some).map_err(|e| format!("witness policy: {e}"))
}

/// The JSON report with `witnessed` added when a policy was met.
fn with_witnessed(mut json: serde_json::Value, w: Option<&Witnessed>) -> anyhow::Result<serde_json::Value> {
    if let Some(w) = w {
        json["witnessed"] = serde_json::to_value(w)?;
    }
    Ok(json)
}

//! `assay replay`, `assay audit`, `assay queue`, `assay gpus`: projections rebuilt from the log.

use anyhow::Context;
use assay_projections::Projections;
use indicatif::{ProgressBar, ProgressStyle};

use super::{DbArgs, Exit, open};

#[derive(clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The state as of this seq (default: the head).
    #[arg(long)]
    at: Option<u64>,
    /// One projection (keys, queue, corpus, audit, gpus, kernels, verdicts) or `all`.
    #[arg(long, default_value = "all")]
    projection: String,
    #[arg(long)]
    json: bool,
    /// Print `NAME DIGEST` lines only.
    #[arg(long)]
    digest_only: bool,
}

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Only this artifact; exit status 1 when it does not pass.
    #[arg(long)]
    artifact: Option<String>,
    /// Exit status 1 unless every canonical artifact passes (a gate for CI).
    #[arg(long, conflicts_with = "artifact")]
    require_all: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct StateArgs {
    #[command(flatten)]
    db: DbArgs,
    #[arg(long)]
    json: bool,
}

async fn state(db: &DbArgs, at: Option<u64>) -> anyhow::Result<Projections> {
    let store = open::store(db).await?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("replaying {bar:40} {pos}/{len} records")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let p = assay::replay::replay(&store, at, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    Ok(p)
}

pub async fn replay(a: ReplayArgs) -> anyhow::Result<Exit> {
    let names: Vec<&str> = if a.projection == "all" {
        Projections::names().to_vec()
    } else {
        let n = Projections::names().iter().find(|n| **n == a.projection).with_context(|| {
            format!(
                "unknown projection {:?}; one of {} or all",
                a.projection,
                Projections::names().join(", ")
            )
        })?;
        vec![*n]
    };
    let p = state(&a.db, a.at).await?;
    let seq = p.seq();
    for name in names {
        let digest = p.digest(name).context("projection digest")?;
        if a.digest_only {
            outln!("{name} {digest}");
        } else if a.json {
            let state = p.state_json(name).context("projection state")?;
            outln!(
                "{}",
                serde_json::json!({"projection": name, "seq": seq, "digest": digest.to_hex(), "state": state})
            );
        } else {
            outln!("== {name} (seq {}, digest {digest})", seq.map_or("-".to_owned(), |s| s.to_string()));
            outln!("{}", serde_json::to_string_pretty(&p.state_json(name).context("projection state")?)?);
        }
    }
    Ok(Exit::Ok)
}

pub async fn audit(a: AuditArgs) -> anyhow::Result<Exit> {
    let p = state(&a.db, None).await?;
    let report = p.audit_report();
    if let Some(slug) = &a.artifact {
        let artifact = report.artifact(slug).with_context(|| format!("no artifact {slug:?}"))?;
        let claims: Vec<_> = report.claims_of(slug).collect();
        if a.json {
            outln!("{}", serde_json::json!({"artifact": artifact, "claims": claims}));
        } else {
            print_artifact(artifact, &claims)?;
        }
        return Ok(if artifact.passes { Exit::Ok } else { Exit::VerifyFailed });
    }
    // `--require-all` gates on the canonical artifacts; slugs with claims but no canonical
    // version are listed in the report but do not count (they are not published).
    let all_pass = report.artifacts_passing == report.artifacts_canonical;
    let exit = if a.require_all && !all_pass { Exit::VerifyFailed } else { Exit::Ok };
    if a.json {
        outln!("{}", serde_json::to_string(&report)?);
        return Ok(exit);
    }
    let v = &report.verdicts;
    outln!(
        "claims: {} supported, {} contradicted, {} unsupported, {} tainted",
        v.supported,
        v.contradicted,
        v.unsupported,
        v.tainted
    );
    for artifact in report.artifacts.iter().filter(|a| !a.passes) {
        outln!(
            "  {:<40} {}",
            artifact.slug,
            artifact.reasons.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    outln!("{}", report.headline);
    if a.require_all && !all_pass {
        eprintln!(
            "error: --require-all: {} of {} canonical artifacts do not pass",
            report.artifacts_canonical - report.artifacts_passing,
            report.artifacts_canonical
        );
    }
    Ok(exit)
}

fn print_artifact(
    a: &assay_projections::audit::ArtifactVerdict,
    claims: &[&assay_projections::audit::ClaimVerdict],
) -> anyhow::Result<()> {
    outln!(
        "{} (canonical version {}): {}",
        a.slug,
        a.canonical_version.map_or("-".to_owned(), |v| v.to_string()),
        if a.passes { "passes" } else { "does not pass" }
    );
    for r in &a.reasons {
        outln!("  reason: {r}");
    }
    for c in claims {
        outln!("  claim {} [{}]: {:?} {}", c.claim, c.kind, c.verdict, c.reasons.join(", "));
        if !c.context.is_empty() {
            outln!("    context: {}", c.context.join(", "));
        }
    }
    Ok(())
}

pub async fn queue(a: StateArgs) -> anyhow::Result<Exit> {
    show(a, "queue").await
}

pub async fn gpus(a: StateArgs) -> anyhow::Result<Exit> {
    show(a, "gpus").await
}

async fn show(a: StateArgs, name: &str) -> anyhow::Result<Exit> {
    let p = state(&a.db, None).await?;
    let state = p.state_json(name).context("projection state")?;
    if a.json {
        outln!("{}", serde_json::to_string(&state)?);
    } else {
        outln!("{}", serde_json::to_string_pretty(&state)?);
    }
    Ok(Exit::Ok)
}

//! `assay replay`, `assay audit`, `assay queue`, `assay gpus`: projections rebuilt from the log.

use anyhow::Context;
use assay_projections::queue::{Queue, Run};
use assay_projections::{ProjectionName, Projections};

use super::progress::Progress;
use super::table::{Table, or_dash, time_ns, time_text};
use super::{Exit, ReadDbArgs, open, suggest};

#[derive(clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    /// The state as of this seq (default: the head).
    #[arg(long)]
    at: Option<u64>,
    /// One projection (keys, queue, corpus, audit, gpus, kernels, verdicts) or `all`.
    #[arg(long, default_value = "all")]
    projection: String,
    /// One JSON object per projection: `{"projection","seq","digest","state"}`.
    #[arg(long)]
    json: bool,
    /// Print `NAME DIGEST` lines only (full digests; the table shows their first 16 digits).
    #[arg(long)]
    digest_only: bool,
}

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    /// Read the log (and, with --recompute-from-evidence, its evidence) through a server.
    #[command(flatten)]
    server: super::remote::ServerArgs,
    /// Only this artifact; exit status 1 when it does not pass.
    #[arg(long)]
    artifact: Option<String>,
    /// Exit status 1 unless every canonical artifact passes (a gate for CI).
    #[arg(long, conflicts_with = "artifact")]
    require_all: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Recompute each claim's metric values from the metrics files kept as evidence
    /// (`metrics.jsonl`, `*.metrics.jsonl`: the lines `run exec --metrics` reads) and compare
    /// them with the recorded metrics; exit status 1 on a disagreement or an unreadable file.
    #[arg(long, conflicts_with = "require_all")]
    recompute_from_evidence: bool,
}

#[derive(clap::Args)]
pub struct StateArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    /// Print the projection's state as JSON (the bytes its digest covers) instead of a table.
    #[arg(long)]
    json: bool,
}

async fn state(db: &ReadDbArgs, at: Option<u64>) -> anyhow::Result<Projections> {
    let store = open::store(db).await?;
    let progress = Progress::new("replaying", "replayed", "records");
    let p = assay::replay::replay(&store, at, |done, total| progress.update(done, total)).await?;
    progress.finish();
    Ok(p)
}

pub async fn replay(a: ReplayArgs) -> anyhow::Result<Exit> {
    let names: Vec<ProjectionName> = if a.projection == "all" {
        ProjectionName::ALL.to_vec()
    } else {
        let n = ProjectionName::parse(&a.projection).ok().with_context(|| {
            let mut names: Vec<&str> = ProjectionName::names().collect();
            names.push("all");
            format!(
                "--projection: unknown projection {:?}{}",
                a.projection,
                suggest::hint(&a.projection, &names)
            )
        })?;
        vec![n]
    };
    let p = state(&a.db, a.at).await?;
    let seq = p.seq();
    if a.digest_only || a.json {
        for name in names {
            let digest = p.digest(name);
            if a.digest_only {
                outln!("{name} {digest}");
            } else {
                let state = p.state_json(name).context("projection state")?;
                outln!(
                    "{}",
                    serde_json::json!({"projection": name, "seq": seq, "digest": digest.to_hex(), "state": state})
                );
            }
        }
        return Ok(Exit::Ok);
    }
    match seq {
        Some(s) => outln!("as of seq {s} ({} records)", s + 1),
        None => outln!("as of the empty log"),
    }
    let mut table = Table::new(&["PROJECTION", "DIGEST", "HOLDS"]);
    for name in names {
        let digest = p.digest(name);
        let short: String = digest.to_hex().chars().take(16).collect();
        table.row(vec![name.to_string(), short, holds(&p, name)]);
    }
    out!("{}", table.render());
    Ok(Exit::Ok)
}

/// What a projection holds, counted.
fn holds(p: &Projections, name: ProjectionName) -> String {
    match name {
        ProjectionName::Keys => {
            let (all, revoked) =
                p.keys.keys().fold((0, 0), |(n, r), (_, k)| (n + 1, r + u64::from(k.revoked_seq.is_some())));
            format!("{all} keys, {revoked} revoked")
        }
        ProjectionName::Queue => {
            let d = p.queue.decisions();
            format!(
                "{} runs ({}); {} dispatches accepted, {} refused",
                p.queue.runs().len(),
                nonzero(&p.queue.counts()),
                d.accepted,
                d.refused
            )
        }
        ProjectionName::Corpus => {
            let c = p.corpus.counts();
            format!(
                "{} artifacts: {} submitted, {} admitted, {} rejected, {} superseded",
                p.corpus.artifacts().len(),
                c.submitted,
                c.admitted,
                c.rejected,
                c.superseded
            )
        }
        ProjectionName::Audit => {
            let claims: usize = p.audit.claims().values().map(|c| c.len()).sum();
            format!("{} runs, {claims} claims", p.audit.runs().len())
        }
        ProjectionName::Gpus => {
            let xids: u64 = p.gpus.devices().values().map(|d| d.xids.total).sum();
            format!(
                "{} GPUs on {} hosts, {xids} Xids, {} needing a reset",
                p.gpus.devices().len(),
                p.gpus.hosts().len(),
                p.gpus.needing_reset().count()
            )
        }
        ProjectionName::Kernels => {
            let t = p.kernels.totals();
            format!(
                "{} launches: {} passed, {} failed, {} faulted",
                t.launches, t.passed, t.failed, t.faulted
            )
        }
        ProjectionName::Verdicts => {
            let r = p.audit_report();
            let v = &r.verdicts;
            format!(
                "{} supported, {} contradicted, {} unsupported, {} tainted; {} of {} artifacts pass",
                v.supported,
                v.contradicted,
                v.unsupported,
                v.tainted,
                r.artifacts_passing,
                r.artifacts_canonical
            )
        }
    }
}

/// `3 queued, 1 running` (zeros left out), or `none`.
fn nonzero(counts: &std::collections::BTreeMap<&'static str, u64>) -> String {
    let parts: Vec<String> = assay_projections::queue::RunState::ALL
        .iter()
        .filter_map(|s| counts.get(s.as_str()).filter(|n| **n > 0).map(|n| format!("{n} {}", s.as_str())))
        .collect();
    if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
}

/// The projections of the log a server holds, replayed from `GET /v1/events`.
async fn state_through(client: &assay::client::Client) -> anyhow::Result<Projections> {
    let progress = Progress::new("replaying", "replayed", "records");
    let p = assay::replay_remote::replay(client, |done| progress.update(done, done)).await;
    progress.finish();
    p.with_context(|| format!("replaying the log of {}", client.base()))
}

pub async fn audit(a: AuditArgs) -> anyhow::Result<Exit> {
    let p = match a.server.client()? {
        Some(client) => state_through(&client).await?,
        None => state(&a.db, None).await?,
    };
    let report = p.audit_report();
    if a.recompute_from_evidence {
        return recompute(&a, &p, &report).await;
    }
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

/// `assay audit --recompute-from-evidence` (`assay::recompute`).
async fn recompute(
    a: &AuditArgs,
    p: &Projections,
    report: &assay_projections::audit::AuditReport,
) -> anyhow::Result<Exit> {
    let claims: Vec<_> = match &a.artifact {
        Some(slug) => {
            report.artifact(slug).with_context(|| format!("no artifact {slug:?}"))?;
            report.claims_of(slug).collect()
        }
        None => report.claims.iter().collect(),
    };
    use assay::recompute::{Evidence, recompute as recompute_claims};
    let done = match a.server.client()? {
        Some(client) => recompute_claims(Evidence::Server(&client), p, &claims).await?,
        None => {
            let store = open::store(&a.db).await?;
            let blobs = assay::blobs::BlobStore::open(&a.db.db, u64::MAX).await;
            let done = match blobs {
                Ok(blobs) => recompute_claims(Evidence::Local { store: &store, blobs: &blobs }, p, &claims)
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            };
            store.close().await;
            done?
        }
    };
    if a.json {
        outln!("{}", serde_json::to_string(&done)?);
    } else {
        for r in &done.rows {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_owned());
            let outcome = match r.outcome {
                assay::recompute::Outcome::Agree => "agree",
                assay::recompute::Outcome::Disagree => "DISAGREE",
                assay::recompute::Outcome::NotKept => "no metrics file kept",
            };
            outln!(
                "{}#{}  {} {}({})  recorded {}  from evidence {}  {outcome}",
                r.artifact,
                r.claim,
                r.run,
                r.agg,
                r.metric,
                show(&r.recorded),
                show(&r.from_evidence)
            );
        }
        for f in &done.problems {
            outln!("{}  {}  {}  (run {})", f.blake3, f.path, f.problem, f.run);
        }
    }
    let kept = done.rows.iter().filter(|r| r.outcome != assay::recompute::Outcome::NotKept).count();
    let findings = done.findings();
    if findings > 0 {
        eprintln!(
            "error: {findings} finding(s): of {} claim value(s), {kept} recomputed from evidence",
            done.rows.len()
        );
        return Ok(Exit::VerifyFailed);
    }
    eprintln!("{} claim value(s), {kept} recomputed from evidence, every one agreeing", done.rows.len());
    Ok(Exit::Ok)
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
        outln!(
            "  claim {} [{}, {}]: {:?} {}",
            c.claim,
            c.kind,
            c.registration.as_str(),
            c.verdict,
            c.reasons.join(", ")
        );
        if !c.context.is_empty() {
            outln!("    context: {}", c.context.join(", "));
        }
    }
    Ok(())
}

pub async fn queue(a: StateArgs) -> anyhow::Result<Exit> {
    let p = state(&a.db, None).await?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string(&p.state_json(ProjectionName::Queue).context("projection state")?)?
        );
        return Ok(Exit::Ok);
    }
    out!("{}", queue_text(&p.queue));
    Ok(Exit::Ok)
}

/// The queue for people: pause and maintenance, counts, decisions, then one row per run in
/// queue order.
fn queue_text(q: &Queue) -> String {
    let mut out = String::new();
    if let Some(pause) = q.paused() {
        out += &format!(
            "dispatch paused at seq {}: {}\n",
            pause.seq,
            pause.reason.as_deref().unwrap_or("no reason given")
        );
    }
    let m = q.maintenance();
    let reason = |r: &Option<String>| r.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    if let Some(all) = &m.all {
        out += &format!("maintenance: everything{}\n", reason(&all.reason));
    }
    for (worker, e) in &m.workers {
        out += &format!("maintenance: worker {worker}{}\n", reason(&e.reason));
    }
    for (gpu, e) in &m.gpus {
        out += &format!("maintenance: gpu {gpu}{}\n", reason(&e.reason));
    }
    for (worker, lanes) in &m.lanes {
        for (gpu, e) in lanes {
            out += &format!("maintenance: lane {worker} {gpu}{}\n", reason(&e.reason));
        }
    }
    let d = q.decisions();
    out += &format!("runs: {}\n", nonzero(&q.counts()));
    let refusals: Vec<String> = d.refusals_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
    out += &format!(
        "dispatch: {} accepted, {} refused{}\n",
        d.accepted,
        d.refused,
        if refusals.is_empty() { String::new() } else { format!(" ({})", refusals.join(", ")) }
    );
    let mut runs: Vec<(&String, &Run)> = q.runs().iter().collect();
    runs.sort_by_key(|(id, r)| (r.queued_seq.unwrap_or(u64::MAX), *id));
    let mut table = Table::new(&["RUN", "STATE", "WORKER", "GPU", "QUEUED", "STARTED", ">DURATION", "EXIT"]);
    for (id, r) in runs {
        let queued = match &r.producer_time.queued {
            Some(t) => time_text(Some(t)),
            None => time_ns(r.queued_at_ns),
        };
        let started = match &r.producer_time.started {
            Some(t) => time_text(Some(t)),
            None => time_ns(r.started_at_ns),
        };
        let exit = match (r.exit_code, r.signal) {
            (_, Some(sig)) => format!("signal {sig}"),
            (Some(code), None) => code.to_string(),
            (None, None) => "-".to_owned(),
        };
        table.row(vec![
            id.clone(),
            r.state.as_str().to_owned(),
            or_dash(r.worker.as_deref()),
            or_dash(r.gpu.as_deref()),
            queued,
            started,
            r.duration_ms.map_or("-".to_owned(), duration),
            exit,
        ]);
    }
    if !table.is_empty() {
        out += &table.render();
    }
    out
}

/// `850ms`, `12.3s`, `4m05s`, `2h07m`.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

pub async fn gpus(a: StateArgs) -> anyhow::Result<Exit> {
    let p = state(&a.db, None).await?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string(&p.state_json(ProjectionName::Gpus).context("projection state")?)?
        );
        return Ok(Exit::Ok);
    }
    out!("{}", gpus_text(&p.gpus));
    Ok(Exit::Ok)
}

/// GPUs for people: one row per (host, PCI id), then hosts whose preflight found no GPU.
fn gpus_text(g: &assay_projections::gpus::Gpus) -> String {
    let mut table = Table::new(&[
        "HOST",
        "PCI",
        "MODEL",
        "LAST TELEMETRY",
        ">TEMP",
        ">POWER",
        ">UTIL",
        ">XIDS",
        "LAST XID",
        "NEEDS RESET",
    ]);
    for (key, d) in g.devices() {
        let t = d.telemetry.as_ref();
        let last_xid = d.xids.recent.back();
        table.row(vec![
            // A GPU recorded without a host: its events count for that PCI id on every host.
            key.host.clone().unwrap_or_else(|| "(any)".to_owned()),
            key.pci.clone(),
            or_dash(d.name.as_deref()),
            time_text(t.map(|t| t.time.as_str())),
            t.and_then(|t| t.temp_c).map_or("-".to_owned(), |c| format!("{c}°C")),
            t.and_then(|t| t.power_mw).map_or("-".to_owned(), |mw| format!("{:.0} W", mw as f64 / 1000.0)),
            t.and_then(|t| t.util_gpu_pct).map_or("-".to_owned(), |u| format!("{u:.0}%")),
            d.xids.total.to_string(),
            last_xid.map_or("-".to_owned(), |x| format!("{} at {}", x.code, time_text(Some(&x.time)))),
            match &d.reset_cause {
                Some(c) if d.needs_reset => format!("yes: Xid {} ({})", c.code, c.action),
                _ if d.needs_reset => "yes".to_owned(),
                _ => "no".to_owned(),
            },
        ]);
    }
    let mut out = if table.is_empty() { "no GPUs recorded\n".to_owned() } else { table.render() };
    for (host, pre) in g.hosts() {
        if !pre.available {
            out += &format!(
                "{host}: no usable GPU at seq {} ({})\n",
                pre.seq,
                pre.unavailable_reason.as_deref().unwrap_or("no reason given")
            );
        }
    }
    out
}

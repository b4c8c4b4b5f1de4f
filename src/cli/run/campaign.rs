//! `assay run campaign FILE (--db PATH | --server URL) --key K.key [--backend auto|cpu|cuda]
//! [--run RUN]`: `gpu.preflight`, then one `kernel.launch.completed` or
//! `kernel.launch.faulted` per cell; a progress bar, and the summary matrix at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use assay_events::roles::Role;
use assay_kernels::BackendRequest;
use assay_kernels::campaign::{Campaign, CampaignOptions, ChildCommand, Isolation, run_campaign};
use assay_kernels::preflight::Preflight;

use super::{Opened, SinkArgs, count_interrupts, open_sink_keeping, parse_duration, worker_name};
use crate::cli::Exit;
use crate::cli::progress::Progress;

#[derive(clap::Args)]
pub struct CampaignArgs {
    /// The campaign file (see kernels/campaigns/).
    file: PathBuf,
    #[command(flatten)]
    sink: SinkArgs,
    /// `auto`: CUDA when usable, else the CPU; `cpu`; or `cuda` (an error without CUDA).
    #[arg(long, default_value = "auto")]
    backend: BackendRequest,
    /// Run id the launches are recorded under (default: the campaign's `run`, else
    /// <name>-<UTC time>).
    #[arg(long)]
    run: Option<String>,
    /// Worker name for `gpu.preflight` (default: the key's name).
    #[arg(long)]
    worker: Option<String>,
    /// Run every cell in a child process, not only those that may fault (CUDA launches).
    #[arg(long)]
    isolate: bool,
    /// How long one cell may run in a child before it is killed and recorded as TIMEOUT.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    cell_timeout: Duration,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    device: u32,
    /// The kernel log followed for Xids during command cells: a file being appended to, a
    /// kmsg device, or `none` (default: /dev/kmsg when it can be read).
    #[arg(long, value_name = "PATH|none")]
    kernel_log: Option<PathBuf>,
    /// How long after a cell's end an Xid still counts as the cell's.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    xid_grace: Duration,
    /// Rerun only the cells that failed or faulted in this earlier run (matched by kernel and
    /// variant); the launches are recorded under the new run id.
    #[arg(long, value_name = "RUN")]
    only_failed_of: Option<String>,
    /// Exit with status 1 when any cell failed or faulted.
    #[arg(long)]
    strict: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// The kernel log to follow: the one named, none for `none`, else `/dev/kmsg` when this
/// process can read it and the campaign has command cells (the only ones Xids attach to).
fn kernel_log(named: Option<&std::path::Path>, has_commands: bool) -> Option<PathBuf> {
    const KMSG: &str = "/dev/kmsg";
    match named {
        Some(path) if path.as_os_str() == "none" => None,
        Some(path) => Some(path.to_owned()),
        None if has_commands && std::fs::File::open(KMSG).is_ok() => Some(PathBuf::from(KMSG)),
        None => None,
    }
}

fn default_run(name: &str) -> String {
    format!("{name}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))
}

/// The cells of `run` that did not pass, from the ledger or the server the sink records into.
async fn not_passed_in(sink: &SinkArgs, run: &str) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    assay::campaign_runs::check_run_id(run)?;
    if let Some(db) = &sink.db {
        let store = crate::cli::open::existing(db, sink.durability).await?;
        let launches = assay::campaign_runs::run_launches(&store, run).await;
        store.close().await;
        return Ok(launches?.not_passed());
    }
    let server = sink.server.as_deref().context("--only-failed-of needs --db or --server")?;
    let client = assay::client::Client::new(server)?;
    let cells = client.campaign_cells(run).await?;
    Ok(cells
        .cells
        .into_iter()
        .filter(|cell| cell["outcome"] != "passed")
        .filter_map(|cell| Some((cell["kernel"].as_str()?.to_owned(), cell["variant"].clone())))
        .collect())
}

pub async fn run(a: CampaignArgs) -> anyhow::Result<Exit> {
    let mut campaign = Campaign::load(&a.file)?;
    if let Some(base) = &a.only_failed_of {
        let wanted = not_passed_in(&a.sink, base).await?;
        let kept = campaign.keep_only(&wanted);
        eprintln!("rerunning {kept} cell(s) of {} that did not pass in {base}", wanted.len());
        if kept == 0 {
            outln!("nothing to rerun: no cell of {} failed or faulted in {base}", a.file.display());
            return Ok(Exit::Ok);
        }
    }
    // Command cells' output and declared outputs are kept in the ledger's evidence store.
    let opened = open_sink_keeping(&a.sink, &[Role::Runner], true).await?;
    let worker = worker_name(a.worker.as_deref(), &opened)?;
    let run = a.run.clone().or_else(|| campaign.run.clone()).unwrap_or_else(|| default_run(&campaign.name));
    let program = std::env::current_exe().context("locating the assay binary for cell children")?;
    let options = CampaignOptions {
        run,
        worker,
        backend: a.backend,
        isolation: if a.isolate { Isolation::Always } else { Isolation::MayFault },
        child: Some(ChildCommand {
            program,
            args: vec![
                "run".into(),
                "cell".into(),
                "--json".into(),
                "--device".into(),
                a.device.to_string().into(),
            ],
        }),
        cell_timeout: a.cell_timeout,
        device: a.device,
        scratch: std::env::temp_dir(),
        kernel_log: kernel_log(a.kernel_log.as_deref(), !campaign.commands.is_empty()),
        xid_grace: a.xid_grace,
    };
    let interrupts = count_interrupts()?;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (interrupts, stop) = (interrupts.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                if interrupts.load(Ordering::Relaxed) > 0 {
                    if !stop.swap(true, Ordering::Relaxed) {
                        eprintln!(
                            "interrupted: stopping (a running command cell gets SIGINT and is not recorded; a built-in cell finishes first)"
                        );
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let total = campaign.cell_count() as u64;
    let name = campaign.name.clone();
    let Opened { sink, closer, .. } = opened;
    let result = tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        let preflight = Preflight::gather();
        let bar = Progress::named(name, "ran", "cells");
        bar.set_length(total);
        let mut problems = 0u64;
        let result = run_campaign(&campaign, &options, &preflight, sink.as_mut(), &stop, &mut |passed| {
            if !passed {
                problems += 1;
                bar.set_message(format!("{problems} not passed"));
            }
            bar.inc();
        });
        bar.finish();
        result
    })
    .await
    .context("the campaign task failed")?;
    watcher.abort();
    closer.close().await;
    let report = result?;
    if let Some(note) = &report.xid_note {
        eprintln!("{note}");
    }
    if a.json {
        outln!(
            "{}",
            serde_json::json!({
                "run": report.run,
                "backend": report.backend,
                "cuda_unavailable": report.cuda_unavailable,
                "interrupted": report.interrupted,
                "totals": report.summary.totals,
                "kernels": report.summary.matrix.iter().map(|((kernel, backend), counts)| {
                    serde_json::json!({"kernel": kernel, "backend": backend, "passed": counts.passed, "failed": counts.failed, "faulted": counts.faulted})
                }).collect::<Vec<_>>(),
                "problems": report.summary.problems,
                "fallbacks": report.summary.fallbacks,
                "routes": report.summary.routes.comparisons(),
                "not_runnable": report.summary.not_runnable,
                "xids": report.xids,
            })
        );
    } else {
        if let Some(reason) = &report.cuda_unavailable {
            outln!("CUDA unavailable ({reason}); ran on the CPU");
        }
        outln!(
            "run {} ({} backend){}",
            report.run,
            report.backend,
            if report.interrupted { ", interrupted" } else { "" }
        );
        out!("{}", report.summary.render());
    }
    let t = report.summary.totals;
    if report.interrupted || (a.strict && t.failed + t.faulted > 0) {
        return Ok(Exit::VerifyFailed);
    }
    Ok(Exit::Ok)
}

//! `bench commands`: the cost of a `[[command]]` cell.
//!
//! (a) Overhead per cell: a campaign of `true` cells recorded into a fresh local ledger
//!     through the same path as `assay run campaign --db` (process group, output capture,
//!     classification, signing, append), against its limit measured in the same run:
//!     starting and waiting for `true` alone, one after another.
//! (b) The runner's share of a CPU-bound cell: a command calibrated to about a second, run
//!     directly and as a cell, alternating; the runner's own CPU time while the cell runs (this
//!     process: capture threads, the waiter, the sink) as a share of the cell's wall time, and
//!     the ratio of the medians of the wall times.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use assay::sink::LedgerSink;
use assay::store::Durability;
use assay_kernels::campaign::{Campaign, run_campaign};
use assay_kernels::cuda::CudaProbe;
use assay_kernels::preflight::Preflight;

use super::median;
use super::runner::{cpu_seconds, direct, fixture, options, spin_command};

#[derive(clap::Args)]
pub struct CommandsArgs {
    /// `true` cells in the overhead campaign.
    #[arg(long, default_value_t = 2000)]
    cells: u64,
    /// Runs of the CPU-bound command each way.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Target wall time of one run of the CPU-bound command, seconds.
    #[arg(long, default_value_t = 1.0)]
    spin_seconds: f64,
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    durability: Durability,
}

fn no_gpu() -> Preflight {
    Preflight {
        cuda: CudaProbe::Unavailable { reason: "not used by the benchmark".into() },
        nvml: Err("not used".into()),
    }
}

/// A campaign of `cells` cells of `argv` (axis `i` makes them distinct cells).
fn campaign(argv: &[String], cells: u64) -> anyhow::Result<Campaign> {
    let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    // `i` lists the cells: one per value.
    let values: Vec<String> = (0..cells).map(|i| i.to_string()).collect();
    let text = format!(
        "name = \"cmd\"\n[[command]]\nname = \"cmd\"\ncommand = [{}]\ni = [{}]\n",
        argv.join(", "),
        values.join(", ")
    );
    Ok(Campaign::parse(&text)?)
}

pub async fn run(a: CommandsArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!("bench commands: {} cells of `true`, durability {:?}", a.cells, a.durability);

    // Limit: `true` started and waited for, one after another.
    let t = Instant::now();
    for _ in 0..a.cells {
        let status = Command::new("true").status()?;
        anyhow::ensure!(status.success(), "true failed");
    }
    let spawn_rate = a.cells as f64 / t.elapsed().as_secs_f64();
    println!("limit  spawning `true` alone:            {spawn_rate:>8.0} processes/s");

    let fx = fixture(dir.path(), "commands", a.durability).await?;
    let handle = tokio::runtime::Handle::current();
    let sink = LedgerSink::new(fx.ledger.clone(), fx.runner.clone(), &handle);
    let trues = campaign(&["true".to_owned()], a.cells)?;
    let (rate, elapsed) = tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        let t = Instant::now();
        let report = run_campaign(
            &trues,
            &options("trues"),
            &no_gpu(),
            &mut sink,
            &AtomicBool::new(false),
            &mut |_| {},
        )?;
        let elapsed = t.elapsed();
        anyhow::ensure!(
            report.summary.totals.passed == trues.commands.len() as u64,
            "every `true` cell passes"
        );
        anyhow::Ok((trues.commands.len() as f64 / elapsed.as_secs_f64(), elapsed))
    })
    .await??;
    println!(
        "runner `true` cells → ledger (committed): {rate:>8.0} cells/s ({:.2} s); ratio to spawning alone {:.2}",
        elapsed.as_secs_f64(),
        rate / spawn_rate
    );
    println!("target ≥ 200 cells/s:                    {}", if rate >= 200.0 { "met" } else { "NOT met" });

    // (b) The runner's share of a CPU-bound cell.
    let probe = 100_000_000u64;
    let mut fastest = f64::INFINITY;
    for _ in 0..3 {
        fastest = fastest.min(direct(&spin_command(probe, 1)?)?.as_secs_f64());
    }
    let iterations = ((probe as f64) * a.spin_seconds / fastest.max(1e-3)) as u64;
    let argv: Vec<String> =
        spin_command(iterations, 1)?.into_iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let spin_cell = campaign(&argv, 1)?;
    let (mut plain, mut as_cell, mut shares) = (Vec::new(), Vec::new(), Vec::new());
    for repeat in 0..a.repeats {
        let run_direct = |plain: &mut Vec<f64>| -> anyhow::Result<()> {
            plain.push(direct(&spin_command(iterations, 1)?)?.as_secs_f64());
            Ok(())
        };
        if repeat % 2 == 0 {
            run_direct(&mut plain)?;
        }
        let sink = LedgerSink::new(fx.ledger.clone(), fx.runner.clone(), &handle);
        let cell = spin_cell.clone();
        let run = format!("spin-{repeat}");
        let (wall, cpu) = tokio::task::spawn_blocking(move || {
            let mut sink = sink;
            let cpu_before = cpu_seconds();
            let t = Instant::now();
            run_campaign(&cell, &options(&run), &no_gpu(), &mut sink, &AtomicBool::new(false), &mut |_| {})?;
            anyhow::Ok((t.elapsed().as_secs_f64(), cpu_seconds() - cpu_before))
        })
        .await??;
        as_cell.push(wall);
        shares.push(cpu / wall);
        if repeat % 2 == 1 {
            run_direct(&mut plain)?;
        }
    }
    let (cpu_total, wall_total): (f64, f64) =
        shares.iter().zip(&as_cell).fold((0.0, 0.0), |(c, w), (share, wall)| (c + share * wall, w + wall));
    let (plain_median, cell_median) = (median(plain), median(as_cell));
    println!(
        "cpu-bound command ~{:.1} s: direct median {plain_median:.3} s, as a cell {cell_median:.3} s (ratio {:.4})",
        a.spin_seconds,
        cell_median / plain_median
    );
    // /proc counts CPU time in clock ticks (10 ms): summed over every run, not per run.
    let share = cpu_total / wall_total;
    println!(
        "runner CPU while the cells ran: {:.0} ms in {wall_total:.2} s of cells = {:.2}% (ticks of {} ms); target < 2%: {}",
        cpu_total * 1000.0,
        share * 100.0,
        1000 / assay_kernels::supervise::clock_ticks_per_second().max(1),
        if share < 0.02 { "met" } else { "NOT met" }
    );
    fx.ledger.shutdown().await;
    let report = assay::verify::verify(&fx.store, None, |_, _| {}).await?;
    anyhow::ensure!(report.ok, "the benchmark ledger does not verify: {:?}", report.reason);
    println!("check  verify: ok, {} records", report.records);
    Ok(())
}

//! `bench runner`: the kernel runner's two costs.
//!
//! (a) Runner → ledger throughput: a campaign of tiny CPU cells recorded into a fresh local
//!     ledger through the same path as `assay run campaign --db` (campaign runner, signing
//!     sink, batched appends, verify → sequence → commit). Its limits, measured in the same
//!     run: the cells without recording, signing the same events on every core, and
//!     appending them pre-signed (one producer, requests of 1000, four in flight); and the
//!     CPU time the real path used, since on a shared machine the rate follows the cores
//!     left to it.
//! (b) Supervision overhead: the same CPU-bound command run directly and under
//!     `run exec`'s supervisor (process-tree sampling from /proc, heartbeats into a ledger),
//!     interleaved; the ratio of the command's wall times. Measured with the default sampling
//!     (every second) and an aggressive one (every 50 ms).

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::time::{Duration, Instant};

use assay::keyfile;
use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
use assay::sink::LedgerSink;
use assay::store::{Durability, Store};
use assay_events::keys::SignerKey;
use assay_kernels::BackendRequest;
use assay_kernels::campaign::{Campaign, CampaignOptions, Isolation, run_campaign};
use assay_kernels::cuda::CudaProbe;
use assay_kernels::preflight::Preflight;
use assay_kernels::sink::{EventSink, MemorySink, SinkError};
use assay_kernels::supervise::{ExecOptions, exec};
use rayon::prelude::*;

use super::median;

#[derive(clap::Args)]
pub struct RunnerArgs {
    /// Cells in the throughput campaign.
    #[arg(long, default_value_t = 50_000)]
    cells: u64,
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    durability: Durability,
    /// Target wall time of one run of the CPU-bound command, seconds.
    #[arg(long, default_value_t = 2.0)]
    spin_seconds: f64,
    /// Runs of the CPU-bound command per configuration (each direct and supervised).
    #[arg(long, default_value_t = 7)]
    repeats: usize,
    /// Skip the supervision part.
    #[arg(long)]
    no_supervision: bool,
    /// Measure only the real path (campaign → ledger), not its limits: for profiling it.
    #[arg(long)]
    no_limits: bool,
}

/// `bench spin`: the CPU-bound command (SplitMix64 steps on every thread).
#[derive(clap::Args)]
pub struct SpinArgs {
    /// Steps per thread.
    #[arg(long)]
    iterations: u64,
    /// Threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn spin(a: SpinArgs) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        for t in 0..a.threads.max(1) {
            scope.spawn(move || {
                let mut rng = assay_kernels::cpu::SplitMix64::new(t as u64);
                let mut acc = 0u64;
                for _ in 0..a.iterations {
                    acc ^= rng.next_u64();
                }
                black_box(acc);
            });
        }
    });
    Ok(())
}

pub(super) struct Fixture {
    pub(super) ledger: Ledger,
    pub(super) store: Store,
    pub(super) runner: SignerKey,
}

pub(super) async fn fixture(
    dir: &std::path::Path,
    name: &str,
    durability: Durability,
) -> anyhow::Result<Fixture> {
    let store = Store::open(&dir.join(format!("{name}.db")).to_string_lossy(), durability, true).await?;
    let ledger_key = keyfile::generate("ledger")?;
    let admin = keyfile::generate("admin")?;
    let runner = keyfile::generate("runner")?;
    let ledger = Ledger::init(
        store.clone(),
        "bench.assay.dev/runner",
        ledger_key,
        &[admin.verifier()],
        LedgerOptions::default(),
    )
    .await?;
    let data = serde_json::json!({"vkey": runner.verifier().to_text(), "roles": ["runner"]});
    let env =
        build_envelope(&admin, "key.registered", Some("key/runner"), data, None, assay::clock::now_ns());
    ledger.append(vec![Incoming::Decoded(env)]).await?;
    Ok(Fixture { ledger, store, runner })
}

/// Drops events (the compute limit).
struct NullSink(u64);

impl EventSink for NullSink {
    fn emit(&mut self, _: &str, _: &str, data: serde_json::Value) -> Result<(), SinkError> {
        black_box(data);
        self.0 += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn tiny_campaign(cells: u64) -> anyhow::Result<Campaign> {
    let per_seed = 16u64;
    let seeds = cells.div_ceil(per_seed).max(1);
    let text = format!(
        "name = \"tiny\"\ntolerance = 1e-6\nseed = {{ first = 0, count = {seeds} }}\n[[kernel]]\nname = \"saxpy\"\nn = [{}]\nalpha = 1.5\n",
        (1..=per_seed).map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
    );
    let mut campaign = Campaign::parse(&text)?;
    campaign.cells.truncate(cells as usize);
    Ok(campaign)
}

pub(super) fn options(run: &str) -> CampaignOptions {
    CampaignOptions {
        run: run.into(),
        worker: "bench".into(),
        backend: BackendRequest::Cpu,
        isolation: Isolation::MayFault,
        child: None,
        cell_timeout: Duration::from_secs(60),
        device: 0,
        scratch: std::env::temp_dir(),
        kernel_log: None,
        xid_grace: Duration::from_millis(500),
    }
}

pub async fn run(a: RunnerArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("bench runner: {} tiny cells, durability {:?}, {cores} cores", a.cells, a.durability);
    let dir = tempfile::tempdir()?;
    let campaign = tiny_campaign(a.cells)?;
    let no_gpu = Preflight {
        cuda: CudaProbe::Unavailable { reason: "not used by the benchmark".into() },
        nvml: Err("not used".into()),
    };

    let append_rate =
        if a.no_limits { None } else { Some(limits(&campaign, &no_gpu, dir.path(), a.durability).await?) };

    // The real path.
    let fx = fixture(dir.path(), "campaign", a.durability).await?;
    let handle = tokio::runtime::Handle::current();
    let sink = LedgerSink::new(fx.ledger.clone(), fx.runner.clone(), &handle);
    let cpu_before = cpu_seconds();
    let (rate, elapsed, recorded) = {
        let campaign = campaign.clone();
        let preflight = no_gpu.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = sink;
            let t = Instant::now();
            let report = run_campaign(
                &campaign,
                &options("tiny-1"),
                &preflight,
                &mut sink,
                &AtomicBool::new(false),
                &mut |_| {},
            )?;
            let elapsed = t.elapsed();
            anyhow::ensure!(
                report.summary.totals.passed == campaign.cells.len() as u64,
                "every tiny cell passes"
            );
            anyhow::Ok((sink.recorded() as f64 / elapsed.as_secs_f64(), elapsed, sink.recorded()))
        })
        .await??
    };
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "runner campaign → ledger (committed):    {rate:>10.0} events/s ({recorded} events incl. gpu.preflight, {:.2} s; {:.2} CPU-s used, {:.0} events per CPU-s)",
        elapsed.as_secs_f64(),
        cpu,
        recorded as f64 / cpu.max(1e-9)
    );
    if let Some(append_rate) = append_rate {
        println!("ratio  runner / pre-signed append:       {:>10.2}", rate / append_rate);
    }
    println!("target ≥ 10000 launch events/s:          {}", if rate >= 10_000.0 { "met" } else { "NOT met" });
    fx.ledger.shutdown().await;
    let report = assay::verify::verify(&fx.store, None, |_, _| {}).await?;
    anyhow::ensure!(report.ok, "the benchmark ledger does not verify: {:?}", report.reason);
    println!("check  verify: ok, {} records", report.records);

    if a.no_supervision {
        return Ok(());
    }
    supervision(&a, dir.path(), cores).await
}

/// The limits of the real path, measured in the same run: the cells with events dropped,
/// signing the same events on every core, and appending them pre-signed. Returns the
/// pre-signed append rate.
async fn limits(
    campaign: &Campaign,
    no_gpu: &Preflight,
    dir: &std::path::Path,
    durability: Durability,
) -> anyhow::Result<f64> {
    // The compute limit: the same cells, events dropped.
    let (limit_rate, compute) = {
        let campaign = campaign.clone();
        let preflight = no_gpu.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = NullSink(0);
            let t = Instant::now();
            run_campaign(
                &campaign,
                &options("limit"),
                &preflight,
                &mut sink,
                &AtomicBool::new(false),
                &mut |_| {},
            )?;
            anyhow::Ok((sink.0 as f64 / t.elapsed().as_secs_f64(), t.elapsed()))
        })
        .await??
    };
    println!(
        "limit  cells computed, not recorded:      {limit_rate:>10.0} events/s ({:.2} s)",
        compute.as_secs_f64()
    );

    // Limit: signing the same events (all cores), then appending them pre-signed.
    let captured = {
        let campaign = campaign.clone();
        let preflight = no_gpu.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = MemorySink::new();
            run_campaign(
                &campaign,
                &options("tiny-0"),
                &preflight,
                &mut sink,
                &AtomicBool::new(false),
                &mut |_| {},
            )?;
            anyhow::Ok(sink.events)
        })
        .await??
    };
    let signer = fixture(dir, "limit", durability).await?;
    let (sign_rate, envelopes) = {
        let key = signer.runner.clone();
        tokio::task::spawn_blocking(move || {
            let t0 = assay::clock::now_ns();
            let t = Instant::now();
            let envelopes: Vec<Incoming> = captured
                .into_par_iter()
                .enumerate()
                .map(|(i, e)| {
                    Incoming::Decoded(build_envelope(
                        &key,
                        &e.ty,
                        Some(&e.subject),
                        e.data,
                        None,
                        t0 + i as i64,
                    ))
                })
                .collect();
            (envelopes.len() as f64 / t.elapsed().as_secs_f64(), envelopes)
        })
        .await?
    };
    println!("limit  signing the events (all cores):   {sign_rate:>10.0} events/s");
    let n = envelopes.len();
    let t = Instant::now();
    let mut in_flight = std::collections::VecDeque::new();
    let mut envelopes = envelopes.into_iter();
    loop {
        let chunk: Vec<Incoming> = envelopes.by_ref().take(1000).collect();
        if chunk.is_empty() {
            break;
        }
        let prepared = signer.ledger.prepare(chunk).await?;
        in_flight.push_back(signer.ledger.submit(prepared).await?);
        while in_flight.len() > 4 {
            if let Some(rx) = in_flight.pop_front() {
                rx.await??;
            }
        }
    }
    for rx in in_flight {
        rx.await??;
    }
    let append_rate = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "limit  appending them pre-signed:        {append_rate:>10.0} events/s (one producer, requests of 1000)"
    );
    signer.ledger.shutdown().await;

    Ok(append_rate)
}

/// CPU time this process has used, seconds (user + system, all threads).
pub(super) fn cpu_seconds() -> f64 {
    let ticks = assay_kernels::supervise::clock_ticks_per_second() as f64;
    assay_kernels::supervise::read_stat(std::process::id())
        .map(|s| (s.utime + s.stime) as f64 / ticks)
        .unwrap_or(f64::NAN)
}

pub(super) fn spin_command(iterations: u64, threads: usize) -> anyhow::Result<Vec<std::ffi::OsString>> {
    let exe = std::env::current_exe()?;
    Ok(vec![
        exe.into_os_string(),
        "bench".into(),
        "spin".into(),
        "--iterations".into(),
        iterations.to_string().into(),
        "--threads".into(),
        threads.to_string().into(),
    ])
}

pub(super) fn direct(command: &[std::ffi::OsString]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let status = Command::new(&command[0]).args(&command[1..]).status()?;
    anyhow::ensure!(status.success(), "the CPU-bound command failed: {status}");
    Ok(t.elapsed())
}

async fn supervision(a: &RunnerArgs, dir: &std::path::Path, cores: usize) -> anyhow::Result<()> {
    // Calibrate: steps for about `spin_seconds` on one thread (the fastest of three probes).
    let probe = 300_000_000u64;
    let mut fastest = f64::INFINITY;
    for _ in 0..3 {
        fastest = fastest.min(direct(&spin_command(probe, 1)?)?.as_secs_f64());
    }
    let iterations = ((probe as f64) * a.spin_seconds / fastest.max(1e-3)) as u64;
    println!(
        "supervision: CPU-bound command of {iterations} steps per thread (~{:.1} s), {} runs each way, alternating which goes first",
        a.spin_seconds, a.repeats
    );
    let fx = fixture(dir, "supervision", a.durability).await?;
    let handle = tokio::runtime::Handle::current();
    let configs = [
        ("default sampling (every 1 s, heartbeat 10 s)", Duration::from_secs(1), Duration::from_secs(10)),
        (
            "aggressive sampling (every 50 ms, heartbeat 100 ms)",
            Duration::from_millis(50),
            Duration::from_millis(100),
        ),
    ];
    let mut run_no = 0u32;
    for threads in [1, cores] {
        let command = spin_command(iterations, threads)?;
        for (label, sample_every, heartbeat_every) in configs {
            let mut plain = Vec::new();
            let mut supervised = Vec::new();
            let mut supervisor_cpu = Vec::new();
            for repeat in 0..a.repeats {
                if repeat % 2 == 0 {
                    plain.push(direct(&command)?.as_secs_f64());
                }
                run_no += 1;
                let options = ExecOptions {
                    run: format!("spin-{run_no}"),
                    command: command.clone(),
                    worker: None,
                    gpu: None,
                    evidence: None,
                    metrics: None,
                    quiet_window: Duration::from_millis(200),
                    cpu_quiet_pct: 5.0,
                    gpu_quiet_pct: 5.0,
                    sample_every,
                    heartbeat_every,
                    quiesce_timeout: Some(Duration::from_secs(60)),
                };
                let sink = LedgerSink::new(fx.ledger.clone(), fx.runner.clone(), &handle);
                let cpu_before = cpu_seconds();
                let child = tokio::task::spawn_blocking(move || {
                    let mut sink = sink;
                    let report = exec(&options, &mut sink, None, &AtomicU32::new(0))?;
                    sink.flush()?;
                    anyhow::ensure!(report.exit_code == Some(0), "the supervised command failed");
                    anyhow::Ok(report.duration)
                })
                .await??;
                // The supervisor's own CPU (sampling, heartbeats, signing, appending) while
                // the command ran and quiesced, against the command's run time.
                supervisor_cpu.push((cpu_seconds() - cpu_before) / child.as_secs_f64());
                supervised.push(child.as_secs_f64());
                if repeat % 2 == 1 {
                    plain.push(direct(&command)?.as_secs_f64());
                }
            }
            let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
            let (pm, sm) = (min(&plain), min(&supervised));
            let (pmed, smed) = (median(plain.clone()), median(supervised.clone()));
            println!(
                "{threads} thread(s), {label}:\n    direct min {pm:.3} s / median {pmed:.3} s; supervised min {sm:.3} s / median {smed:.3} s\n    ratio of minima {:.4} ({:+.2}%), of medians {:.4} ({:+.2}%); supervisor CPU {:.2}% of the command's run time",
                sm / pm,
                (sm / pm - 1.0) * 100.0,
                smed / pmed,
                (smed / pmed - 1.0) * 100.0,
                median(supervisor_cpu) * 100.0
            );
        }
    }
    fx.ledger.shutdown().await;
    let report = assay::verify::verify(&fx.store, None, |_, _| {}).await?;
    anyhow::ensure!(report.ok, "the supervision ledger does not verify: {:?}", report.reason);
    println!("check  verify: ok, {} records", report.records);
    Ok(())
}

//! `bench append`: `assay append --envelopes FILE` of pre-signed envelopes, as a user runs it
//! (the release binary, a fresh SQLite ledger each run, durability full), against the peer
//! (`tools/peers/eventsourcing_sqlite.py`, the vendored peer benchmark: the Python `eventsourcing` library saving the
//! same number of events to SQLite, no signatures, no tree), alternated, each under
//! `/usr/bin/time -v`: wall time, CPU share and peak RSS per run, and the median of the
//! per-pair wall-time ratios. `--peer false` measures Assay alone (the memory curve).
//!
//! With the peer, each round also times the floor under any Assay append on this machine:
//! Ed25519 batch verification of as many signatures on all cores, nothing else (measured on up
//! to `FLOOR_SAMPLE_MAX` envelopes and scaled), printed as a ratio to that round's peer run. An
//! Assay/peer ratio below that floor cannot be reached while every signature is checked.
//!
//! The envelopes are generated first and streamed to a file, a bounded chunk at a time, so
//! inputs of millions of envelopes are made in bounded memory too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use assay::store::Durability;
use assay_events::keys::SignerKey;

use super::{fixture, median};

#[derive(clap::Args)]
pub struct AppendArgs {
    /// Envelopes to append.
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// Alternated runs of each.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Run the peer beside Assay (false: Assay alone).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    peer: bool,
    /// The peer script.
    #[arg(long, default_value = "tools/peers/eventsourcing_sqlite.py")]
    peer_script: PathBuf,
    /// The `assay` binary (default: beside this one).
    #[arg(long)]
    assay: Option<PathBuf>,
    /// Folder for the envelopes and ledgers (default: a temporary folder, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Envelopes generated and written per step.
const GENERATE_CHUNK: u64 = 20_000;
/// Envelopes held in memory to time the signature floor on (bounded: the rate is per signature).
const FLOOR_SAMPLE_MAX: u64 = 50_000;

/// What `/usr/bin/time -v` reports of one run.
#[derive(Debug, Clone, Copy)]
struct Timed {
    wall_s: f64,
    cpu_s: f64,
    cpu_percent: f64,
    rss_mib: f64,
}

fn field<'a>(report: &'a str, name: &str) -> anyhow::Result<&'a str> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim_start_matches(':').trim()))
        .with_context(|| format!("/usr/bin/time printed no {name:?}"))
}

fn timed(cmd: &mut Command) -> anyhow::Result<Timed> {
    let out = cmd.output().context("running /usr/bin/time")?;
    let report = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "{cmd:?} failed: {report}");
    let wall = field(&report, "Elapsed (wall clock) time (h:mm:ss or m:ss)")?;
    let wall_s = wall
        .split(':')
        .try_fold(0.0, |acc, part| Ok::<f64, anyhow::Error>(acc * 60.0 + part.parse::<f64>()?))?;
    let user: f64 = field(&report, "User time (seconds)")?.parse()?;
    let system: f64 = field(&report, "System time (seconds)")?.parse()?;
    let cpu_percent: f64 = field(&report, "Percent of CPU this job got")?.trim_end_matches('%').parse()?;
    let rss_kib: f64 = field(&report, "Maximum resident set size (kbytes)")?.parse()?;
    Ok(Timed { wall_s, cpu_s: user + system, cpu_percent, rss_mib: rss_kib / 1024.0 })
}

/// The `assay` binary: `given`, else the one beside this binary (a release build measures the
/// release `assay`).
pub(super) fn assay_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let assay = match given {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("assay"),
    };
    anyhow::ensure!(
        assay.exists(),
        "{} not found: build it (cargo build --release) or give --assay",
        assay.display()
    );
    Ok(assay)
}

/// A fresh ledger at `db` with `worker` registered (a new key when None); returns the
/// ledger key's file (written into `keys`) and the worker.
pub(super) async fn ledger(
    db: &Path,
    keys: &Path,
    worker: Option<SignerKey>,
) -> anyhow::Result<(PathBuf, SignerKey)> {
    let worker = match worker {
        Some(w) => w,
        None => assay::keyfile::generate("worker")?,
    };
    let fx = fixture::ledger_registering(&db.to_string_lossy(), Durability::Full, worker).await?;
    fx.ledger.shutdown().await;
    let (key, _) = assay::keyfile::write_pair(keys, &fx.ledger_key)?;
    Ok((key, fx.worker))
}

pub async fn run(a: AppendArgs) -> anyhow::Result<()> {
    let assay = assay_binary(a.assay.clone())?;
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    println!(
        "bench append: {} pre-signed envelopes, {} run(s) each{}, durability full; {}",
        a.events,
        a.repeats,
        if a.peer { " alternated with the peer" } else { "" },
        assay.display()
    );

    // The worker key must be the one registered in every run's ledger: the first ledger's
    // worker signs the envelopes, and every later ledger registers that same key.
    let (ledger_key, worker) = ledger(&dir.join("run-0.db"), &dir.join("keys-0"), None).await?;
    let envelopes = dir.join("envelopes.jsonl");
    let t = std::time::Instant::now();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&envelopes)?);
        let mut first = 0;
        while first < a.events {
            let n = GENERATE_CHUNK.min(a.events - first);
            for env in fixture::envelopes_from(&worker, first, n) {
                out.write_all(&env.to_json())?;
                out.write_all(b"\n")?;
            }
            first += n;
        }
        out.flush()?;
    }
    let bytes = std::fs::metadata(&envelopes)?.len();
    println!(
        "generated {} envelopes ({:.0} MiB) in {:.1} s",
        a.events,
        bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    let sample =
        if a.peer { fixture::envelopes_from(&worker, 0, a.events.min(FLOOR_SAMPLE_MAX)) } else { Vec::new() };
    let mut ours = Vec::new();
    let mut peers = Vec::new();
    let mut ratios = Vec::new();
    let mut floors = Vec::new();
    for i in 0..a.repeats {
        let db = dir.join(format!("run-{i}.db"));
        let key = if i == 0 {
            ledger_key.clone()
        } else {
            ledger(&db, &dir.join(format!("keys-{i}")), Some(worker.clone())).await?.0
        };
        let mut cmd = Command::new("/usr/bin/time");
        cmd.arg("-v").arg(&assay).args(["append", "--db"]).arg(&db).arg("--ledger-key").arg(&key);
        cmd.arg("--envelopes").arg(&envelopes).stdout(std::process::Stdio::null());
        let us = timed(&mut cmd)?;
        println!(
            "assay  run {i}: {:>7.2} s wall  {:>6.2} CPU-s  {:>4.0}% CPU  {:>6.1} MiB peak RSS  {:>8.0} events/s",
            us.wall_s,
            us.cpu_s,
            us.cpu_percent,
            us.rss_mib,
            a.events as f64 / us.wall_s
        );
        std::fs::remove_file(&db).ok();
        ours.push(us);
        if a.peer {
            let mut cmd = Command::new("/usr/bin/time");
            cmd.arg("-v").arg("python3").arg(&a.peer_script).arg(a.events.to_string());
            cmd.stdout(std::process::Stdio::null());
            let them = timed(&mut cmd)?;
            println!(
                "peer   run {i}: {:>7.2} s wall  {:>6.2} CPU-s  {:>4.0}% CPU  {:>6.1} MiB peak RSS",
                them.wall_s, them.cpu_s, them.cpu_percent, them.rss_mib
            );
            ratios.push(us.wall_s / them.wall_s);
            // The floor in the same round: every signature verified on all cores, nothing else.
            let floor_s = a.events as f64 / super::ingest::verify_limit(&sample, &worker.verifier());
            println!(
                "floor  run {i}: {floor_s:>7.2} s wall  (Ed25519 batch verification of {} signatures on all cores) = {:.2} of the peer's",
                a.events,
                floor_s / them.wall_s
            );
            floors.push(floor_s / them.wall_s);
            peers.push(them);
        }
    }
    let m = |v: &[Timed], f: fn(&Timed) -> f64| median(v.iter().map(f).collect());
    println!(
        "assay median: {:.2} s wall, {:.2} CPU-s, {:.0}% CPU, {:.1} MiB peak RSS",
        m(&ours, |t| t.wall_s),
        m(&ours, |t| t.cpu_s),
        m(&ours, |t| t.cpu_percent),
        m(&ours, |t| t.rss_mib)
    );
    if a.peer {
        println!(
            "peer  median: {:.2} s wall, {:.2} CPU-s, {:.0}% CPU, {:.1} MiB peak RSS",
            m(&peers, |t| t.wall_s),
            m(&peers, |t| t.cpu_s),
            m(&peers, |t| t.cpu_percent),
            m(&peers, |t| t.rss_mib)
        );
        println!("assay / peer wall time: {:.2} (median of {} alternated pairs)", median(ratios), a.repeats);
        println!(
            "floor / peer wall time: {:.2} (signature checks alone; no append with every signature checked goes below it here)",
            median(floors)
        );
    }
    Ok(())
}

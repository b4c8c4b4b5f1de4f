//! Benchmarks. Each measures its limits and the real path in one run, so ratios hold on a
//! shared, noisy machine.

mod append;
mod blobs;
mod blobs_http;
mod commands;
mod export;
mod fixture;
mod growth;
mod ingest;
mod rebuild;
mod report;
mod runner;
mod serve;
mod witness;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// `assay append --envelopes` of pre-signed envelopes (wall time, CPU share, peak RSS)
    /// against the Python `eventsourcing` peer, alternated.
    Append(append::AppendArgs),
    /// The evidence store: a folder of many small and a few large files stored into the
    /// folder beside a SQLite ledger and uploaded to `assay serve`, against a plain copy with
    /// an fsync per file; the server's peak RSS.
    Blobs(blobs::BlobsArgs),
    /// Ingest: Ed25519 verification and raw SQLite inserts (the limits) against the real
    /// verify → sequence → commit path.
    Ingest(ingest::IngestArgs),
    /// Parquet export: the events table and the typed tables against a raw read of the same
    /// records.
    Export(export::ExportArgs),
    /// Rebuild of every projection, and full verification, of a large ledger.
    Rebuild(rebuild::RebuildArgs),
    /// One ledger grown to each size asked for: ingest rate, proof latency (p50, p99) and the
    /// tree-node rows a proof reads, and rebuild rate, at each size.
    Growth(growth::GrowthArgs),
    /// The audit of the demo lab and a report of every artifact, as ratios of a plain replay.
    Report(report::ReportArgs),
    /// The kernel runner: campaign → ledger throughput of tiny cells, and the overhead of
    /// `run exec` supervision on a CPU-bound command.
    Runner(runner::RunnerArgs),
    /// Command cells: cells of `true` recorded per second against spawning `true` alone,
    /// and the runner's share of a 1-second CPU-bound cell.
    Commands(commands::CommandsArgs),
    /// The HTTP service: writers posting batches of pre-signed envelopes while readers fetch
    /// projections, on loopback.
    Serve(serve::ServeArgs),
    /// Ingest over HTTP with two C2SP witnesses cosigning each checkpoint (quorum 2) against
    /// none, and the lag from an acknowledgement to its checkpoint's quorum of cosignatures.
    Witness(witness::WitnessArgs),
    /// The CPU-bound command `bench runner` supervises.
    #[command(hide = true)]
    Spin(runner::SpinArgs),
}

/// The median of `values` (the mean of the middle two for an even count; NaN for none): the
/// one summary every benchmark here prints of its repeated runs.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// CPU seconds this process has used (user + system, from /proc/self/stat; 0 elsewhere). On a
/// shared machine the CPU time per record holds when the wall-clock rate does not.
fn cpu_secs() -> f64 {
    proc_cpu_secs("self", Cpu::Own)
}

/// Whose CPU time [`proc_cpu_secs`] reads.
#[derive(Clone, Copy)]
enum Cpu {
    /// The process's own (utime + stime).
    Own,
    /// That of its children it has waited for (cutime + cstime).
    WaitedChildren,
}

/// CPU seconds of the process `pid` (a number or `self`) from /proc; 0 where it cannot be read.
fn proc_cpu_secs(pid: &str, whose: Cpu) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let Some((_, rest)) = stat.rsplit_once(") ") else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    let first = match whose {
        Cpu::Own => 11,
        Cpu::WaitedChildren => 13,
    };
    // Clock ticks are 100 per second on Linux.
    (ticks(first) + ticks(first + 1)) / 100.0
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Append(a) => append::run(a).await,
        BenchCommand::Blobs(a) => blobs::run(a).await,
        BenchCommand::Ingest(a) => ingest::run(a).await,
        BenchCommand::Export(a) => export::run(a).await,
        BenchCommand::Rebuild(a) => rebuild::run(a).await,
        BenchCommand::Growth(a) => growth::run(a).await,
        BenchCommand::Report(a) => report::run(a).await,
        BenchCommand::Runner(a) => runner::run(a).await,
        BenchCommand::Commands(a) => commands::run(a).await,
        BenchCommand::Serve(a) => serve::run(a).await,
        BenchCommand::Witness(a) => witness::run(a).await,
        BenchCommand::Spin(a) => runner::spin(a),
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}

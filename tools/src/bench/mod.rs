//! Benchmarks. Each measures its limits and the real path in one run, so ratios hold on a
//! shared, noisy machine.

mod fixture;
mod ingest;
mod rebuild;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Ingest: Ed25519 verification and raw SQLite inserts (the limits) against the real
    /// verify → sequence → commit path.
    Ingest(ingest::IngestArgs),
    /// Rebuild of every projection, and full verification, of a large ledger.
    Rebuild(rebuild::RebuildArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ingest(a) => ingest::run(a).await,
        BenchCommand::Rebuild(a) => rebuild::run(a).await,
    }
}

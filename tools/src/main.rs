//! `assay-tools`: benchmarks and harnesses. Not part of the shipped binary.

#![forbid(unsafe_code)]

mod bench;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "assay-tools", about = "Assay's benchmarks and harnesses")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks; each prints rates measured in one run and their ratios.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Bench(b) => runtime.block_on(bench::run(b)),
    }
}

//! Command definitions and dispatch. Every command returns `Exit` or an error (exit 2).

/// `println!` for command output: a closed stdout (`assay log | head`) is an error that `main`
/// turns into a quiet exit, where `println!` would panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err(crate::cli::stdout_error)?;
    }};
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($t)*).map_err(crate::cli::stdout_error)?;
    }};
}

mod append;
mod copy;
mod demo;
mod export;
mod gpu;
mod init;
mod key;
mod log;
mod open;
mod proof;
mod recover;
mod remote;
mod run;
mod serve;
mod state;
mod token;
mod verify;
mod verify_export;
mod xid;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use assay::store::Durability;

/// Stdout was closed by its reader (`assay log | head`): `main` exits quietly, as a filter
/// should. Only writes to stdout produce it; a broken connection elsewhere stays an error.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Maps a failed write to stdout: a closed pipe becomes [`StdoutClosed`].
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe { StdoutClosed.into() } else { e.into() }
}

/// What a successful command reports to the shell.
pub enum Exit {
    Ok,
    /// Verification ran and found a problem: exit status 1.
    VerifyFailed,
}

#[derive(Parser)]
#[command(
    name = "assay",
    version,
    about = "An auditable, signed, Merkle-logged event ledger for GPU research work"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the ledger lives and how hard it syncs.
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// The ledger database: a SQLite file path.
    #[arg(long, default_value = "assay.db", env = "ASSAY_DB")]
    pub db: String,
    /// `full`: synchronous=FULL (survives power loss); `relaxed`: synchronous=NORMAL.
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    pub durability: Durability,
}

/// For commands that append: the ledger's own signing key.
#[derive(Args, Clone, Debug)]
pub struct LedgerKeyArgs {
    /// The ledger's signing key (default: the one `assay init` wrote, as recorded in the ledger's settings).
    #[arg(long, env = "ASSAY_LEDGER_KEY")]
    pub ledger_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a ledger: keys (if absent) and genesis.
    Init(init::InitArgs),
    /// Create, register and revoke keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Sign and append events.
    Append(append::AppendArgs),
    /// Print records.
    Log(log::LogArgs),
    /// Verify signatures, roles, schemas, the chain, the tree and checkpoints.
    Verify(verify::VerifyArgs),
    /// Print the latest signed checkpoint.
    Checkpoint(verify::CheckpointArgs),
    /// Truncate the log to a signed checkpoint, keeping what is removed in a file.
    Recover(recover::RecoverArgs),
    /// Inclusion and consistency proofs.
    #[command(subcommand)]
    Proof(proof::ProofCommand),
    /// The projections as of a seq, and their digests.
    Replay(state::ReplayArgs),
    /// Claim verdicts with reasons, and the audit headline.
    Audit(state::AuditArgs),
    /// Runs by state, GPU lanes, pause and maintenance.
    Queue(state::StateArgs),
    /// GPU telemetry, Xid history and reset flags.
    Gpus(state::StateArgs),
    /// Copy a ledger between backends verbatim (SQLite ↔ PostgreSQL) and verify the copy.
    Copy(copy::CopyArgs),
    /// Build a demonstration ledger of a research lab and verify it.
    Demo(demo::DemoArgs),
    /// The HTTP service: append, query, subscribe, prove.
    Serve(serve::ServeArgs),
    /// Bearer tokens for reading over HTTP beyond loopback.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Export Parquet tables, or an artifact's offline audit bundle.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Verify a Parquet export offline against the ledger's verifier key.
    VerifyExport(verify_export::VerifyExportArgs),
    /// Verify an audit bundle offline against the ledger's verifier key.
    VerifyBundle(verify_export::VerifyBundleArgs),
    /// The kernel runner: campaigns and supervised runs.
    #[command(subcommand)]
    Run(run::RunCommand),
    /// GPU Xid errors: parse kernel logs, watch and record them.
    #[command(subcommand)]
    Xid(xid::XidCommand),
    /// GPU preflight.
    #[command(subcommand)]
    Gpu(gpu::GpuCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Init(a) => init::run(a).await,
        Command::Key(c) => key::run(c).await,
        Command::Append(a) => append::run(a).await,
        Command::Log(a) => log::run(a).await,
        Command::Verify(a) => verify::run(a).await,
        Command::Checkpoint(a) => verify::checkpoint(a).await,
        Command::Recover(a) => recover::run(a).await,
        Command::Proof(c) => proof::run(c).await,
        Command::Replay(a) => state::replay(a).await,
        Command::Audit(a) => state::audit(a).await,
        Command::Queue(a) => state::queue(a).await,
        Command::Gpus(a) => state::gpus(a).await,
        Command::Copy(a) => copy::run(a).await,
        Command::Serve(a) => serve::run(a).await,
        Command::Token(c) => token::run(c).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Export(c) => export::run(c).await,
        Command::VerifyExport(a) => verify_export::export(a).await,
        Command::VerifyBundle(a) => verify_export::bundle(a).await,
        Command::Run(c) => run::run(c).await,
        Command::Xid(c) => xid::run(c).await,
        Command::Gpu(c) => gpu::run(c).await,
    }
}

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
mod append_input;
mod append_local;
mod append_sign;
mod campaign;
mod copy;
mod demo;
mod docs;
mod evidence;
mod export;
mod gpu;
mod init;
mod key;
mod keys;
mod log;
mod open;
mod progress;
mod proof;
mod recover;
mod remote;
mod report;
mod run;
mod serve;
mod state;
mod suggest;
mod table;
mod tiles;
mod token;
mod verify;
mod verify_export;
mod witness;
mod xid;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

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

/// Where the ledger lives and how hard it syncs: for commands that write.
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// The ledger: a SQLite file path or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL", default_value = "assay.db", env = "ASSAY_DB")]
    pub db: String,
    /// `full`: synchronous=FULL (survives power loss); `relaxed`: synchronous=NORMAL.
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    pub durability: Durability,
}

/// Where the ledger lives: for commands that only read it.
#[derive(Args, Clone, Debug)]
pub struct ReadDbArgs {
    /// The ledger: a SQLite file path or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL", default_value = "assay.db", env = "ASSAY_DB")]
    pub db: String,
}

/// A ledger to open: what `--db` names, and how hard writes sync.
pub trait DbTarget {
    fn target(&self) -> &str;
    fn durability(&self) -> Durability;
}

impl DbTarget for DbArgs {
    fn target(&self) -> &str {
        &self.db
    }
    fn durability(&self) -> Durability {
        self.durability
    }
}

impl DbTarget for ReadDbArgs {
    fn target(&self) -> &str {
        &self.db
    }
    fn durability(&self) -> Durability {
        Durability::Full
    }
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
    /// Publication-style reports: one artifact's, or the corpus's.
    Report(report::ReportArgs),
    /// The evidence store: copy files in, check every file the log cites.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// The tree as C2SP tlog-tiles files, for static storage.
    #[command(subcommand)]
    Tiles(tiles::TilesCommand),
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
    /// Campaign runs: the regression diff of two runs.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// GPU Xid errors: parse kernel logs, watch and record them.
    #[command(subcommand)]
    Xid(xid::XidCommand),
    /// GPU preflight and doctor.
    #[command(subcommand)]
    Gpu(gpu::GpuCommand),
    /// A C2SP tlog-witness: cosign other logs' checkpoints after checking they only grew.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
    /// Shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(docs::CompletionsArgs),
    /// Manual pages (roff): the whole tool on stdout, or one page per subcommand with --out.
    Man(docs::ManArgs),
}

/// The command tree (for completions, manual pages and tests).
pub fn command() -> clap::Command {
    Cli::command()
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
        Command::Report(a) => report::run(a).await,
        Command::Evidence(c) => evidence::run(c).await,
        Command::Tiles(c) => tiles::run(c).await,
        Command::Export(c) => export::run(c).await,
        Command::VerifyExport(a) => verify_export::export(a).await,
        Command::VerifyBundle(a) => verify_export::bundle(a).await,
        Command::Run(c) => run::run(c).await,
        Command::Campaign(c) => campaign::run(c).await,
        Command::Xid(c) => xid::run(c).await,
        Command::Gpu(c) => gpu::run(c).await,
        Command::Witness(c) => witness::run(c).await,
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, and every argument of every command, says what it is for: `--help` and
    /// the manual pages show a description for each.
    #[test]
    fn every_command_and_argument_has_help() {
        command().debug_assert();
        let mut root = command();
        root.build();
        let mut missing = Vec::new();
        walk(&root, "assay", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
    }

    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        if path != "assay" && cmd.get_about().is_none() {
            missing.push(format!("{path} (the command)"));
        }
        for arg in cmd.get_arguments() {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                let name = arg.get_long().map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
                missing.push(format!("{path} {name}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    /// `--durability` is offered by the commands that write, and only by them.
    #[test]
    fn durability_only_where_the_ledger_is_written() {
        let mut root = command();
        root.build();
        let writes = [
            "init",
            "key register",
            "key revoke",
            "recover",
            "append",
            "serve",
            "token create",
            "token revoke",
            "run campaign",
            "run exec",
            "xid watch",
            "gpu preflight",
            "evidence sync",
        ];
        let mut found = Vec::new();
        collect_durability(&root, "", &mut found);
        found.sort();
        let mut expected: Vec<String> = writes.iter().map(|w| (*w).to_owned()).collect();
        expected.sort();
        assert_eq!(found, expected);
    }

    fn collect_durability(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
        if cmd.get_arguments().any(|a| a.get_long() == Some("durability")) {
            found.push(path.trim().to_owned());
        }
        for sub in cmd.get_subcommands() {
            collect_durability(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }

    /// Every `--db` says it takes a SQLite path or a postgres:// URL.
    #[test]
    fn every_db_option_names_both_backends() {
        let mut root = command();
        root.build();
        let mut wrong = Vec::new();
        let mut seen = 0;
        check_db(&root, "assay", &mut wrong, &mut seen);
        assert!(seen > 20, "only {seen} --db options found");
        assert!(wrong.is_empty(), "--db help without both backends: {wrong:?}");
    }

    fn check_db(cmd: &clap::Command, path: &str, wrong: &mut Vec<String>, seen: &mut usize) {
        for arg in cmd.get_arguments() {
            let long = arg.get_long();
            if long == Some("db") || (path == "assay copy" && matches!(long, Some("from" | "to"))) {
                *seen += 1;
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if !(help.contains("SQLite file path") && help.contains("postgres:// URL")) {
                    wrong.push(format!("{path} --{}: {help}", arg.get_long().unwrap_or_default()));
                }
            }
        }
        for sub in cmd.get_subcommands() {
            check_db(sub, &format!("{path} {}", sub.get_name()), wrong, seen);
        }
    }
}

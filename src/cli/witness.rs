//! `assay witness key new|serve|evidence`: a C2SP tlog-witness of other logs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use assay::http::WitnessServer;
use assay::keyfile;
use assay::store::WitnessStateStore;
use assay::witness::Witness;
use assay::witness::logs::Logs;

use super::Exit;

/// Refusals printed by one `assay witness evidence` (the state keeps at most 100 000).
const EVIDENCE_PAGE: u32 = 1000;

/// For crash tests only: set, the witness aborts right after each durable write.
const CRASH_AFTER_STORE_ENV: &str = "ASSAY_WITNESS_CRASH_AFTER_STORE";

#[derive(clap::Subcommand)]
pub enum WitnessCommand {
    /// Witness keys.
    #[command(subcommand)]
    Key(WitnessKeyCommand),
    /// Serve C2SP tlog-witness `POST /add-checkpoint` for the logs of --logs.
    Serve {
        /// The witness's signing key (`assay witness key new`).
        #[arg(long)]
        key: PathBuf,
        /// The logs to witness: TOML, `[[log]]` tables with `origin` and `vkeys`.
        #[arg(long)]
        logs: PathBuf,
        /// Address to listen on; port 0 picks a free port (the URL is printed once bound).
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// The witness's state: a SQLite file (created if absent) holding each log's latest
        /// cosigned checkpoint and the refusals kept as evidence.
        #[arg(long, default_value = "witness.db")]
        state: PathBuf,
    },
    /// Print the refused submissions kept as evidence of a log's misbehaviour (JSON lines:
    /// both notes and the proof).
    Evidence {
        /// The witness's state file.
        #[arg(long, default_value = "witness.db")]
        state: PathBuf,
        /// Skip this many refusals (they are printed oldest first, 1000 at a time).
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

#[derive(clap::Subcommand)]
pub enum WitnessKeyCommand {
    /// Write a new witness signing key to --out and print its vkey.
    New {
        /// The witness's name (C2SP: a schema-less URL such as witness.example/w1).
        #[arg(long)]
        name: String,
        /// The file to write the signing key to (mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

pub async fn run(cmd: WitnessCommand) -> anyhow::Result<Exit> {
    match cmd {
        WitnessCommand::Key(WitnessKeyCommand::New { name, out }) => {
            let key = keyfile::generate_cosigner(&name).with_context(|| format!("--name {name:?}"))?;
            keyfile::write_cosigner(&out, &key)?;
            outln!("{}", key.verifier().to_text());
            eprintln!("wrote {}", out.display());
            Ok(Exit::Ok)
        }
        WitnessCommand::Serve { key, logs, listen, state } => serve(key, logs, listen, state).await,
        WitnessCommand::Evidence { state, after } => evidence(state, after).await,
    }
}

async fn serve(key: PathBuf, logs: PathBuf, listen: SocketAddr, state: PathBuf) -> anyhow::Result<Exit> {
    let cosigner = keyfile::read_cosigner(&key)?;
    let text = std::fs::read_to_string(&logs).with_context(|| format!("reading {}", logs.display()))?;
    let logs = Logs::parse(&text).with_context(|| format!("{}", logs.display()))?;
    anyhow::ensure!(!logs.is_empty(), "--logs lists no log");
    let state_path = state.to_str().context("--state must be a UTF-8 path")?;
    let store = WitnessStateStore::open(state_path, true).await?;
    let crash = std::env::var_os(CRASH_AFTER_STORE_ENV).is_some();
    let witness = Arc::new(Witness::new(cosigner, logs, store).crash_after_store(crash));
    let server = WitnessServer::bind(listen, witness.clone()).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.url())?;
        out.flush()?;
    }
    eprintln!("witness {} serving", witness.cosigner().verifier().to_text());
    server.run(super::serve::shutdown_signal()).await;
    Ok(Exit::Ok)
}

async fn evidence(state: PathBuf, after: u64) -> anyhow::Result<Exit> {
    anyhow::ensure!(state.is_file(), "--state {}: no such witness state file", state.display());
    let state_path = state.to_str().context("--state must be a UTF-8 path")?;
    let store = WitnessStateStore::open(state_path, false).await?;
    for r in store.refusals(after, EVIDENCE_PAGE).await? {
        let line = serde_json::json!({
            "origin": r.origin,
            "received_at": assay::clock::rfc3339(r.received_at_ns),
            "reason": r.reason,
            "old_size": r.old_size,
            "proof": r.proof.lines().collect::<Vec<_>>(),
            "submitted": r.submitted,
            "recorded": r.recorded,
        });
        outln!("{line}");
    }
    Ok(Exit::Ok)
}

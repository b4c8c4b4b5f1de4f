//! `assay run campaign|exec` (and the hidden `run cell`), plus what the runner's commands
//! (`run`, `xid`, `gpu`) share: where events go (`--db PATH | --server URL`, signed with
//! `--key`), durations, and interrupt counting.

mod campaign;
mod cell;
mod exec;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;

use assay::ledger::Ledger;
use assay::sink::LedgerSink;
use assay::store::Durability;
use assay_events::keys::SignerKey;
use assay_events::roles::Role;
use assay_kernels::sink::EventSink;

use super::{DbArgs, Exit, LedgerKeyArgs, keys, open};

#[derive(clap::Subcommand)]
pub enum RunCommand {
    /// Run every cell of a campaign (a TOML kernel × variant matrix) and record each launch.
    Campaign(campaign::CampaignArgs),
    /// Run a command under supervision and record it: start, heartbeats, metrics, finish,
    /// evidence, and quiescence (the wake gate). Exits with the command's status.
    Exec(exec::ExecArgs),
    /// Run campaign cells sent as JSON lines on stdin (the child process of `run campaign`).
    #[command(hide = true)]
    Cell(cell::CellArgs),
}

pub async fn run(command: RunCommand) -> anyhow::Result<Exit> {
    match command {
        RunCommand::Campaign(a) => campaign::run(a).await,
        RunCommand::Exec(a) => exec::run(a).await,
        RunCommand::Cell(a) => cell::run(a).await,
    }
}

/// Where the runner's events go, and the key that signs them.
#[derive(clap::Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["db", "server"])))]
pub struct SinkArgs {
    /// Record into this ledger: a SQLite file path or a postgres:// URL (made by `assay init`).
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Record through an Assay server at this URL (e.g. http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The producer's signing key (registered with the runner role); `source` becomes
    /// assay:key/<its name>.
    #[arg(long)]
    pub key: PathBuf,
    /// With --db: `full` (synchronous=FULL) or `relaxed`.
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    pub durability: Durability,
    /// With --db: the ledger's signing key (default: the one recorded by `assay init`).
    #[arg(long, env = "ASSAY_LEDGER_KEY")]
    pub ledger_key: Option<PathBuf>,
}

/// An open sink, its key, and what must be closed after it.
pub struct Opened {
    pub sink: Box<dyn EventSink + Send>,
    pub key: SignerKey,
    pub closer: Closer,
}

/// Closes what a sink needed (the local ledger's sequencer).
pub struct Closer {
    ledger: Option<Ledger>,
}

impl Closer {
    /// Stops the ledger's sequencer after everything queued is committed. Drop the sink
    /// first.
    pub async fn close(self) {
        if let Some(ledger) = self.ledger {
            ledger.shutdown().await;
        }
    }
}

impl Opened {
    /// The signing key's name (the default worker name).
    pub fn producer(&self) -> String {
        self.key.name().to_owned()
    }
}

/// Opens the sink named by `--db` or `--server`. With `--db`, the key must be live in the
/// ledger and hold one of `roles` (checked before anything runs, so that a command is not
/// started only to find that nothing it does can be recorded).
pub async fn open_sink(args: &SinkArgs, roles: &[Role]) -> anyhow::Result<Opened> {
    open_sink_keeping(args, roles, false).await
}

/// [`open_sink`]; with `keep_evidence`, a local ledger's sink keeps evidence files in the
/// ledger's evidence store before citing them (a server's sink always does, in the server's).
pub async fn open_sink_keeping(
    args: &SinkArgs,
    roles: &[Role],
    keep_evidence: bool,
) -> anyhow::Result<Opened> {
    let key = keys::signer("--key", &args.key)?;
    if let Some(url) = &args.server {
        let client = assay::client::Client::new(url)?;
        client.health().await.with_context(|| format!("--server {url}: the server does not answer"))?;
        let sink = LedgerSink::server(client, key.clone(), &tokio::runtime::Handle::current());
        return Ok(Opened { sink: Box::new(sink), key, closer: Closer { ledger: None } });
    }
    let db = args.db.clone().context("give --db PATH or --server URL")?;
    let db_args = DbArgs { db, durability: args.durability };
    let ledger = open::ledger(&db_args, &LedgerKeyArgs { ledger_key: args.ledger_key.clone() }).await?;
    let keyid = key.keyid();
    if !ledger.keys().may_emit(&keyid, roles) {
        let needed: Vec<&str> = roles.iter().map(Role::as_str).collect();
        let problem = match ledger.keys().live(&keyid) {
            Err(e) => e.to_string(),
            Ok(_) => format!("it holds none of the roles {}", needed.join(", ")),
        };
        ledger.shutdown().await;
        anyhow::bail!(
            "--key {keyid} cannot record here: {problem} (an admin registers it with `assay key register --vkey {}.vkey --role {}`)",
            key.name(),
            needed.last().copied().unwrap_or("runner")
        );
    }
    let mut sink = LedgerSink::new(ledger.clone(), key.clone(), &tokio::runtime::Handle::current());
    if keep_evidence && let Some(blobs) = ledger.evidence() {
        sink = sink.keeping_evidence(blobs.clone());
    }
    Ok(Opened { sink: Box::new(sink), key, closer: Closer { ledger: Some(ledger) } })
}

/// `300ms`, `5s`, `1.5s`, `2m`, `1h`, `7d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 300ms, 5s, 2m)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (use ms, s, m, h or d)")),
    };
    if !seconds.is_finite() || !(0.0..=1.0e9).contains(&seconds) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Counts SIGINT and SIGTERM from now on (they no longer end the process).
pub fn count_interrupts() -> anyhow::Result<Arc<AtomicU32>> {
    use tokio::signal::unix::{SignalKind, signal};
    let count = Arc::new(AtomicU32::new(0));
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                received = interrupt.recv() => if received.is_none() { break },
                received = terminate.recv() => if received.is_none() { break },
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(count)
}

/// The worker name: `--worker`, else the key's name; it must be an identifier.
pub fn worker_name(given: Option<&str>, opened: &Opened) -> anyhow::Result<String> {
    let name = given.map_or_else(|| opened.producer(), str::to_owned);
    anyhow::ensure!(
        assay_kernels::sink::is_identifier(&name),
        "{name:?} is not a valid worker name (letters, digits and ._:/-); pass --worker NAME"
    );
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}

//! `assay serve`: the HTTP service. Prints the URL it listens on (one line on stdout) once
//! bound; SIGINT or SIGTERM stop it gracefully (everything acknowledged is committed).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use assay::blobs::BLOB_BYTES_MAX_DEFAULT;
use assay::http::{RateLimit, ServeOptions, Server};
use assay::ledger::LedgerOptions;

use super::{DbArgs, Exit, LedgerKeyArgs, open};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    ledger_key: LedgerKeyArgs,
    /// Address to listen on; port 0 picks a free port. Beyond loopback, reads need a token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// More read tokens, one per line (`#` comments), besides those of `assay token create`.
    #[arg(long)]
    read_token_file: Option<PathBuf>,
    /// Require a read token even on loopback.
    #[arg(long)]
    require_read_token: bool,
    /// Envelopes per second each signing key may append (default: unlimited).
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Envelopes a key may append at once under --rate-limit (default: max(N, 1000)).
    #[arg(long, value_name = "N", requires = "rate_limit")]
    rate_burst: Option<u32>,
    /// Seconds before a request (other than a live stream) ends with 408.
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Milliseconds a client has to send a request's complete head (slowloris); also how long
    /// a keep-alive connection waits for its next request.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    header_read_timeout_ms: u64,
    /// Milliseconds a connection may stay silent both ways, no request being handled, before
    /// it is closed (live streams send heartbeats at least twice as often).
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    idle_timeout_ms: u64,
    /// Connections served at once (lowered to fit `ulimit -n`); one more is answered 503 with
    /// Retry-After.
    #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    connections_max: u32,
    /// The largest evidence blob `PUT /v1/blobs/{blake3}` takes, in bytes (413 beyond).
    #[arg(long, default_value_t = BLOB_BYTES_MAX_DEFAULT, value_name = "BYTES")]
    blob_bytes_max: u64,
    /// A C2SP witness to ask for cosignatures of each checkpoint: NAME=URL=VKEY (URL the
    /// submission prefix, VKEY its `cosignature/v1` key); repeatable.
    #[arg(long = "witness", value_name = "NAME=URL=VKEY")]
    witnesses: Vec<assay::cosigning::WitnessSpec>,
    /// Cosignatures `/checkpoint` needs (default: every --witness).
    #[arg(long, value_name = "K", requires = "witnesses")]
    witness_quorum: Option<usize>,
}

pub async fn run(a: ServeArgs) -> anyhow::Result<Exit> {
    let read_tokens = match &a.read_token_file {
        Some(p) => assay::tokens::parse_file(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => Vec::new(),
    };
    let rate_limit = a.rate_limit.map(|n| RateLimit {
        per_second: f64::from(n.max(1)),
        burst: f64::from(a.rate_burst.unwrap_or(n.max(1000)).max(1)),
    });
    // Checked before the ledger opens: a usage error names the flag.
    assay::cosigning::Cosigning::new(a.witnesses.clone(), a.witness_quorum)?;
    let options = ServeOptions {
        listen: a.listen,
        require_read_token: a.require_read_token,
        read_tokens,
        rate_limit,
        request_timeout: Duration::from_secs(a.request_timeout.max(1)),
        header_read_timeout: Duration::from_millis(a.header_read_timeout_ms.max(1)),
        idle_timeout: Duration::from_millis(a.idle_timeout_ms.max(1)),
        connections_max: a.connections_max as usize,
        witnesses: a.witnesses,
        witness_quorum: a.witness_quorum,
        ..ServeOptions::default()
    };
    serve_ledger_with(&a.db, &a.ledger_key, options, a.blob_bytes_max).await
}

/// Opens the ledger, serves it until SIGINT or SIGTERM, and prints the URL once bound.
pub async fn serve_ledger(
    db: &DbArgs,
    ledger_key: &LedgerKeyArgs,
    options: ServeOptions,
) -> anyhow::Result<Exit> {
    serve_ledger_with(db, ledger_key, options, BLOB_BYTES_MAX_DEFAULT).await
}

/// [`serve_ledger`] with evidence blobs of at most `blob_bytes_max` bytes.
pub async fn serve_ledger_with(
    db: &DbArgs,
    ledger_key: &LedgerKeyArgs,
    options: ServeOptions,
    blob_bytes_max: u64,
) -> anyhow::Result<Exit> {
    // Follow other writers (another server on the same PostgreSQL, `assay append` on the same
    // file), so streams and projections see every commit.
    let ledger_options =
        LedgerOptions { follow_poll_ms: Some(500), keep_opened_state: true, ..LedgerOptions::default() };
    let (ledger, key) = open::ledger_and_key(db, ledger_key, ledger_options).await?;
    // The ledger's own evidence store (opened with it), taking uploads up to the limit.
    let blobs = options.blobs.or_else(|| ledger.evidence().map(|b| b.clone().with_bytes_max(blob_bytes_max)));
    let options = ServeOptions { blobs, ..options };
    // The service signs audit bundles with the key it signs checkpoints with.
    let options = ServeOptions { bundle_key: options.bundle_key.or(Some(key)), ..options };
    let server = match Server::bind(ledger.clone(), options).await {
        Ok(s) => s,
        Err(e) => {
            ledger.shutdown().await;
            return Err(e.into());
        }
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.url())?;
        out.flush()?;
    }
    if server.reads_need_token() {
        eprintln!("reads need a bearer token (assay token create)");
    }
    server.run(shutdown_signal()).await?;
    eprintln!("stopped; every acknowledged append is committed");
    Ok(Exit::Ok)
}

/// SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

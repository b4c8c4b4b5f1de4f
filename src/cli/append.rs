//! `assay append`: sign and append one event, an NDJSON file of events, or pre-signed envelopes.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use assay::ledger::{AppendError, AppendOutcome, Incoming, build_envelope};
use assay_events::keys::SignerKey;
use tokio::sync::oneshot;

use super::remote::{ServerArgs, at_line};
use super::{DbArgs, Exit, LedgerKeyArgs, keys, open, suggest};

/// Lines one invocation reads at most: the input is checked whole before anything is appended.
const INPUT_LINES_MAX: usize = 2_000_000;
/// Requests in flight while checking the next (pipelining check and commit).
const IN_FLIGHT_MAX: usize = 4;

#[derive(clap::Args)]
pub struct AppendArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    ledger_key: LedgerKeyArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// The producer's signing key; `source` becomes assay:key/<its name>.
    #[arg(long, required_unless_present = "envelopes")]
    key: Option<PathBuf>,
    /// The event type (with --data), e.g. metric.recorded.
    #[arg(long = "type", requires = "data")]
    ty: Option<String>,
    /// The event's subject, e.g. run/r-42 (the one its data dictates).
    #[arg(long, requires = "ty")]
    subject: Option<String>,
    /// The event's `data` as JSON.
    #[arg(long, requires = "ty")]
    data: Option<String>,
    /// The CloudEvent id (default: a fresh UUIDv7).
    #[arg(long, requires = "ty")]
    id: Option<String>,
    /// NDJSON lines {"type","subject","data"[,"id","time"]} from FILE or - (stdin).
    #[arg(long, conflicts_with_all = ["ty", "envelopes"])]
    ndjson: Option<String>,
    /// Pre-signed DSSE envelopes, one JSON per line, from FILE or -.
    #[arg(long, conflicts_with_all = ["ty", "ndjson", "sign_only", "key"])]
    envelopes: Option<String>,
    /// Print the signed envelopes (one JSON line each) instead of appending.
    #[arg(long)]
    sign_only: bool,
    /// Print {"seq":N,"digest":"hex"} per event.
    #[arg(long)]
    json: bool,
    /// Envelopes per append request (at most 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    chunk: u16,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(rename = "type")]
    ty: String,
    subject: Option<String>,
    data: serde_json::Value,
    id: Option<String>,
    time: Option<String>,
}

fn read_lines(src: &str) -> anyhow::Result<Vec<(usize, String)>> {
    let reader: Box<dyn BufRead> = if src == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(src).with_context(|| format!("opening {src}"))?))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        anyhow::ensure!(i < INPUT_LINES_MAX, "{src}: more than {INPUT_LINES_MAX} lines");
        let line = line.with_context(|| format!("{src}: reading line {}", i + 1))?;
        if !line.trim().is_empty() {
            out.push((i + 1, line));
        }
    }
    Ok(out)
}

fn sign_line(key: &SignerKey, lineno: usize, text: &str) -> anyhow::Result<Incoming> {
    let line: Line = serde_json::from_str(text).with_context(|| format!("line {lineno}: malformed JSON"))?;
    suggest::event_type(&line.ty).map_err(|e| anyhow::anyhow!("line {lineno}: {e} [schema_violation]"))?;
    let time_ns = match &line.time {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("line {lineno}: time {t:?} is not RFC 3339"))?
            .timestamp_nanos_opt()
            .with_context(|| format!("line {lineno}: time {t:?} is out of range"))?,
        None => assay::clock::now_ns(),
    };
    Ok(Incoming::Decoded(build_envelope(key, &line.ty, line.subject.as_deref(), line.data, line.id, time_ns)))
}

pub async fn run(a: AppendArgs) -> anyhow::Result<Exit> {
    // Build every envelope first: bad input is refused before anything is stored.
    let (linenos, items): (Vec<usize>, Vec<Incoming>) = if let Some(src) = &a.envelopes {
        read_lines(src)?.into_iter().map(|(n, l)| (n, Incoming::Json(l.into_bytes()))).unzip()
    } else {
        let key = keys::signer("--key", a.key.as_deref().context("--key is required")?)?;
        if let Some(src) = &a.ndjson {
            let mut out = (Vec::new(), Vec::new());
            for (n, l) in read_lines(src)? {
                out.0.push(n);
                out.1.push(sign_line(&key, n, &l)?);
            }
            out
        } else {
            let ty = a.ty.clone().context("give --type/--data, --ndjson or --envelopes")?;
            suggest::event_type(&ty).map_err(|e| anyhow::anyhow!("--type: {e} [schema_violation]"))?;
            let data: serde_json::Value = serde_json::from_str(a.data.as_deref().unwrap_or("{}"))
                .context("--data is not valid JSON")?;
            let env =
                build_envelope(&key, &ty, a.subject.as_deref(), data, a.id.clone(), assay::clock::now_ns());
            (vec![1], vec![Incoming::Decoded(env)])
        }
    };
    if a.sign_only {
        let mut out = std::io::stdout().lock();
        for item in items {
            if let Incoming::Decoded(env) = item {
                out.write_all(&env.to_json())?;
                out.write_all(b"\n")?;
            }
        }
        return Ok(Exit::Ok);
    }
    if let Some(client) = a.server.client()? {
        return remote(&client, items, &linenos, usize::from(a.chunk), a.json).await;
    }
    let ledger = open::ledger(&a.db, &a.ledger_key).await?;
    let result = pipeline(&ledger, items, &linenos, usize::from(a.chunk), a.json).await;
    ledger.shutdown().await;
    result?;
    Ok(Exit::Ok)
}

/// Appends through a server, a request per chunk, printing acknowledgements as they come.
async fn remote(
    client: &assay::client::Client,
    items: Vec<Incoming>,
    linenos: &[usize],
    chunk: usize,
    json: bool,
) -> anyhow::Result<Exit> {
    let wire: Vec<Vec<u8>> = items
        .into_iter()
        .map(|i| match i {
            Incoming::Json(bytes) => bytes,
            Incoming::Decoded(env) => env.to_json(),
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    for (k, part) in wire.chunks(chunk).enumerate() {
        let first = k * chunk;
        let appended = client.append(part).await.map_err(|e| at_line(e, linenos, first))?;
        for ack in &appended.response.records {
            if json {
                writeln!(stdout, "{{\"seq\":{},\"digest\":\"{}\"}}", ack.seq, ack.digest)?;
            } else if ack.existed {
                writeln!(stdout, "seq {} {} (already present)", ack.seq, ack.digest)?;
            } else {
                writeln!(stdout, "seq {} {}", ack.seq, ack.digest)?;
            }
        }
        stdout.flush()?;
    }
    Ok(Exit::Ok)
}

type Pending = (usize, oneshot::Receiver<Result<AppendOutcome, AppendError>>);

/// Checks the whole input first (every stateless check, then keys, roles and ids against the
/// ledger as it is), so bad input stores nothing; then submits requests of `chunk` envelopes,
/// several in flight, and prints acknowledgements in input order, each only after its commit.
async fn pipeline(
    ledger: &assay::ledger::Ledger,
    items: Vec<Incoming>,
    linenos: &[usize],
    chunk: usize,
    json: bool,
) -> anyhow::Result<()> {
    let line_of = |start: usize, e: AppendError| -> anyhow::Error {
        match e {
            AppendError::Rejected { index, reason } => {
                anyhow::anyhow!(
                    "line {}: {reason} [{}]",
                    linenos.get(start + index).copied().unwrap_or(0),
                    reason.code()
                )
            }
            other => other.into(),
        }
    };
    let mut prepared = Vec::with_capacity(items.len());
    let mut items = items.into_iter();
    loop {
        let batch: Vec<Incoming> = items.by_ref().take(chunk).collect();
        if batch.is_empty() {
            break;
        }
        let first = prepared.len();
        prepared.extend(ledger.prepare(batch).await.map_err(|e| line_of(first, e))?);
    }
    ledger.precheck(&prepared).await.map_err(|e| line_of(0, e))?;

    let mut in_flight: VecDeque<Pending> = VecDeque::new();
    let mut stdout = std::io::stdout().lock();
    let mut failure: Option<anyhow::Error> = None;
    let mut first = 0usize;
    let mut prepared = prepared.into_iter();
    loop {
        let batch: Vec<_> = prepared.by_ref().take(chunk).collect();
        let done = batch.is_empty() || failure.is_some();
        if !done {
            let n = batch.len();
            in_flight.push_back((first, ledger.submit(batch).await.map_err(|e| line_of(first, e))?));
            first += n;
        }
        while in_flight.len() > IN_FLIGHT_MAX || (done && !in_flight.is_empty()) {
            let (start, rx) = in_flight.pop_front().expect("non-empty");
            match rx.await.map_err(|_| AppendError::ShuttingDown).and_then(|r| r) {
                Ok(outcome) => {
                    for ack in outcome.acks {
                        if json {
                            writeln!(stdout, "{{\"seq\":{},\"digest\":\"{}\"}}", ack.seq, ack.digest)?;
                        } else if ack.existed {
                            writeln!(stdout, "seq {} {} (already present)", ack.seq, ack.digest)?;
                        } else {
                            writeln!(stdout, "seq {} {}", ack.seq, ack.digest)?;
                        }
                    }
                    stdout.flush()?;
                }
                Err(e) => {
                    failure.get_or_insert(line_of(start, e));
                }
            }
        }
        if done {
            break;
        }
    }
    failure.map_or(Ok(()), Err)
}

//! `assay append`: sign and append one event, an NDJSON file of events, or pre-signed envelopes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use assay::ledger::{AppendError, Incoming, build_envelope};
use assay_events::dsse::DecodedEnvelope;
use assay_events::keys::SignerKey;

use super::append_input::Lines;
use super::append_local::{self, envelopes, print_ack};
use super::append_sign::sign_chunk;
use super::remote::{ServerArgs, at_line};
use super::{DbArgs, Exit, LedgerKeyArgs, keys, open, suggest};

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

pub async fn run(a: AppendArgs) -> anyhow::Result<Exit> {
    let chunk = usize::from(a.chunk);
    let (src, sign) = match (&a.envelopes, &a.ndjson) {
        (Some(src), _) => (src.clone(), None),
        (None, ndjson) => {
            let key = keys::signer("--key", a.key.as_deref().context("--key is required")?)?;
            match ndjson {
                Some(src) => (src.clone(), Some(key)),
                None => return one(&a, &key).await,
            }
        }
    };
    if a.sign_only {
        let key = sign.as_ref().context("--sign-only signs --ndjson or --type/--data")?;
        let mut lines = Lines::open(&src)?;
        let mut out = std::io::stdout().lock();
        loop {
            let raw = lines.next_chunk(chunk)?;
            if raw.is_empty() {
                return Ok(Exit::Ok);
            }
            for env in sign_chunk(key, &raw)? {
                out.write_all(&env.to_json())?;
                out.write_all(b"\n")?;
            }
        }
    }
    if let Some(client) = a.server.client()? {
        return remote(&client, &src, sign.as_ref(), chunk, a.json).await;
    }
    let ledger = open::one_shot_ledger(&a.db, &a.ledger_key).await?;
    let result = append_local::append(&ledger, &src, sign.as_ref(), chunk, a.json).await;
    ledger.shutdown().await;
    result?;
    Ok(Exit::Ok)
}

/// One event from --type/--data, signed with `key`: printed, or appended here or through a
/// server.
async fn one(a: &AppendArgs, key: &SignerKey) -> anyhow::Result<Exit> {
    let ty = a.ty.clone().context("give --type/--data, --ndjson or --envelopes")?;
    suggest::event_type(&ty).map_err(|e| anyhow::anyhow!("--type: {e} [schema_violation]"))?;
    let data: serde_json::Value =
        serde_json::from_str(a.data.as_deref().unwrap_or("{}")).context("--data is not valid JSON")?;
    let env: DecodedEnvelope =
        build_envelope(key, &ty, a.subject.as_deref(), data, a.id.clone(), assay::clock::now_ns());
    let mut stdout = std::io::stdout().lock();
    if a.sign_only {
        stdout.write_all(&env.to_json())?;
        stdout.write_all(b"\n")?;
        return Ok(Exit::Ok);
    }
    if let Some(client) = a.server.client()? {
        let appended = client.append(&[env.to_json()]).await.map_err(|e| at_line(e, &[1], 0))?;
        for ack in &appended.response.records {
            print_ack(&mut stdout, ack.seq, &ack.digest, ack.existed, a.json)?;
        }
        return Ok(Exit::Ok);
    }
    let ledger = open::one_shot_ledger(&a.db, &a.ledger_key).await?;
    let result = ledger.append(vec![Incoming::Decoded(env)]).await;
    ledger.shutdown().await;
    let outcome = result.map_err(|e| match e {
        AppendError::Rejected { reason, .. } => anyhow::anyhow!("line 1: {reason} [{}]", reason.code()),
        other => other.into(),
    })?;
    for ack in outcome.acks {
        print_ack(&mut stdout, ack.seq, ack.digest, ack.existed, a.json)?;
    }
    Ok(Exit::Ok)
}

/// Appends through a server, a request per chunk read, printing acknowledgements as they
/// come. Each request is all-or-nothing on the server; the input is not checked whole first.
async fn remote(
    client: &assay::client::Client,
    src: &str,
    sign: Option<&SignerKey>,
    chunk: usize,
    json: bool,
) -> anyhow::Result<Exit> {
    let mut lines = Lines::open(src)?;
    let mut stdout = std::io::stdout().lock();
    loop {
        let raw = lines.next_chunk(chunk)?;
        if raw.is_empty() {
            return Ok(Exit::Ok);
        }
        let (env_lines, _) = envelopes(sign, raw)?;
        let linenos: Vec<usize> = env_lines.iter().map(|(n, _)| *n).collect();
        let wire: Vec<Vec<u8>> = env_lines.into_iter().map(|(_, l)| l).collect();
        let appended = client.append(&wire).await.map_err(|e| at_line(e, &linenos, 0))?;
        for ack in &appended.response.records {
            print_ack(&mut stdout, ack.seq, &ack.digest, ack.existed, json)?;
        }
        stdout.flush()?;
    }
}

//! `assay evidence put FILES… (--db | --server --key K)`: copy files made elsewhere into the
//! ledger's evidence store. `assay evidence verify (--db | --server)`: every evidence file the
//! log cites must have its blob, whole; each missing or corrupt one is named (exit status 1).
//! `assay evidence sync DIGEST… (--db | --server --key K)`: the ledger records `evidence.synced`
//! for evidence whose files were put after it was appended (`assay::ledger::evidence_sync`).
//! `assay evidence gc --older-than DURATION (--db … | --server URL --key ADMIN.key)`: retention
//! (`assay::blobs::gc`; through a server, `POST /v1/blobs/gc`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Context;
use assay::blobs::cited::{self, Citation};
use assay::blobs::gc::{self, Removal};
use assay::blobs::{BLOB_BYTES_MAX_DEFAULT, BlobError, BlobName, BlobState, BlobStore};
use assay::ledger::SyncError;
use assay_events::{EventType, Hash32};
use futures_util::StreamExt;

use super::remote::ServerArgs;
use super::{DbArgs, Exit, LedgerKeyArgs, ReadDbArgs, keys, open};

#[derive(clap::Subcommand)]
pub enum EvidenceCommand {
    /// Copy files into the evidence store, named by their blake3; prints digest, size and path
    /// per file.
    Put(PutArgs),
    /// Check that every evidence file the log cites is stored whole; names each missing or
    /// corrupt blob (exit status 1 when there is one).
    Verify(VerifyArgs),
    /// Ask the ledger to record that every file of an evidence.captured is in the evidence
    /// store (evidence.synced), for files put after the event was appended; names the files
    /// still missing (exit status 1 when there is one).
    Sync(SyncArgs),
    /// Remove stored blobs that no event cites and that were stored more than --older-than
    /// ago, and temporary upload files as old; cited blobs always stay. Prints each with its
    /// size, and the total.
    Gc(GcArgs),
}

#[derive(clap::Args)]
pub struct GcArgs {
    /// Only what was stored longer ago than this is removed: 30m, 12h, 7d (at least 1m).
    #[arg(long, value_name = "DURATION", value_parser = older_than)]
    older_than: std::time::Duration,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    db: ReadDbArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// With --server: the admin key that signs the request.
    #[arg(long, requires = "server")]
    key: Option<PathBuf>,
}

/// `--older-than`: a duration of at least [`gc::OLDER_THAN_MIN`].
fn older_than(text: &str) -> Result<std::time::Duration, String> {
    let d = super::run::parse_duration(text)?;
    if d < gc::OLDER_THAN_MIN {
        return Err(format!(
            "{text:?} is under {}s: an upload whose event is not appended yet would be removed",
            gc::OLDER_THAN_MIN.as_secs()
        ));
    }
    Ok(d)
}

#[derive(clap::Args)]
pub struct PutArgs {
    /// The files to store.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    db: ReadDbArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// With --server: the producer key that signs each upload (registered as worker or runner).
    #[arg(long, requires = "server")]
    key: Option<PathBuf>,
    /// With --db: the largest file taken, in bytes (a server applies its own limit).
    #[arg(long, default_value_t = BLOB_BYTES_MAX_DEFAULT, value_name = "BYTES")]
    blob_bytes_max: u64,
}

#[derive(clap::Args)]
pub struct SyncArgs {
    /// Event digests of evidence.captured events (64 lower-case hex characters each).
    #[arg(required = true, value_name = "DIGEST")]
    evidence: Vec<String>,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    ledger_key: LedgerKeyArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// With --server: the producer key that signs each request (registered as worker or runner).
    #[arg(long, requires = "server")]
    key: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(command: EvidenceCommand) -> anyhow::Result<Exit> {
    match command {
        EvidenceCommand::Put(a) => put(a).await,
        EvidenceCommand::Verify(a) => verify(a).await,
        EvidenceCommand::Sync(a) => sync(a).await,
        EvidenceCommand::Gc(a) => collect(a).await,
    }
}

async fn collect(a: GcArgs) -> anyhow::Result<Exit> {
    let verb = if a.dry_run { "would remove" } else { "removed" };
    if let Some(client) = a.server.client()? {
        let key_path = a.key.as_ref().context("--server needs --key KEY (an admin key)")?;
        let key = keys::signer("--key", key_path)?;
        let done = client.gc_blobs(&key, a.older_than.as_secs(), a.dry_run).await?;
        for item in &done.removed {
            outln!("{verb}  {}  {}", item.name, item.bytes);
        }
        let listed = done.removed.len() as u64;
        if listed < done.files {
            outln!("… and {} more", done.files - listed);
        }
        outln!("{verb} {} file(s), {} bytes in all", done.files, done.bytes);
        return Ok(Exit::Ok);
    }
    // The cutoff is fixed before the cited names are read: whatever is stored after the
    // listing is younger than it (see `assay::blobs::gc`).
    let older_than_ns = i64::try_from(a.older_than.as_nanos()).unwrap_or(i64::MAX);
    let cutoff_ns = assay::clock::now_ns().saturating_sub(older_than_ns);
    let store = open::store(&a.db).await?;
    let cited = cited::cited(&store).await;
    store.close().await;
    let cited: BTreeSet<BlobName> = cited?.into_keys().collect();
    let blobs = BlobStore::open(&a.db.db, u64::MAX).await?;
    let total = gc::collect(&blobs, cited, cutoff_ns, a.dry_run, move |removal| {
        use std::io::Write as _;
        let line = match removal {
            Removal::Blob { name, bytes } => format!("{verb}  {name}  {bytes}"),
            Removal::Part { path, bytes } => format!("{verb}  {}  {bytes}", path.display()),
        };
        writeln!(std::io::stdout().lock(), "{line}")
            .map_err(|source| BlobError::Io { what: "writing to stdout".to_owned(), source })
    })
    .await?;
    outln!("{verb} {} file(s), {} bytes in all", total.files, total.bytes);
    Ok(Exit::Ok)
}

async fn put(a: PutArgs) -> anyhow::Result<Exit> {
    // Every file is checked before any is stored: bad input stores nothing.
    for file in &a.files {
        let meta = std::fs::metadata(file).with_context(|| format!("{}", file.display()))?;
        anyhow::ensure!(meta.is_file(), "{} is not a regular file", file.display());
        if a.server.server.is_none() {
            anyhow::ensure!(
                meta.len() <= a.blob_bytes_max,
                "{} has {} bytes, more than --blob-bytes-max {}",
                file.display(),
                meta.len(),
                a.blob_bytes_max
            );
        }
    }
    // Up to `PUTS_IN_FLIGHT` files at once, reported in the order given.
    let (stored, existed) = if let Some(client) = a.server.client()? {
        let key_path = a.key.as_ref().context("--server needs --key KEY (a worker or runner key)")?;
        let key = keys::signer("--key", key_path)?;
        let puts =
            client.put_blobs(&key, &a.files).zip(futures_util::stream::iter(&a.files)).map(|(put, file)| {
                let put = put.with_context(|| format!("{}", file.display()))?;
                Ok((put.blake3, put.bytes, put.existed, file))
            });
        report_puts(puts).await?
    } else {
        open::store(&a.db).await?.close().await;
        let blobs = BlobStore::open(&a.db.db, a.blob_bytes_max).await?;
        let puts = blobs.put_files(&a.files).zip(futures_util::stream::iter(&a.files)).map(|(put, file)| {
            let put = put.with_context(|| format!("{}", file.display()))?;
            Ok((put.name.to_hex(), put.bytes, put.existed, file))
        });
        report_puts(puts).await?
    };
    eprintln!("{stored} blob(s) stored, {existed} already stored");
    Ok(Exit::Ok)
}

/// Prints `DIGEST  BYTES  PATH` per stored file as each comes; (stored, already stored). The
/// first failure ends the command (uploads still in flight are dropped: nothing partial is kept).
async fn report_puts(
    puts: impl futures_util::Stream<Item = anyhow::Result<(String, u64, bool, &PathBuf)>>,
) -> anyhow::Result<(usize, usize)> {
    let (mut stored, mut existed) = (0usize, 0usize);
    let mut puts = std::pin::pin!(puts);
    while let Some(put) = puts.next().await {
        let (blake3, bytes, was_stored, file) = put?;
        if was_stored {
            existed += 1
        } else {
            stored += 1
        }
        outln!("{blake3}  {bytes}  {}", file.display());
    }
    Ok((stored, existed))
}

/// Prints `DIGEST  synced  seq N  M file(s)` per evidence (`already synced` when the log
/// held it); an evidence whose files are not all stored is named with them, and makes the exit
/// status 1 once every digest was tried.
async fn sync(a: SyncArgs) -> anyhow::Result<Exit> {
    // Every digest is checked before any is asked for: bad input changes nothing.
    let mut digests = Vec::with_capacity(a.evidence.len());
    for text in &a.evidence {
        let digest = Hash32::from_hex(text).ok().filter(|h| h.to_hex() == *text);
        digests
            .push(digest.with_context(|| {
                format!("{text:?} is not an event digest (64 lower-case hex characters)")
            })?);
    }
    let mut missing = 0usize;
    let line = |digest: &Hash32, seq: u64, files: u64, existed: bool| -> anyhow::Result<()> {
        let what = if existed { "already synced" } else { "synced" };
        outln!("{digest}  {what}  seq {seq}  {files} file(s)");
        Ok(())
    };
    if let Some(client) = a.server.client()? {
        let key_path = a.key.as_ref().context("--server needs --key KEY (a worker or runner key)")?;
        let key = keys::signer("--key", key_path)?;
        for digest in &digests {
            match client.sync_evidence(&key, &digest.to_hex()).await {
                Ok(s) => line(digest, s.seq, s.files, s.existed)?,
                Err(assay::client::ClientError::Api { status: 409, detail, .. }) => {
                    eprintln!("error: {detail}");
                    missing += 1;
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("evidence {digest}"))),
            }
        }
    } else {
        let ledger = open::ledger(&a.db, &a.ledger_key).await?;
        let mut failed = None;
        for digest in &digests {
            match ledger.sync_evidence(*digest).await {
                Ok(s) => line(digest, s.seq, s.files, s.existed)?,
                Err(e @ SyncError::FilesMissing { .. }) => {
                    eprintln!("error: {e}");
                    missing += 1;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        ledger.shutdown().await;
        if let Some(e) = failed {
            return Err(e.into());
        }
    }
    if missing > 0 {
        eprintln!(
            "error: {missing} of {} evidence not synced: put the missing files, then sync again",
            digests.len()
        );
        return Ok(Exit::VerifyFailed);
    }
    Ok(Exit::Ok)
}

/// Checks one blob: `Some(problem)` when it is missing or corrupt.
fn problem(state: BlobState, citation: &Citation) -> Option<String> {
    match state {
        BlobState::Whole { bytes } if bytes == citation.bytes => None,
        BlobState::Whole { bytes } => {
            Some(format!("corrupt: {bytes} bytes stored, {} recorded", citation.bytes))
        }
        BlobState::Missing => Some("missing".to_owned()),
        BlobState::Corrupt { found: Some(found), .. } => Some(format!("corrupt: its bytes hash to {found}")),
        BlobState::Corrupt { found: None, bytes } => {
            Some(format!("corrupt: it could not be read whole (stopped after {bytes} bytes)"))
        }
    }
}

async fn verify(a: VerifyArgs) -> anyhow::Result<Exit> {
    let mut bad = 0usize;
    let cited = match a.server.client()? {
        Some(client) => {
            let cited = cited_through(&client).await?;
            for (name, citation) in &cited {
                bad += report(name, citation, client.check_blob(name).await?)?;
            }
            cited
        }
        None => {
            let store = open::store(&a.db).await?;
            let cited = cited::cited(&store).await;
            store.close().await;
            let cited = cited?;
            let blobs = BlobStore::open(&a.db.db, u64::MAX).await?;
            for (name, citation) in &cited {
                bad += report(name, citation, blobs.check(name).await?)?;
            }
            cited
        }
    };
    if bad > 0 {
        eprintln!("error: {bad} of {} cited evidence file(s) missing or corrupt", cited.len());
        return Ok(Exit::VerifyFailed);
    }
    eprintln!("{} cited evidence file(s), every one stored whole", cited.len());
    Ok(Exit::Ok)
}

/// Prints the line of a missing or corrupt blob; 1 when it is one, else 0.
fn report(name: &BlobName, citation: &Citation, state: BlobState) -> anyhow::Result<usize> {
    let Some(problem) = problem(state, citation) else { return Ok(0) };
    outln!("{name}  {problem}  (run {}, {}, record {})", citation.run, citation.path, citation.seq);
    Ok(1)
}

/// [`cited::cited`] through a server's `GET /v1/events?type=evidence.captured`.
async fn cited_through(client: &assay::client::Client) -> anyhow::Result<BTreeMap<BlobName, Citation>> {
    const PAGE: u32 = 1000;
    let mut cited = BTreeMap::new();
    let mut from = 0;
    loop {
        let page = client.events(from, PAGE, Some(EventType::EvidenceCaptured.as_str()), None).await?;
        for record in &page.records {
            cited::add(&mut cited, record.seq, record.event.get().as_bytes())?;
        }
        match page.next {
            Some(next) => from = next,
            None => return Ok(cited),
        }
    }
}

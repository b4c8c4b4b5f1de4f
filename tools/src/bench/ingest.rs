//! `bench ingest`: (a) the limits — Ed25519 verification on all cores, and raw commits of the
//! same rows with the same durability to the same backend; (b) sustained ingest of pre-signed
//! envelopes through the real verify → sequence → commit path. Prints each rate and
//! `ingest / min(limits)`.
//!
//! With `--db postgres://…` the ledger lives in a fresh schema of that database (dropped at
//! the end), and `--servers N` runs N sequencers on it, each with its own connection pool as N
//! `assay serve` processes would, producers spread over them: the aggregate rate of several
//! writers taking turns under the writer lock.

use std::sync::Arc;
use std::time::Instant;

use assay::ledger::Incoming;
use assay::store::{CommitBatch, Durability, HeadRow, RecordRow, Store};
use assay_events::Hash32;
use assay_events::dsse::{DecodedEnvelope, signatures_canonical_json};
use assay_events::merkle::{Frontier, leaf_hash};
use assay_events::record::Record;
use rayon::prelude::*;

use super::fixture;

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Envelopes to ingest.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Envelopes per append request.
    #[arg(long, default_value_t = 1000)]
    request: usize,
    /// Concurrent producers.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    durability: Durability,
    /// A PostgreSQL URL: ingest into fresh schemas of this database instead of SQLite files.
    #[arg(long)]
    db: Option<String>,
    /// Sequencers on the one database (PostgreSQL only), each with its own connection pool, as
    /// that many servers run them; producers are spread over them.
    #[arg(long, default_value_t = 1)]
    servers: usize,
}

/// Where the benchmark's ledgers live: files of a temporary folder, or schemas of a PostgreSQL
/// database named after this process (dropped by [`Place::cleanup`]).
struct Place {
    dir: tempfile::TempDir,
    postgres: Option<String>,
}

impl Place {
    /// The target `Store::open` takes for the ledger called `name`.
    fn target(&self, name: &str) -> String {
        match &self.postgres {
            Some(url) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}schema={}", self.schema(name))
            }
            None => self.dir.path().join(format!("{name}.db")).to_string_lossy().into_owned(),
        }
    }

    fn schema(&self, name: &str) -> String {
        format!("bench_{}_{name}", std::process::id())
    }

    /// Drops the PostgreSQL schemas (the folder goes by itself).
    async fn cleanup(&self, names: &[&str]) -> anyhow::Result<()> {
        let Some(url) = &self.postgres else { return Ok(()) };
        let pool = sqlx::PgPool::connect(url).await?;
        for name in names {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema(name)))
                .execute(&pool)
                .await?;
        }
        pool.close().await;
        Ok(())
    }
}

pub async fn run(a: IngestArgs) -> anyhow::Result<()> {
    let postgres = match &a.db {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Some(url.clone()),
        Some(other) => {
            anyhow::bail!("--db takes a postgres:// URL (SQLite runs in a temporary folder): {other}")
        }
        None => None,
    };
    anyhow::ensure!(a.servers >= 1, "--servers must be at least 1");
    anyhow::ensure!(a.servers == 1 || postgres.is_some(), "--servers above 1 needs --db postgres://…");
    let place = Place { dir: tempfile::tempdir()?, postgres };
    let backend = if place.postgres.is_some() { "postgres" } else { "sqlite" };
    println!(
        "bench ingest: {} events, requests of {}, {} producers, {} sequencer(s) on {backend}, durability {:?}, {} cores",
        a.events,
        a.request,
        a.producers,
        a.servers,
        a.durability,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let result = measure(&a, &place, backend).await;
    place.cleanup(&["ledger", "raw"]).await?;
    result
}

async fn measure(a: &IngestArgs, place: &Place, backend: &str) -> anyhow::Result<()> {
    let fx = fixture::ledger_at(&place.target("ledger"), a.durability).await?;
    let envelopes = fixture::envelopes(&fx.worker, a.events);
    let wire: Vec<Vec<u8>> = envelopes.par_iter().map(DecodedEnvelope::to_json).collect();

    let verify_rate = verify_limit(&envelopes, &fx.worker.verifier());
    println!("limit  ed25519 verify (all cores):   {:>10.0} sig/s", verify_rate);

    let commit_rate = commit_limit(&place.target("raw"), a.durability, &envelopes).await?;
    println!("limit  {backend} commit (same rows): {:>10.0} rows/s", commit_rate);

    // Further sequencers open the same ledger through their own pools, as servers do.
    let mut ledgers = vec![fx.ledger.clone()];
    for _ in 1..a.servers {
        let store = Store::open(&place.target("ledger"), a.durability, false).await?;
        ledgers.push(
            assay::ledger::Ledger::open(
                store,
                fx.ledger_key.clone(),
                assay::ledger::LedgerOptions::default(),
            )
            .await?,
        );
    }
    let ingest_rate = ingest(&ledgers, wire, a.request, a.producers).await?;
    println!("ingest verify→sequence→commit:      {:>10.0} events/s", ingest_rate);
    let limit = verify_rate.min(commit_rate);
    println!("ratio  ingest / min(limits):         {:>10.2}", ingest_rate / limit);
    for l in &ledgers {
        l.shutdown().await;
    }

    let t = Instant::now();
    let report = assay::verify::verify(&fx.store, None, |_, _| {}).await?;
    anyhow::ensure!(report.ok, "the benchmark ledger does not verify: {:?}", report.reason);
    println!(
        "check  verify after ingest: ok, {} records in {:.1} s",
        report.records,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Ed25519 batch verification of every signature, spread over all cores.
pub(super) fn verify_limit(envelopes: &[DecodedEnvelope], key: &assay_events::keys::VerifierKey) -> f64 {
    let t = Instant::now();
    let pairs: Vec<_> = envelopes.iter().map(|e| (e, key)).collect();
    let ok = pairs
        .par_chunks(assay_events::dsse::VERIFY_BATCH_MAX)
        .flat_map_iter(assay_events::dsse::verify_many)
        .filter(|ok| *ok)
        .count();
    assert_eq!(ok, envelopes.len(), "every benchmark signature verifies");
    envelopes.len() as f64 / t.elapsed().as_secs_f64()
}

/// Commits the same rows the sequencer would write (records, nodes, checkpoint, head) in
/// batches of the sequencer's size, timing only the commits.
async fn commit_limit(
    target: &str,
    durability: Durability,
    envelopes: &[DecodedEnvelope],
) -> anyhow::Result<f64> {
    let store = Store::open(target, durability, true).await?;
    let batch_events = assay::ledger::LedgerOptions::default().batch_events_max;
    let mut frontier = Frontier::new();
    let mut last = Hash32::ZERO;
    let mut batches = Vec::new();
    for chunk in envelopes.chunks(batch_events) {
        let mut b = CommitBatch { base_size: frontier.size(), ..CommitBatch::default() };
        for env in chunk {
            let r = Record::new(frontier.size(), 0, env.payload.clone(), env.signatures.clone(), last)?;
            b.nodes.extend(frontier.push(leaf_hash(&r.leaf())));
            last = r.record_hash;
            b.records.push(RecordRow::from_record(&r, signatures_canonical_json(&r.signatures)));
        }
        b.checkpoints = vec![assay::store::CheckpointRow {
            size: frontier.size(),
            root: frontier.root(),
            note: "x".repeat(200),
            signed_at_ns: 0,
        }];
        b.head = Some(HeadRow {
            size: frontier.size(),
            record_hash: last,
            frontier: frontier.to_bytes(),
            checkpoint_size: frontier.size(),
        });
        batches.push(b);
    }
    let t = Instant::now();
    for b in &batches {
        store.commit(b).await?;
    }
    let rate = envelopes.len() as f64 / t.elapsed().as_secs_f64();
    store.close().await;
    Ok(rate)
}

/// Producers append requests of wire-form envelopes concurrently, producer i through
/// `ledgers[i % ledgers.len()]`.
async fn ingest(
    ledgers: &[assay::ledger::Ledger],
    wire: Vec<Vec<u8>>,
    request: usize,
    producers: usize,
) -> anyhow::Result<f64> {
    let n = wire.len();
    let requests: Vec<Vec<Vec<u8>>> = wire.chunks(request).map(<[Vec<u8>]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(requests.into_iter()));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..producers {
        let ledger = ledgers[i % ledgers.len()].clone();
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some(req) = next else { return anyhow::Ok(()) };
                let outcome = ledger.append(req.into_iter().map(Incoming::Json).collect()).await?;
                anyhow::ensure!(outcome.acks.iter().all(|a| !a.existed), "fresh events");
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

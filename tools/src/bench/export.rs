//! `bench export`: a ledger of N records (ingested through the real path, durability relaxed,
//! not timed), then, each timed alone:
//! - the limit: a raw read of the same records from SQLite (pages of 8192);
//! - the `events` table written from records already in memory (digest, leaf and chain
//!   checks, the tree, Arrow builders, ZSTD Parquet), and the typed tables likewise (payload
//!   parse, projections fold, verdicts);
//! - `export parquet` from SQLite as the CLI runs it (all tables), and the events table alone,
//!   with their ratios to the raw read.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use assay::export::{ExportError, ExportOptions, LedgerSource, export_parquet};
use assay::ledger::Incoming;
use assay::proof::InclusionProof;
use assay::store::{CheckpointRow, Durability, StoredRecord};

use super::{cpu_secs, fixture};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Records in the ledger.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
}

/// The ledger's records held in memory, in pages handed over (moved, not copied) in order: the
/// export with the database taken out.
#[derive(Clone)]
struct Memory {
    pages: Arc<Mutex<VecDeque<Vec<StoredRecord>>>>,
    checkpoint: CheckpointRow,
}

impl Memory {
    fn new(records: &[StoredRecord], checkpoint: &CheckpointRow) -> Memory {
        let pages = records.chunks(8192).map(<[StoredRecord]>::to_vec).collect();
        Memory { pages: Arc::new(Mutex::new(pages)), checkpoint: checkpoint.clone() }
    }
}

impl LedgerSource for Memory {
    async fn latest_checkpoint(&self) -> Result<CheckpointRow, ExportError> {
        Ok(self.checkpoint.clone())
    }

    /// The next page, whatever `from` (exports read in order).
    async fn records(&self, _from: u64, _limit: u32) -> Result<Vec<StoredRecord>, ExportError> {
        let mut pages = self.pages.lock().map_err(|_| ExportError::Invalid("poisoned".into()))?;
        Ok(pages.pop_front().unwrap_or_default())
    }

    async fn inclusion(&self, _seq: u64, _size: u64) -> Result<InclusionProof, ExportError> {
        Err(ExportError::Invalid("no proofs from memory".into()))
    }
}

fn rate(n: u64, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

/// Runs `f`, printing its rate over `n` records and its CPU time per record.
async fn timed<T, F: std::future::Future<Output = Result<T, ExportError>>>(
    what: &str,
    n: u64,
    f: F,
) -> anyhow::Result<f64> {
    let (t, cpu) = (Instant::now(), cpu_secs());
    f.await?;
    let r = rate(n, t);
    let us = (cpu_secs() - cpu) * 1e6 / n as f64;
    println!("{what:<44} {r:>10.0} records/s  ({us:.2} CPU-µs/record)");
    Ok(r)
}

fn du(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                total += e.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

pub async fn run(a: ExportArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("bench export: {} records, {cores} cores", a.events);
    let fx = fixture::ledger(dir.path(), Durability::Relaxed).await?;
    let t = Instant::now();
    let slice_events = 100_000u64;
    let mut done = 0u64;
    while done < a.events {
        let n = slice_events.min(a.events - done);
        let envelopes = fixture::envelopes_from(&fx.worker, done, n);
        for chunk in envelopes.chunks(1000) {
            fx.ledger.append(chunk.iter().cloned().map(Incoming::Decoded).collect()).await?;
        }
        done += n;
    }
    fx.ledger.shutdown().await;
    let head = fx.store.head().await?.ok_or_else(|| anyhow::anyhow!("an empty ledger"))?;
    let checkpoint = fx
        .store
        .checkpoint_at(head.checkpoint_size)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no checkpoint at the head"))?;
    let size = checkpoint.size;
    println!(
        "setup  {size} records ingested in {:.1} s (not part of the figures)",
        t.elapsed().as_secs_f64()
    );

    // The limit: reading the records.
    let (t, cpu) = (Instant::now(), cpu_secs());
    let mut records = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut pages = fx.store.scan(0, 8192);
    while let Some(page) = pages.recv().await {
        records.extend(page?.into_iter().take_while(|r| r.seq < size));
    }
    let read_rate = rate(size, t);
    anyhow::ensure!(records.len() as u64 == size, "read every record");
    let us = (cpu_secs() - cpu) * 1e6 / size as f64;
    println!(
        "{:<44} {read_rate:>10.0} records/s  ({us:.2} CPU-µs/record)",
        "limit  read records from SQLite:"
    );

    let events_only = ExportOptions { events: true, typed: false, ..ExportOptions::default() };
    let typed_only = ExportOptions { events: false, typed: true, ..ExportOptions::default() };
    let all = ExportOptions::default();
    let out = |name: &str| dir.path().join(name);

    let memory = Memory::new(&records, &checkpoint);
    let events_rate = timed(
        "events table from memory:",
        size,
        export_parquet(&memory, &out("mem-events"), None, &events_only, |_, _| {}),
    )
    .await?;
    println!("       ({:.1} MB on disk)", du(&out("mem-events")) as f64 / 1e6);
    let memory = Memory::new(&records, &checkpoint);
    timed(
        "typed tables + verdicts from memory:",
        size,
        export_parquet(&memory, &out("mem-typed"), None, &typed_only, |_, _| {}),
    )
    .await?;
    drop(records);
    let db_events_rate = timed(
        "export events table from SQLite:",
        size,
        export_parquet(&fx.store, &out("db-events"), None, &events_only, |_, _| {}),
    )
    .await?;
    let db_all_rate = timed(
        "export all tables from SQLite (the CLI):",
        size,
        export_parquet(&fx.store, &out("db-all"), None, &all, |_, _| {}),
    )
    .await?;
    let report = assay::export::verify_export(&out("db-all"), &fx.ledger.ledger_key().clone(), |_, _| {});
    anyhow::ensure!(report.ok, "the export verifies: {:?}", report.reason);
    println!("ratio  events table (memory) / read:          {:>10.2}", events_rate / read_rate);
    println!("ratio  export events (SQLite) / read:         {:>10.2}", db_events_rate / read_rate);
    println!("ratio  export all (SQLite) / read:            {:>10.2}", db_all_rate / read_rate);
    Ok(())
}

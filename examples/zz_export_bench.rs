mod fixture {
    // A fresh ledger with a registered worker, and pre-signed envelopes for it.

    use std::path::Path as FxPath;

    use assay::keyfile;
    use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
    use assay::store::{Durability, Store};
    use assay_events::dsse::DecodedEnvelope;
    use assay_events::keys::SignerKey;
    use rayon::prelude::*;

    pub struct Fixture {
        pub ledger: Ledger,
        pub store: Store,
        pub worker: SignerKey,
    }

    /// Initializes a ledger in `dir` with a worker key registered.
    pub async fn ledger(dir: &FxPath, durability: Durability) -> anyhow::Result<Fixture> {
        let store = Store::open(&dir.join("bench.db").to_string_lossy(), durability, true).await?;
        let ledger_key = keyfile::generate("ledger")?;
        let admin = keyfile::generate("admin")?;
        let worker = keyfile::generate("worker")?;
        let ledger = Ledger::init(
            store.clone(),
            "bench.assay.dev/log",
            ledger_key,
            &[admin.verifier()],
            LedgerOptions::default(),
        )
        .await?;
        let data = serde_json::json!({"vkey": worker.verifier().to_text(), "roles": ["worker"]});
        let env =
            build_envelope(&admin, "key.registered", Some("key/worker"), data, None, assay::clock::now_ns());
        ledger.append(vec![Incoming::Decoded(env)]).await?;
        Ok(Fixture { ledger, store, worker })
    }

    /// `n` metric events signed by `key`, as decoded envelopes (built in parallel).
    pub fn envelopes(key: &SignerKey, n: u64) -> Vec<DecodedEnvelope> {
        envelopes_from(key, 0, n)
    }

    /// Events `first..first + n` of the same series.
    pub fn envelopes_from(key: &SignerKey, first: u64, n: u64) -> Vec<DecodedEnvelope> {
        let t0 = assay::clock::now_ns();
        (first..first + n)
        .into_par_iter()
        .map(|i| {
            let run = format!("r-{:05}", i / 1000);
            let data = serde_json::json!({"run": run, "name": "train/loss", "step": i % 1000, "value": 1.0 / (1.0 + (i % 1000) as f64), "unit": "nats"});
            build_envelope(key, "metric.recorded", Some(&format!("run/{run}")), data, None, t0 + i as i64 * 1000)
        })
        .collect()
    }
}
// `bench export`: a ledger of N records (ingested through the real path, durability relaxed,
// not timed), then, each timed alone:
// - the limit: a raw read of the same records from SQLite (pages of 8192);
// - the `events` table written from records already in memory (digest, leaf and chain
//   checks, the tree, Arrow builders, ZSTD Parquet), and the typed tables likewise (payload
//   parse, projections fold, verdicts);
// - `export parquet` from SQLite as the CLI runs it (all tables), and the events table alone,
//   with their ratios to the raw read.

use std::sync::Arc;
use std::time::Instant;

use assay::export::{ExportError, ExportOptions, LedgerSource, export_parquet};
use assay::ledger::Incoming;
use assay::proof::InclusionProof;
use assay::store::{CheckpointRow, Durability, StoredRecord};

pub struct ExportArgs {
    events: u64,
}

/// The ledger's records held in memory: the export with the database taken out.
#[derive(Clone)]
struct Memory {
    records: Arc<Vec<StoredRecord>>,
    checkpoint: CheckpointRow,
}

impl LedgerSource for Memory {
    async fn latest_checkpoint(&self) -> Result<CheckpointRow, ExportError> {
        Ok(self.checkpoint.clone())
    }

    async fn records(&self, from: u64, limit: u32) -> Result<Vec<StoredRecord>, ExportError> {
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(self.records.len());
        let to = from.saturating_add(limit as usize).min(self.records.len());
        Ok(self.records[from..to].to_vec())
    }

    async fn inclusion(&self, _seq: u64, _size: u64) -> Result<InclusionProof, ExportError> {
        Err(ExportError::Invalid("no proofs from memory".into()))
    }
}

fn rate(n: u64, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
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
    let keep = std::path::PathBuf::from("/tmp/xb/ledger");
    let store = if keep.join("bench.db").exists() {
        assay::store::Store::open(&keep.join("bench.db").to_string_lossy(), Durability::Relaxed, false)
            .await?
    } else {
        std::fs::create_dir_all(&keep)?;
        let fx = fixture::ledger(&keep, Durability::Relaxed).await?;
        let mut done = 0u64;
        while done < a.events {
            let n = 100_000u64.min(a.events - done);
            let envelopes = fixture::envelopes_from(&fx.worker, done, n);
            for chunk in envelopes.chunks(1000) {
                fx.ledger.append(chunk.iter().cloned().map(Incoming::Decoded).collect()).await?;
            }
            done += n;
        }
        fx.ledger.shutdown().await;
        fx.store
    };
    struct Fx {
        store: assay::store::Store,
    }
    let fx = Fx { store };
    let head = fx.store.head().await?.ok_or_else(|| anyhow::anyhow!("an empty ledger"))?;
    let checkpoint = fx
        .store
        .checkpoint_at(head.checkpoint_size)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no checkpoint at the head"))?;
    let size = checkpoint.size;

    // The limit: reading the records.
    let t = Instant::now();
    let mut records = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut pages = fx.store.scan(0, 8192);
    while let Some(page) = pages.recv().await {
        records.extend(page?.into_iter().take_while(|r| r.seq < size));
    }
    let read_rate = rate(size, t);
    anyhow::ensure!(records.len() as u64 == size, "read every record");
    println!("limit  read records from SQLite:              {read_rate:>10.0} records/s");

    let memory = Memory { records: Arc::new(records), checkpoint };
    let events_only = ExportOptions { events: true, typed: false, ..ExportOptions::default() };
    let typed_only = ExportOptions { events: false, typed: true, ..ExportOptions::default() };
    let all = ExportOptions::default();
    let out = |name: &str| dir.path().join(name);

    let only_events = std::env::var("ONLY").is_ok();
    for _ in 0..std::env::var("REPEAT").ok().and_then(|r| r.parse().ok()).unwrap_or(0) {
        let _ = std::fs::remove_dir_all(out("mem-events"));
        export_parquet(&memory, &out("mem-events"), None, &events_only, |_, _| {}).await?;
    }
    let _ = std::fs::remove_dir_all(out("mem-events"));
    let t = Instant::now();
    export_parquet(&memory, &out("mem-events"), None, &events_only, |_, _| {}).await?;
    let events_rate = rate(size, t);
    println!(
        "events table from memory:                   {events_rate:>10.0} records/s ({:.1} MB on disk)",
        du(&out("mem-events")) as f64 / 1e6
    );
    if only_events {
        return Ok(());
    }
    let t = Instant::now();
    export_parquet(&memory, &out("mem-typed"), None, &typed_only, |_, _| {}).await?;
    let typed_rate = rate(size, t);
    println!("typed tables + verdicts from memory:        {typed_rate:>10.0} records/s");
    drop(memory);

    let t = Instant::now();
    export_parquet(&fx.store, &out("db-events"), None, &events_only, |_, _| {}).await?;
    let db_events_rate = rate(size, t);
    println!("export events table from SQLite:            {db_events_rate:>10.0} records/s");
    let t = Instant::now();
    export_parquet(&fx.store, &out("db-all"), None, &all, |_, _| {}).await?;
    let db_all_rate = rate(size, t);
    println!("export all tables from SQLite (the CLI):    {db_all_rate:>10.0} records/s");
    println!("ratio  events table (memory) / read:          {:>10.2}", events_rate / read_rate);
    println!("ratio  export events (SQLite) / read:         {:>10.2}", db_events_rate / read_rate);
    println!("ratio  export all (SQLite) / read:            {:>10.2}", db_all_rate / read_rate);
    Ok(())
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(ExportArgs { events: n }))
}

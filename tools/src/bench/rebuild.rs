//! `bench rebuild`: a ledger of N records (ingested through the real path, durability relaxed,
//! not timed), then (a) rebuilding every projection from the log and (b) a full `verify`,
//! each timed alone. Also the bounds: the raw read of the same records' whole rows through
//! SQLite's C API (`Store::scan`, `verify`'s reader), timed just before and just after the
//! rebuild, the read of only the columns the rebuild reads (`Store::scan_fold`), and Ed25519 batch
//! verification of as many signatures on all cores, which bounds `verify`.
//! Each figure comes with the CPU time per record, steadier than rates on a shared machine.

use std::time::Instant;

use assay::ledger::Incoming;
use assay::store::Durability;

use super::{cpu_secs, fixture};

#[derive(clap::Args)]
pub struct RebuildArgs {
    /// Records in the ledger.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
}

pub async fn run(a: RebuildArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "bench rebuild: {} records, {} cores",
        a.events,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let fx = fixture::ledger(dir.path(), Durability::Relaxed).await?;
    let t = Instant::now();
    // Signed and appended in slices so memory stays bounded.
    let slice_events = 100_000u64;
    let mut done = 0u64;
    while done < a.events {
        let n = slice_events.min(a.events - done);
        let envelopes = fixture::envelopes_from(&fx.worker, done, n);
        let requests: Vec<Vec<Incoming>> =
            envelopes.chunks(1000).map(|c| c.iter().cloned().map(Incoming::Decoded).collect()).collect();
        for r in requests {
            fx.ledger.append(r).await?;
        }
        done += n;
    }
    fx.ledger.shutdown().await;
    let head = fx.store.head().await?.map_or(0, |h| h.size);
    println!(
        "setup  {} records ingested in {:.1} s (not part of the figures)",
        head,
        t.elapsed().as_secs_f64()
    );

    // The signature bound, on envelopes like the ledger's (signed again, not timed).
    let sample = head.min(slice_events);
    let envelopes = fixture::envelopes_from(&fx.worker, 0, sample);
    let cpu = cpu_secs();
    let signature_rate = super::ingest::verify_limit(&envelopes, &fx.worker.verifier());
    println!(
        "limit  ed25519 verify (all cores):   {:>10.0} sig/s      ({:.2} CPU-µs/signature)",
        signature_rate,
        cpu_us(cpu, sample)
    );
    drop(envelopes);

    // The limit, measured on each side of the rebuild so that a change in the machine's load
    // between them shows: the C-API read of the same records' whole rows in pages of 8192 (the
    // pages kept, as the export's limit keeps them, and freed untimed); then the read of only
    // the columns the rebuild reads (five text columns fewer, `Store::scan_fold`).
    let read_before = read_limit(&fx.store, head).await?;
    let (t, cpu) = (Instant::now(), cpu_secs());
    let p = assay::replay::replay(&fx.store, None, |_, _| {}).await?;
    let rebuild_rate = head as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(p.seq() == Some(head - 1), "replay reached the head");
    println!(
        "rebuild all projections:            {:>10.0} records/s  ({:.2} CPU-µs/record)",
        rebuild_rate,
        cpu_us(cpu, head)
    );
    let read_after = read_limit(&fx.store, head).await?;
    let read_rate = (read_before + read_after) / 2.0;
    let fold_read_rate = read_fold_limit(&fx.store, head).await?;

    // The fold alone: records already decoded in memory (signatures verified before).
    let mut records = Vec::with_capacity(usize::try_from(head).unwrap_or(0));
    let mut pages = fx.store.scan(0, 8192);
    while let Some(page) = pages.recv().await {
        for r in page? {
            records.push(r.to_record()?);
        }
    }
    let t = Instant::now();
    let folded = assay_projections::Projections::replay(records.iter());
    let fold_rate = records.len() as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(folded.digests() == p.digests(), "the in-memory fold equals the replay");
    println!("fold all projections (in memory):   {:>10.0} records/s", fold_rate);
    drop(records);

    let (t, cpu) = (Instant::now(), cpu_secs());
    let report = assay::verify::verify(&fx.store, None, |_, _| {}).await?;
    anyhow::ensure!(report.ok, "the ledger verifies: {:?}", report.reason);
    let verify_rate = head as f64 / t.elapsed().as_secs_f64();
    println!(
        "verify (signatures, chain, tree):   {:>10.0} records/s  ({:.2} CPU-µs/record)",
        verify_rate,
        cpu_us(cpu, head)
    );
    println!("ratio  rebuild / read (C API, mean of both):{:>7.2}", rebuild_rate / read_rate);
    println!("ratio  rebuild / read of its columns:{:>10.2}", rebuild_rate / fold_read_rate);
    println!("ratio  verify / read:                {:>10.2}", verify_rate / read_rate);
    println!("ratio  verify / signature limit:     {:>10.2}", verify_rate / signature_rate);
    Ok(())
}

/// Reads records `0..head` through the C API in pages of 8192 (`Store::scan`, the reader of
/// verify and export), keeping them; prints and returns the rate.
async fn read_limit(store: &assay::store::Store, head: u64) -> anyhow::Result<f64> {
    read_pages(store.scan(0, 8192), head, "limit  read records (C API):      ").await
}

/// [`read_limit`] of the columns the rebuild reads (`Store::scan_fold`): the read the rebuild
/// itself starts from.
async fn read_fold_limit(store: &assay::store::Store, head: u64) -> anyhow::Result<f64> {
    read_pages(store.scan_fold(0, 8192), head, "limit  read fold columns (C API): ").await
}

/// Receives pages until `head` records, keeping them (freed untimed); prints and returns the rate.
async fn read_pages<T>(
    mut scan: tokio::sync::mpsc::Receiver<Result<Vec<T>, assay::store::StoreError>>,
    head: u64,
    label: &str,
) -> anyhow::Result<f64> {
    let (t, cpu) = (Instant::now(), cpu_secs());
    let mut pages = Vec::new();
    let mut read = 0u64;
    while read < head {
        let Some(page) = scan.recv().await else { break };
        let page = page?;
        read += page.len() as u64;
        pages.push(page);
    }
    drop(scan);
    let rate = head as f64 / t.elapsed().as_secs_f64();
    let us = cpu_us(cpu, head);
    anyhow::ensure!(read >= head, "read every record");
    drop(pages);
    println!("{label}  {rate:>10.0} records/s  ({us:.2} CPU-µs/record)");
    Ok(rate)
}

/// CPU-µs per record since `cpu` (CPU seconds of this process then), over `n` records.
fn cpu_us(cpu: f64, n: u64) -> f64 {
    (cpu_secs() - cpu) * 1e6 / n.max(1) as f64
}

//! `bench rebuild`: a ledger of N records (ingested through the real path, durability relaxed,
//! not timed), then (a) rebuilding every projection from the log and (b) a full `verify`,
//! each timed alone. Also the bounds: the raw read of the same records, which both share,
//! and Ed25519 batch verification of as many signatures on all cores, which bounds `verify`.
//! Each figure comes with the CPU time per record, steadier than rates on a shared machine.

use std::time::Instant;

use assay::ledger::Incoming;
use assay::store::Durability;
use rayon::prelude::*;

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

    let (t, cpu) = (Instant::now(), cpu_secs());
    let mut read = 0u64;
    let mut next = 0u64;
    while next < head {
        let page = fx.store.records(next, 8192).await?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        read += page.par_iter().map(|r| r.payload.len() as u64).sum::<u64>().min(1);
    }
    let read_rate = head as f64 / t.elapsed().as_secs_f64();
    println!(
        "limit  read records from SQLite:     {:>10.0} records/s  ({:.2} CPU-µs/record, {read} pages)",
        read_rate,
        cpu_us(cpu, head)
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

    let (t, cpu) = (Instant::now(), cpu_secs());
    let p = assay::replay::replay(&fx.store, None, |_, _| {}).await?;
    let rebuild_rate = head as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(p.seq() == Some(head - 1), "replay reached the head");
    println!(
        "rebuild all projections:            {:>10.0} records/s  ({:.2} CPU-µs/record)",
        rebuild_rate,
        cpu_us(cpu, head)
    );

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
    println!("ratio  rebuild / read:               {:>10.2}", rebuild_rate / read_rate);
    println!("ratio  verify / read:                {:>10.2}", verify_rate / read_rate);
    println!("ratio  verify / signature limit:     {:>10.2}", verify_rate / signature_rate);
    Ok(())
}

/// CPU-µs per record since `cpu` (CPU seconds of this process then), over `n` records.
fn cpu_us(cpu: f64, n: u64) -> f64 {
    (cpu_secs() - cpu) * 1e6 / n.max(1) as f64
}

//! `bench growth`: what ingest, proofs and rebuild cost as one ledger grows. A ledger of
//! metric events (SQLite, durability full) is appended to, 1000 events a request as a client
//! batches them, up to each size asked for; at each size it measures the append of the last
//! `--window` events before it (events/s, and the process's CPU-µs an event, which a shared
//! machine's load moves less; the window's envelopes are signed before its clock starts, so
//! neither figure holds the client's signing), `--proofs` inclusion and consistency proofs at
//! random positions against the latest checkpoint (p50, p99, max, through the same function
//! `GET /v1/proof/*` calls, and the most tree-node rows one reads), and a rebuild of
//! every projection from the log (records/s).

use std::time::{Duration, Instant};

use assay::ledger::Incoming;
use assay::store::Durability;
use assay_events::dsse::DecodedEnvelope;
use assay_events::merkle;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fixture::{self, Fixture};

/// Events a request while growing the ledger (a client's batch).
const REQUEST_EVENTS: u64 = 1000;
/// Events signed ahead at a time, so memory stays bounded at any size.
const SLICE_EVENTS: u64 = 100_000;

#[derive(clap::Args)]
pub struct GrowthArgs {
    /// Sizes (records) to measure at, ascending, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    sizes: Vec<u64>,
    /// Events appended just before each size whose rate is reported.
    #[arg(long, default_value_t = 50_000)]
    window: u64,
    /// Proofs of each kind sampled at each size.
    #[arg(long, default_value_t = 2000)]
    proofs: u32,
    /// Leave out the rebuild at each size.
    #[arg(long)]
    no_rebuild: bool,
}

/// p50, p99 and max of `samples`, in microseconds.
fn percentiles_us(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    assert!(!samples.is_empty(), "percentiles of no samples");
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99), at(1.0))
}

/// Appends events `from..to` of the worker's series, `REQUEST_EVENTS` a request.
async fn grow(fx: &Fixture, from: u64, to: u64) -> anyhow::Result<()> {
    let mut next = from;
    // Bounded: each slice advances `next` by at least one event.
    while next < to {
        let n = SLICE_EVENTS.min(to - next);
        append_all(fx, fixture::envelopes_from(&fx.worker, next, n)).await?;
        next += n;
    }
    Ok(())
}

/// Appends signed `envelopes`, `REQUEST_EVENTS` a request.
async fn append_all(fx: &Fixture, envelopes: Vec<DecodedEnvelope>) -> anyhow::Result<()> {
    let mut envelopes = envelopes.into_iter().map(Incoming::Decoded).peekable();
    // Bounded: each request takes at least one envelope.
    while envelopes.peek().is_some() {
        fx.ledger.append(envelopes.by_ref().take(REQUEST_EVENTS as usize).collect()).await?;
    }
    Ok(())
}

pub async fn run(a: GrowthArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.sizes.windows(2).all(|w| w[0] < w[1]), "--sizes must ascend");
    anyhow::ensure!(a.proofs > 0, "--proofs must be at least 1");
    let dir = tempfile::tempdir()?;
    let fx = fixture::ledger(dir.path(), Durability::Full).await?;
    let mut rng = StdRng::seed_from_u64(20);
    println!(
        "bench growth: sizes {:?}, ingest window {} events ({} a request, durability full), {} proofs of each kind",
        a.sizes, a.window, REQUEST_EVENTS, a.proofs
    );
    println!(
        "{:>10} {:>12} {:>10} {:>30} {:>30} {:>6} {:>26}",
        "records",
        "ingest ev/s",
        "CPU-µs/ev",
        "inclusion p50/p99/max µs",
        "consistency p50/p99/max µs",
        "nodes",
        "rebuild rec/s"
    );
    // The registration is record 0; metric events follow it.
    let mut head = fx.store.head().await?.map_or(0, |h| h.size);
    for &size in &a.sizes {
        anyhow::ensure!(
            size > head + a.window,
            "size {size} leaves no room for a window of {} events",
            a.window
        );
        grow(&fx, head - 1, size - a.window - 1).await?;
        // The window is signed before the clock starts: the client's signing is not ingest.
        let window = fixture::envelopes_from(&fx.worker, size - a.window - 1, a.window);
        let (t, cpu) = (Instant::now(), super::cpu_secs());
        append_all(&fx, window).await?;
        let ingest_rate = a.window as f64 / t.elapsed().as_secs_f64();
        let ingest_cpu_us = (super::cpu_secs() - cpu) * 1e6 / a.window as f64;
        head = fx.store.head().await?.map_or(0, |h| h.size);
        anyhow::ensure!(head == size, "the ledger holds {head} records, not {size}");

        let mut inclusion = Vec::with_capacity(a.proofs as usize);
        let mut consistency = Vec::with_capacity(a.proofs as usize);
        let mut rows_max = 0usize;
        for _ in 0..a.proofs {
            let seq = rng.gen_range(0..head);
            rows_max = rows_max.max(merkle::inclusion_plan(seq, head)?.nodes().len());
            let t = Instant::now();
            let p = assay::proof::inclusion(&fx.store, seq, None).await?;
            inclusion.push(t.elapsed());
            anyhow::ensure!(p.tree_size == head, "an inclusion proof at the head");
            let old = rng.gen_range(1..head);
            // The proof's nodes, and those of the two roots it states.
            let roots = merkle::range_nodes(0, old).len() + merkle::range_nodes(0, head).len();
            rows_max = rows_max.max(merkle::consistency_plan(old, head)?.nodes().len() + roots);
            let t = Instant::now();
            let c = assay::proof::consistency(&fx.store, old, head).await?;
            consistency.push(t.elapsed());
            anyhow::ensure!(c.new_size == head, "a consistency proof to the head");
        }
        let (i50, i99, imax) = percentiles_us(inclusion);
        let (c50, c99, cmax) = percentiles_us(consistency);

        let rebuild = if a.no_rebuild {
            "-".to_owned()
        } else {
            let (t, cpu) = (Instant::now(), super::cpu_secs());
            let p = assay::replay::replay(&fx.store, None, |_, _| {}).await?;
            anyhow::ensure!(p.seq() == Some(head - 1), "the rebuild reached the head");
            let cpu_us = (super::cpu_secs() - cpu) * 1e6 / head as f64;
            format!("{:.0} ({cpu_us:.1} CPU-µs)", head as f64 / t.elapsed().as_secs_f64())
        };
        println!(
            "{:>10} {:>12.0} {:>10.1} {:>30} {:>30} {:>6} {:>26}",
            head,
            ingest_rate,
            ingest_cpu_us,
            format!("{i50:.0} / {i99:.0} / {imax:.0}"),
            format!("{c50:.0} / {c99:.0} / {cmax:.0}"),
            rows_max,
            rebuild
        );
    }
    fx.ledger.shutdown().await;
    Ok(())
}

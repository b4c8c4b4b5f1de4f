//! `bench serve`: the HTTP service under load, server and load generator in one process on
//! loopback. Writers post batches of pre-signed envelopes while readers fetch projections;
//! prints ingest events/s and read latency percentiles, with the same reads on an idle server
//! as the baseline. Bounded in events and in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use assay::http::{ServeOptions, Server};
use assay::store::Durability;
use assay_events::dsse::DecodedEnvelope;
use rayon::prelude::*;

use super::fixture;

/// Projection reads, in turn.
const READ_PATHS: &[&str] = &["/v1/queue", "/v1/gpus", "/v1/audit", "/v1/projections/kernels"];

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Envelopes to post.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Envelopes per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent writers (more writers, larger group commits).
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Concurrent projection readers.
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Reads per second each reader sends (paced, open loop).
    #[arg(long, default_value_t = 200)]
    read_rate: u32,
    /// Stop posting after this many seconds even if events remain.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    durability: Durability,
}

pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&a.batch), "--batch must be 1 to 1000");
    let dir = tempfile::tempdir()?;
    println!(
        "bench serve: {} events in requests of {}, {} writers, {} readers at {} reads/s, durability {:?}, {} cores",
        a.events,
        a.batch,
        a.writers,
        a.readers,
        a.read_rate,
        a.durability,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let fx = fixture::ledger(dir.path(), a.durability).await?;
    // The limit: the same requests appended in process (no HTTP), on the same ledger.
    let direct = fixture::envelopes_from(&fx.worker, a.events, a.events / 2);
    let direct: Vec<Vec<Vec<u8>>> =
        direct.par_chunks(a.batch).map(|c| c.iter().map(DecodedEnvelope::to_json).collect()).collect();
    let limit = in_process(&fx.ledger, direct, a.writers).await?;
    println!("limit  in-process ingest (same requests): {limit:>10.0} events/s");
    let envelopes = fixture::envelopes(&fx.worker, a.events);
    let bodies: Vec<Vec<u8>> = envelopes.par_chunks(a.batch).map(body).collect();
    let server = Server::bind(
        fx.ledger.clone(),
        ServeOptions { listen: ([127, 0, 0, 1], 0).into(), ..Default::default() },
    )
    .await?;
    let base = server.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.writers + a.readers).build()?;

    let pace = Duration::from_secs_f64(1.0 / f64::from(a.read_rate.max(1)));
    let idle = read_for(&http, &base, pace, Duration::from_secs(2), None).await?;
    report("idle   projection reads", &idle);

    let posting = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = (0..a.readers)
        .map(|_| {
            let (http, base, posting) = (http.clone(), base.clone(), posting.clone());
            let limit = Duration::from_secs(a.max_seconds + 5);
            tokio::spawn(async move { read_for(&http, &base, pace, limit, Some(posting)).await })
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let posted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
    let started = Instant::now();
    let writers: Vec<_> = (0..a.writers)
        .map(|_| {
            let (http, url, queue, posted) =
                (http.clone(), format!("{base}/v1/events"), queue.clone(), posted.clone());
            let per = a.batch as u64;
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(body) = next else { break };
                    let r =
                        http.post(&url).header("content-type", "application/json").body(body).send().await?;
                    anyhow::ensure!(
                        r.status() == reqwest::StatusCode::CREATED,
                        "append: {}",
                        r.text().await?
                    );
                    posted.fetch_add(per, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for w in writers {
        w.await??;
    }
    let elapsed = started.elapsed();
    posting.store(false, Ordering::Relaxed);
    let mut loaded = Vec::new();
    for r in readers {
        loaded.extend(r.await??);
    }
    let events = posted.load(Ordering::Relaxed);
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "ingest over HTTP, {} readers reading:   {rate:>10.0} events/s  ({events} events in {:.1} s)",
        a.readers,
        elapsed.as_secs_f64()
    );
    println!("ratio  HTTP ingest / in-process:          {:>10.2}", rate / limit);
    report("loaded projection reads", &loaded);

    let _ = stop.send(());
    serving.await??;
    let report = assay::verify::verify(&fx.store, None, |_, _| {}).await?;
    anyhow::ensure!(report.ok, "the benchmark ledger does not verify: {:?}", report.reason);
    println!("check  verify after the run: ok, {} records", report.records);
    Ok(())
}

/// `writers` producers appending the requests through the library; events/s.
async fn in_process(
    ledger: &assay::ledger::Ledger,
    requests: Vec<Vec<Vec<u8>>>,
    writers: usize,
) -> anyhow::Result<f64> {
    let n: usize = requests.iter().map(Vec::len).sum();
    let queue = Arc::new(std::sync::Mutex::new(requests.into_iter()));
    let t = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (ledger, queue) = (ledger.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(req) = next else { return anyhow::Ok(()) };
                    ledger.append(req.into_iter().map(assay::ledger::Incoming::Json).collect()).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// `{"envelopes":[…]}` of a chunk.
fn body(chunk: &[DecodedEnvelope]) -> Vec<u8> {
    let mut out = b"{\"envelopes\":[".to_vec();
    for (i, e) in chunk.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&e.to_json());
    }
    out.extend_from_slice(b"]}");
    out
}

/// Reads projections in turn, one every `pace`, for `limit` (or while `while_set` stays
/// true); the latencies.
async fn read_for(
    http: &reqwest::Client,
    base: &str,
    pace: Duration,
    limit: Duration,
    while_set: Option<Arc<AtomicBool>>,
) -> anyhow::Result<Vec<Duration>> {
    let end = Instant::now() + limit;
    let mut latencies = Vec::new();
    let mut ticks = tokio::time::interval(pace);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for path in READ_PATHS.iter().cycle() {
        ticks.tick().await;
        if Instant::now() >= end || while_set.as_ref().is_some_and(|w| !w.load(Ordering::Relaxed)) {
            break;
        }
        let t = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await?;
        anyhow::ensure!(r.status().is_success(), "GET {path}: {}", r.status());
        r.bytes().await?;
        latencies.push(t.elapsed());
    }
    Ok(latencies)
}

fn report(what: &str, latencies: &[Duration]) {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 * q) as usize).min(ms.len().saturating_sub(1))).copied().unwrap_or(0.0)
    };
    println!(
        "{what:<38} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} reads)",
        at(0.50),
        at(0.99),
        ms.last().copied().unwrap_or(0.0),
        ms.len()
    );
}

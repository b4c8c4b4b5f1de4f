//! `bench serve`: the HTTP service under load, server and load generator in one process on
//! loopback. Writers post batches of pre-signed envelopes while readers fetch projections;
//! prints ingest events/s and read latency percentiles. The limits, measured in the same run:
//! the same requests appended in process (rounds alternate with the HTTP rounds, so both see
//! the same machine), and the same reads on an idle server. Bounded in events and in time.

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
    /// Envelopes each path appends (over HTTP, and in process for the limit).
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
    /// Rounds: each path appends 1/rounds of its events in turn.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Stop starting rounds after this many seconds.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    durability: Durability,
}

pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&a.batch), "--batch must be 1 to 1000");
    let dir = tempfile::tempdir()?;
    println!(
        "bench serve: {} events each way in requests of {}, {} writers, {} readers at {} reads/s, \
         {} rounds, durability {:?}, {} cores",
        a.events,
        a.batch,
        a.writers,
        a.readers,
        a.read_rate,
        a.rounds,
        a.durability,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let fx = fixture::ledger(dir.path(), a.durability).await?;
    // The limit: the same requests appended in process (no HTTP) on the same ledger. The two
    // paths take turns, a round each, so a change in the machine's load touches both alike.
    let direct: Vec<Vec<Vec<u8>>> = fixture::envelopes_from(&fx.worker, a.events, a.events)
        .par_chunks(a.batch)
        .map(|c| c.iter().map(DecodedEnvelope::to_json).collect())
        .collect();
    let bodies: Vec<Vec<u8>> =
        fixture::envelopes(&fx.worker, a.events).par_chunks(a.batch).map(body).collect();
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
    let idle_end = Instant::now() + Duration::from_secs(2);
    let idle =
        read_while(&http, &base, pace, || if Instant::now() < idle_end { Some(true) } else { None }).await?;
    report("idle   projection reads", &idle);

    // Readers read while HTTP rounds post.
    let posting = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..a.readers)
        .map(|_| {
            let (http, base, posting, done) = (http.clone(), base.clone(), posting.clone(), done.clone());
            tokio::spawn(async move {
                let active = || (!done.load(Ordering::Relaxed)).then(|| posting.load(Ordering::Relaxed));
                read_while(&http, &base, pace, active).await
            })
        })
        .collect();
    let rounds = a.rounds.max(1);
    let (direct_per, http_per) = (direct.len().div_ceil(rounds), bodies.len().div_ceil(rounds));
    let (mut direct, mut bodies) = (direct.into_iter(), bodies.into_iter());
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
    let (mut direct_done, mut http_done) = ((0u64, Duration::ZERO), (0u64, Duration::ZERO));
    for _ in 0..rounds {
        if Instant::now() >= deadline {
            break;
        }
        let (n, t) = in_process(&fx.ledger, direct.by_ref().take(direct_per).collect(), a.writers).await?;
        direct_done = (direct_done.0 + n, direct_done.1 + t);
        posting.store(true, Ordering::Relaxed);
        let (n, t) =
            over_http(&http, &base, bodies.by_ref().take(http_per).collect(), a.writers, a.batch).await?;
        posting.store(false, Ordering::Relaxed);
        http_done = (http_done.0 + n, http_done.1 + t);
    }
    done.store(true, Ordering::Relaxed);
    let mut loaded = Vec::new();
    for r in readers {
        loaded.extend(r.await??);
    }
    let limit = direct_done.0 as f64 / direct_done.1.as_secs_f64();
    let rate = http_done.0 as f64 / http_done.1.as_secs_f64();
    println!(
        "limit  in-process ingest (same requests): {limit:>10.0} events/s  ({} events in {:.1} s)",
        direct_done.0,
        direct_done.1.as_secs_f64()
    );
    println!(
        "ingest over HTTP, {} readers reading:      {rate:>10.0} events/s  ({} events in {:.1} s)",
        a.readers,
        http_done.0,
        http_done.1.as_secs_f64()
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

/// `writers` clients posting the request bodies; (events, time taken).
async fn over_http(
    http: &reqwest::Client,
    base: &str,
    bodies: Vec<Vec<u8>>,
    writers: usize,
    batch: usize,
) -> anyhow::Result<(u64, Duration)> {
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let posted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (http, url, queue, posted) =
                (http.clone(), format!("{base}/v1/events"), queue.clone(), posted.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(body) = next else { return anyhow::Ok(()) };
                    let r =
                        http.post(&url).header("content-type", "application/json").body(body).send().await?;
                    anyhow::ensure!(
                        r.status() == reqwest::StatusCode::CREATED,
                        "append: {}",
                        r.text().await?
                    );
                    posted.fetch_add(batch as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((posted.load(Ordering::Relaxed), started.elapsed()))
}

/// `writers` producers appending the requests through the library; (events, time taken).
async fn in_process(
    ledger: &assay::ledger::Ledger,
    requests: Vec<Vec<Vec<u8>>>,
    writers: usize,
) -> anyhow::Result<(u64, Duration)> {
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
    Ok((n as u64, t.elapsed()))
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

/// Reads projections in turn, one every `pace`, while `active()` says so (Some(false):
/// pause, None: stop); the latencies.
async fn read_while(
    http: &reqwest::Client,
    base: &str,
    pace: Duration,
    active: impl Fn() -> Option<bool>,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut ticks = tokio::time::interval(pace);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut paths = READ_PATHS.iter().cycle();
    while let Some(reading) = active() {
        ticks.tick().await;
        if !reading {
            continue;
        }
        let path = paths.next().unwrap_or(&"/v1/queue");
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

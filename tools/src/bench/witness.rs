//! `bench witness`: ingest over HTTP with two C2SP witnesses cosigning every checkpoint, against
//! the same ingest with none, and how long a checkpoint waits for its quorum's cosignatures.
//!
//! Everything runs in one process on loopback: two ledgers (one served without witnesses, one
//! with `--witness` ×2 and quorum 2) and two witness servers with their own state files. The
//! appenders post pre-signed batches; the two servers take turns, a round each, so a change in
//! the machine's load touches both alike. The lag of an append is the time from its
//! acknowledgement (its checkpoint signed) to the first time `/checkpoint` (the latest
//! checkpoint both witnesses cosigned) covers it, polled every `--poll-ms`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use assay::cosigning::WitnessSpec;
use assay::http::{ServeOptions, Server, WitnessServer};
use assay::store::{Durability, WitnessStateStore};
use assay::witness::Witness;
use assay::witness::logs::Logs;
use assay_events::dsse::DecodedEnvelope;
use rayon::prelude::*;
use tokio::sync::Mutex;

use super::fixture;

#[derive(clap::Args)]
pub struct WitnessArgs {
    /// Envelopes each server appends.
    #[arg(long, default_value_t = 40_000)]
    events: u64,
    /// Envelopes per request.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Concurrent appenders.
    #[arg(long, default_value_t = 8)]
    appenders: usize,
    /// Rounds: each server appends 1/rounds of its events in turn.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// How often the lag watcher reads `/checkpoint`, in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Stop starting rounds after this many seconds.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    #[arg(long, value_enum, default_value_t = Durability::Full)]
    durability: Durability,
}

/// Acknowledged appends: (when, the size of the checkpoint that covers them).
type Acks = Arc<Mutex<Vec<(Instant, u64)>>>;

pub async fn run(a: WitnessArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&a.batch), "--batch must be 1 to 1000");
    let dir = tempfile::tempdir()?;
    println!(
        "bench witness: {} events per server in requests of {}, {} appenders, {} rounds, 2 witnesses \
         (quorum 2), durability {:?}, {} cores",
        a.events,
        a.batch,
        a.appenders,
        a.rounds,
        a.durability,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    std::fs::create_dir_all(dir.path().join("plain"))?;
    std::fs::create_dir_all(dir.path().join("witnessed"))?;
    let plain = fixture::ledger(&dir.path().join("plain"), a.durability).await?;
    let witnessed = fixture::ledger(&dir.path().join("witnessed"), a.durability).await?;

    // Two witnesses of the witnessed ledger.
    let logs = Logs::single(witnessed.ledger.origin(), vec![witnessed.ledger_key.verifier()]);
    let mut specs = Vec::new();
    let (stop_witnesses, witnesses_stopped) = tokio::sync::watch::channel(false);
    for name in ["w1", "w2"] {
        let key = assay::keyfile::generate_cosigner(&format!("bench.assay.dev/{name}"))?;
        let vkey = key.verifier();
        let state_path = dir.path().join(format!("{name}.db"));
        let state = WitnessStateStore::open(&state_path.to_string_lossy(), true).await?;
        let server =
            WitnessServer::bind(([127, 0, 0, 1], 0).into(), Arc::new(Witness::new(key, logs.clone(), state)))
                .await?;
        specs.push(WitnessSpec { name: name.to_owned(), url: server.url(), vkey });
        let mut stopped = witnesses_stopped.clone();
        tokio::spawn(server.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
    }

    let serve = |ledger: assay::ledger::Ledger, witnesses: Vec<WitnessSpec>| async move {
        let options = ServeOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            witness_quorum: Some(witnesses.len()),
            witnesses,
            ..Default::default()
        };
        let server = Server::bind(ledger, options).await?;
        let url = server.url();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        anyhow::Ok((url, stop, task))
    };
    let (plain_url, plain_stop, plain_task) = serve(plain.ledger.clone(), Vec::new()).await?;
    let (witnessed_url, witnessed_stop, witnessed_task) = serve(witnessed.ledger.clone(), specs).await?;

    let bodies =
        |key| -> Vec<Vec<u8>> { fixture::envelopes(key, a.events).par_chunks(a.batch).map(body).collect() };
    let (plain_bodies, witnessed_bodies) = (bodies(&plain.worker), bodies(&witnessed.worker));
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.appenders + 2).build()?;

    // The lag watcher: each change of /checkpoint's size, and when it was seen.
    let cosigned: Acks = Arc::default();
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (http, url, cosigned, watching) =
            (http.clone(), format!("{witnessed_url}/checkpoint"), cosigned.clone(), watching.clone());
        let pace = Duration::from_millis(a.poll_ms.max(1));
        tokio::spawn(async move {
            let mut last = 0;
            while watching.load(Ordering::Relaxed) {
                let r = http.get(&url).send().await?;
                if r.status().is_success() {
                    let size = note_size(&r.text().await?)?;
                    if size > last {
                        last = size;
                        cosigned.lock().await.push((Instant::now(), size));
                    }
                }
                tokio::time::sleep(pace).await;
            }
            anyhow::Ok(())
        })
    };

    let rounds = a.rounds.max(1);
    let per = plain_bodies.len().div_ceil(rounds);
    let (mut plain_bodies, mut witnessed_bodies) = (plain_bodies.into_iter(), witnessed_bodies.into_iter());
    let acks: Acks = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
    let (mut plain_done, mut witnessed_done) = ((0u64, Duration::ZERO), (0u64, Duration::ZERO));
    for _ in 0..rounds {
        if Instant::now() >= deadline {
            break;
        }
        let (n, t) = post_all(
            &http,
            &plain_url,
            plain_bodies.by_ref().take(per).collect(),
            a.appenders,
            a.batch,
            None,
        )
        .await?;
        plain_done = (plain_done.0 + n, plain_done.1 + t);
        let batch = witnessed_bodies.by_ref().take(per).collect();
        let (n, t) = post_all(&http, &witnessed_url, batch, a.appenders, a.batch, Some(acks.clone())).await?;
        witnessed_done = (witnessed_done.0 + n, witnessed_done.1 + t);
    }
    // Let the witnesses cosign the last checkpoint (bounded), then stop watching.
    let head = witnessed.ledger.head().borrow().size;
    let settle = Instant::now() + Duration::from_secs(30);
    while cosigned.lock().await.last().is_none_or(|(_, s)| *s < head) && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watching.store(false, Ordering::Relaxed);
    watcher.await??;

    let plain_rate = plain_done.0 as f64 / plain_done.1.as_secs_f64();
    let witnessed_rate = witnessed_done.0 as f64 / witnessed_done.1.as_secs_f64();
    println!(
        "ingest over HTTP, no witness:            {plain_rate:>10.0} events/s  ({} events in {:.1} s)",
        plain_done.0,
        plain_done.1.as_secs_f64()
    );
    println!(
        "ingest over HTTP, 2 witnesses, quorum 2: {witnessed_rate:>10.0} events/s  ({} events in {:.1} s)",
        witnessed_done.0,
        witnessed_done.1.as_secs_f64()
    );
    println!(
        "ratio  with witnesses / without:         {:>10.2}  (target >= 0.9)",
        witnessed_rate / plain_rate
    );

    // Lag: from each acknowledgement to the first /checkpoint covering it.
    let cosigned = cosigned.lock().await.clone();
    let acks = acks.lock().await.clone();
    let mut lags = Vec::with_capacity(acks.len());
    let mut never = 0;
    for (at, size) in &acks {
        match cosigned.iter().find(|(_, s)| s >= size) {
            Some((seen, _)) => lags.push(seen.saturating_duration_since(*at)),
            None => never += 1,
        }
    }
    lags.sort();
    let at = |q: f64| lags.get(((lags.len() as f64 * q) as usize).min(lags.len().saturating_sub(1))).copied();
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    println!(
        "lag    ack -> cosigned by quorum:         p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  ({} appends, {} never cosigned; target p99 < 1000 ms)",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(lags.last().copied()),
        lags.len(),
        never
    );
    println!("checkpoints seen cosigned by the quorum: {}", cosigned.len());

    let _ = plain_stop.send(());
    let _ = witnessed_stop.send(());
    plain_task.await??;
    witnessed_task.await??;
    stop_witnesses.send_replace(true);
    for fx in [&plain, &witnessed] {
        let report = assay::verify::verify(&fx.store, None, |_, _| {}).await?;
        anyhow::ensure!(report.ok, "a benchmark ledger does not verify: {:?}", report.reason);
    }
    println!("check  verify after the run: ok (both ledgers)");
    Ok(())
}

/// The size line of a checkpoint note.
fn note_size(note: &str) -> anyhow::Result<u64> {
    let size = note.lines().nth(1).ok_or_else(|| anyhow::anyhow!("not a checkpoint: {note:?}"))?;
    Ok(size.parse()?)
}

/// `appenders` clients posting the bodies; (events, time taken). With `acks`, each
/// acknowledgement's time and checkpoint size are kept.
async fn post_all(
    http: &reqwest::Client,
    base: &str,
    bodies: Vec<Vec<u8>>,
    appenders: usize,
    batch: usize,
    acks: Option<Acks>,
) -> anyhow::Result<(u64, Duration)> {
    let n = (bodies.len() * batch) as u64;
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|_| {
            let (http, url, queue, acks) =
                (http.clone(), format!("{base}/v1/events"), queue.clone(), acks.clone());
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
                    if let Some(acks) = &acks {
                        let at = Instant::now();
                        let v: serde_json::Value = serde_json::from_str(&r.text().await?)?;
                        let size = note_size(v["checkpoint"].as_str().unwrap_or_default())?;
                        acks.lock().await.push((at, size));
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((n, started.elapsed()))
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

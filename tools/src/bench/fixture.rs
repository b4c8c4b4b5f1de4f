//! A fresh ledger with a registered worker, and pre-signed envelopes for it.

use std::path::Path;

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
    pub ledger_key: SignerKey,
}

/// Initializes a ledger in `dir` with a worker key registered.
pub async fn ledger(dir: &Path, durability: Durability) -> anyhow::Result<Fixture> {
    ledger_at(&dir.join("bench.db").to_string_lossy(), durability).await
}

/// Initializes a ledger at `target` (a SQLite path or a PostgreSQL URL) with a worker key
/// registered.
pub async fn ledger_at(target: &str, durability: Durability) -> anyhow::Result<Fixture> {
    ledger_registering(target, durability, keyfile::generate("worker")?).await
}

/// Initializes a ledger at `target` with `worker` registered (the same key in several
/// ledgers, so one file of envelopes appends to each).
pub async fn ledger_registering(
    target: &str,
    durability: Durability,
    worker: SignerKey,
) -> anyhow::Result<Fixture> {
    let store = Store::open(target, durability, true).await?;
    let ledger_key = keyfile::generate("ledger")?;
    let admin = keyfile::generate("admin")?;
    let ledger = Ledger::init(
        store.clone(),
        "bench.assay.dev/log",
        ledger_key.clone(),
        &[admin.verifier()],
        LedgerOptions::default(),
    )
    .await?;
    let data = serde_json::json!({"vkey": worker.verifier().to_text(), "roles": ["worker"]});
    let env =
        build_envelope(&admin, "key.registered", Some("key/worker"), data, None, assay::clock::now_ns());
    ledger.append(vec![Incoming::Decoded(env)]).await?;
    Ok(Fixture { ledger, store, worker, ledger_key })
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

//! The demonstration lab: a fresh ledger filled with a realistic, seeded history.

mod lab;

use std::path::{Path, PathBuf};

use assay_events::keys::SignerKey;

use crate::clock::now_ns;
use crate::keyfile;
use crate::ledger::{AppendError, Incoming, Ledger, LedgerOptions, OpenError, build_envelope};
use crate::store::{Durability, Store, StoreError};
use crate::verify::{VerifyError, VerifyReport, verify};

/// Size and seed of the generated history.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    /// Research runs to simulate.
    pub runs: u32,
    pub durability: Durability,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { seed: 7, runs: 120, durability: Durability::Relaxed }
    }
}

#[derive(Debug)]
pub struct DemoSummary {
    pub db: PathBuf,
    pub keys: PathBuf,
    pub records: u64,
    pub checkpoint: String,
    pub verify: VerifyReport,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("keys: {0}")]
    Keys(String),
}

/// The producers of the lab, each with its own key.
pub struct Producers {
    pub admin: SignerKey,
    pub dispatcher: SignerKey,
    pub worker: SignerKey,
    pub runner: SignerKey,
    pub author: SignerKey,
    pub auditor: SignerKey,
}

/// Envelopes appended per request.
const DEMO_CHUNK_EVENTS: usize = 1000;

/// Builds the demo ledger in `dir` (which must not hold one yet), then verifies it.
pub async fn build(dir: &Path, options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    let keys_dir = dir.join("keys");
    let db = dir.join("assay.db");
    let key = |name: &str| -> Result<SignerKey, DemoError> {
        let k = keyfile::generate(name).map_err(|e| DemoError::Keys(e.to_string()))?;
        keyfile::write_pair(&keys_dir, &k).map_err(|e| DemoError::Keys(e.to_string()))?;
        Ok(k)
    };
    let ledger_key = key("ledger")?;
    let p = Producers {
        admin: key("admin")?,
        dispatcher: key("dispatcher")?,
        worker: key("worker")?,
        runner: key("runner")?,
        author: key("author")?,
        auditor: key("auditor")?,
    };
    let store = Store::open(&db.to_string_lossy(), options.durability, true).await?;
    let ledger_key_path = keys_dir.join("ledger.key");
    store
        .set_setting(
            "ledger_key_path",
            &std::fs::canonicalize(&ledger_key_path).unwrap_or(ledger_key_path).to_string_lossy(),
        )
        .await?;
    let ledger = Ledger::init(
        store.clone(),
        "demo.assay.dev/lab",
        ledger_key,
        &[p.admin.verifier()],
        LedgerOptions::default(),
    )
    .await?;
    let mut t = now_ns();
    let registrations = [
        (&p.dispatcher, "dispatcher"),
        (&p.worker, "worker"),
        (&p.runner, "runner"),
        (&p.author, "author"),
        (&p.auditor, "auditor"),
    ]
    .iter()
    .map(|(k, role)| {
        t += 1_000_000;
        let data = serde_json::json!({"vkey": k.verifier().to_text(), "roles": [role]});
        Incoming::Decoded(build_envelope(
            &p.admin,
            "key.registered",
            Some(&format!("key/{}", k.name())),
            data,
            None,
            t,
        ))
    })
    .collect();
    ledger.append(registrations).await?;
    let events = lab::history(&p, options, t);
    for chunk in events.chunks(DEMO_CHUNK_EVENTS) {
        ledger.append(chunk.iter().cloned().map(Incoming::Decoded).collect()).await?;
    }
    let head = ledger.head().borrow().clone();
    ledger.shutdown().await;
    let report = verify(&store, None, |_, _| {}).await?;
    store.close().await;
    Ok(DemoSummary {
        db,
        keys: keys_dir,
        records: head.size,
        checkpoint: head.checkpoint.to_string(),
        verify: report,
    })
}

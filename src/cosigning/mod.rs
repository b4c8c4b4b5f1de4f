//! The log side of C2SP tlog-witness (`assay serve --witness NAME=URL=VKEY`,
//! `--witness-quorum K`): a task per witness posts each new checkpoint to it ([`task`]), the
//! cosignatures it returns are checked under its key and kept (`cosignatures` in the store),
//! and the checkpoint endpoints serve notes with them ([`Cosigning::cosigned_note`],
//! [`Cosigning::latest_with_quorum`]).
//!
//! - [`spec`]: one `--witness`; [`status`]: the metrics.
//! - Witness outages never block appends: nothing here is on the append path.

pub mod spec;
pub mod status;
mod task;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use assay_events::note;
use tokio::sync::watch;

use crate::ledger::Ledger;
use crate::store::{CosignatureRow, Store, StoreError, WITNESSES_MAX};
pub use spec::{SpecError, WitnessSpec};
use status::{WitnessLabel, WitnessMetrics};

/// Sizes looked at, largest first, for the latest checkpoint with a quorum.
const QUORUM_CANDIDATES_MAX: u32 = 16;
/// Sizes whose verified cosignatures are kept in memory (served before their store write).
const RECENT_SIZES_MAX: usize = 64;

/// Verified cosignatures of the latest sizes, served at once while their store write waits for
/// the ledger's write lock. A line is an attestation anyone can check, so serving it before it
/// is stored risks nothing; it is stored right after.
#[derive(Debug, Default)]
pub struct Recent(std::sync::Mutex<BTreeMap<u64, Vec<CosignatureRow>>>);

impl Recent {
    fn insert(&self, row: CosignatureRow) {
        let mut sizes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let rows = sizes.entry(row.size).or_default();
        rows.retain(|r| r.witness != row.witness);
        rows.push(row);
        while sizes.len() > RECENT_SIZES_MAX {
            sizes.pop_first();
        }
    }

    fn at(&self, size: u64) -> Vec<CosignatureRow> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&size).cloned().unwrap_or_default()
    }

    /// Sizes with rows from at least `quorum` witnesses, largest first.
    fn sizes_with(&self, quorum: usize) -> Vec<u64> {
        let sizes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sizes.iter().rev().filter(|(_, rows)| rows.len() >= quorum).map(|(s, _)| *s).collect()
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("--witness-quorum {quorum} exceeds the {witnesses} --witness given")]
    Quorum { quorum: usize, witnesses: usize },
    #[error("--witness-quorum needs at least one --witness")]
    QuorumWithoutWitness,
    #[error("more than {WITNESSES_MAX} --witness")]
    TooMany,
    #[error("two --witness are named {0}")]
    DuplicateName(String),
    #[error("two --witness have the key {0}")]
    DuplicateKey(String),
}

/// One witness and what the log knows of it.
#[derive(Debug)]
pub struct WitnessState {
    pub spec: WitnessSpec,
    /// The largest size it cosigned (kept), -1: none.
    cosigned: AtomicI64,
    /// When the head first moved past what it cosigned (ns), 0: it is up to date.
    behind_since_ns: AtomicI64,
}

impl WitnessState {
    fn label(&self) -> WitnessLabel {
        WitnessLabel { witness: self.spec.name.clone() }
    }

    pub fn cosigned(&self) -> Option<u64> {
        u64::try_from(self.cosigned.load(Ordering::Acquire)).ok()
    }

    fn set_cosigned(&self, size: u64, metrics: &WitnessMetrics) {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        self.cosigned.fetch_max(size, Ordering::AcqRel);
        metrics.cosigned_size.get_or_create(&self.label()).set(self.cosigned.load(Ordering::Acquire));
    }

    fn set_behind(&self, behind: bool) {
        if !behind {
            self.behind_since_ns.store(0, Ordering::Release);
        } else {
            let _ = self.behind_since_ns.compare_exchange(
                0,
                crate::clock::now_ns(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

/// The witnesses of one server and the quorum its `/checkpoint` needs.
#[derive(Debug, Default)]
pub struct Cosigning {
    witnesses: Vec<Arc<WitnessState>>,
    quorum: usize,
    metrics: Arc<WitnessMetrics>,
    recent: Arc<Recent>,
}

impl Cosigning {
    /// `quorum` None: every witness.
    pub fn new(specs: Vec<WitnessSpec>, quorum: Option<usize>) -> Result<Cosigning, ConfigError> {
        if specs.len() > WITNESSES_MAX {
            return Err(ConfigError::TooMany);
        }
        for (i, s) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.name == s.name) {
                return Err(ConfigError::DuplicateName(s.name.clone()));
            }
            if specs[..i].iter().any(|o| o.vkey.keyid() == s.vkey.keyid()) {
                return Err(ConfigError::DuplicateKey(s.vkey.keyid()));
            }
        }
        let quorum = quorum.unwrap_or(specs.len());
        if quorum > specs.len() {
            return Err(ConfigError::Quorum { quorum, witnesses: specs.len() });
        }
        if quorum > 0 && specs.is_empty() {
            return Err(ConfigError::QuorumWithoutWitness);
        }
        let metrics = Arc::new(WitnessMetrics::default());
        let witnesses: Vec<Arc<WitnessState>> = specs
            .into_iter()
            .map(|spec| {
                let w =
                    WitnessState { spec, cosigned: AtomicI64::new(-1), behind_since_ns: AtomicI64::new(0) };
                metrics.cosigned_size.get_or_create(&w.label()).set(-1);
                Arc::new(w)
            })
            .collect();
        Ok(Cosigning { witnesses, quorum, metrics, recent: Arc::default() })
    }

    pub fn witnesses(&self) -> &[Arc<WitnessState>] {
        &self.witnesses
    }

    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Starts one task per witness; they end when `stopping` turns true or the ledger stops.
    pub fn start(&self, ledger: &Ledger, stopping: watch::Receiver<bool>) {
        for w in &self.witnesses {
            let recent = self.recent.clone();
            tokio::spawn(task::run(
                ledger.clone(),
                w.clone(),
                self.metrics.clone(),
                recent,
                stopping.clone(),
            ));
        }
    }

    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// Sets the lag gauges against the head (at each scrape).
    pub fn refresh(&self, head_size: u64) {
        let now = crate::clock::now_ns();
        for w in &self.witnesses {
            let label = w.label();
            let behind = head_size.saturating_sub(w.cosigned().unwrap_or(0));
            self.metrics.lag_entries.get_or_create(&label).set(i64::try_from(behind).unwrap_or(i64::MAX));
            let since = w.behind_since_ns.load(Ordering::Acquire);
            let seconds =
                if since == 0 || w.cosigned() == Some(head_size) { 0.0 } else { (now - since) as f64 / 1e9 };
            self.metrics.lag_seconds.get_or_create(&label).set(seconds.max(0.0));
        }
    }

    /// `note` (the ledger's checkpoint at `size`) with the stored cosignatures of configured
    /// witnesses that verify over its body, and how many there are.
    pub async fn cosigned_note(
        &self,
        store: &Store,
        size: u64,
        note: &str,
    ) -> Result<(String, usize), StoreError> {
        if self.witnesses.is_empty() {
            return Ok((note.to_owned(), 0));
        }
        let Ok(parsed) = note::parse(note) else { return Ok((note.to_owned(), 0)) };
        let mut out = note.to_owned();
        let mut count = 0;
        let mut rows = self.recent.at(size);
        for row in store.cosignatures_at(size).await? {
            if !rows.iter().any(|r| r.witness == row.witness) {
                rows.push(row);
            }
        }
        for row in rows {
            let Some(w) = self.witnesses.iter().find(|w| w.spec.vkey.keyid() == row.witness) else {
                continue;
            };
            let Ok(one) = note::parse(&format!("{}\n{}\n", parsed.text, row.line)) else { continue };
            let valid = one.signatures.first().is_some_and(|s| w.spec.vkey.verify(&parsed.text, s).is_ok());
            if valid {
                out.push_str(&row.line);
                out.push('\n');
                count += 1;
            }
        }
        Ok((out, count))
    }

    /// The latest checkpoint with valid cosignatures from at least the quorum, with them.
    pub async fn latest_with_quorum(&self, store: &Store) -> Result<Option<String>, StoreError> {
        let keyids: Vec<String> = self.witnesses.iter().map(|w| w.spec.vkey.keyid()).collect();
        let mut sizes = self.recent.sizes_with(self.quorum);
        sizes.extend(store.sizes_cosigned_by(&keyids, self.quorum, QUORUM_CANDIDATES_MAX).await?);
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        for size in sizes {
            let Some(checkpoint) = store.checkpoint_at(size).await? else { continue };
            let (note, count) = self.cosigned_note(store, size, &checkpoint.note).await?;
            if count >= self.quorum {
                return Ok(Some(note));
            }
        }
        Ok(None)
    }
}

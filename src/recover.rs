//! `assay recover --truncate-to SIZE`: the explicit way back to a log that ends at a checkpoint
//! this ledger signed, after `assay verify` (or a refused open) reported rows no signed
//! checkpoint covers.
//!
//! SIZE must be the size of a stored checkpoint whose note opens under the ledger key (from
//! genesis) and whose root the first SIZE records, folded from their bytes, have. Everything
//! beyond it — records, tree nodes, checkpoints and their witnesses' cosignatures — is removed and the head rewritten at SIZE,
//! in one transaction under the writer lock. The removed records (seq, envelope, the columns as
//! stored), checkpoints with their cosignatures, and the head they replaced, are first written to a new file and
//! synced; the transaction then removes exactly the rows written there, or nothing.
//! Tree nodes are not kept: the records determine them.

use std::io::Write;
use std::path::{Path, PathBuf};

use assay_events::Hash32;
use assay_events::b64::encode_std;
use assay_events::checkpoint::{Checkpoint, CheckpointError};
use assay_events::dsse::{DecodedEnvelope, PAYLOAD_TYPE, signatures_from_json};
use assay_events::keys::{KeyError, VerifierKey};
use assay_events::merkle::{Frontier, leaf_hash};
use serde_json::json;

use crate::store::{
    CheckpointRow, CosignatureRow, HeadRow, Store, StoreError, StoredRecord, Truncated, Truncation,
};

/// Records read per page.
const PAGE_RECORDS: u32 = 4096;
/// Checkpoints read per page.
const CHECKPOINT_PAGE: u32 = 4096;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ledger is not initialized")]
    NotInitialized,
    #[error("--truncate-to must be at least 1: genesis stays")]
    Genesis,
    #[error(
        "no checkpoint is stored at size {size}; --truncate-to takes the size of a signed checkpoint \
         ({nearest})"
    )]
    NotACheckpoint { size: u64, nearest: String },
    /// The log's first SIZE records are not what the ledger signed at SIZE (a verification
    /// failure: choose an earlier checkpoint).
    #[error("cannot truncate to {size}: {reason}")]
    Mismatch { size: u64, reason: Mismatch },
    #[error("writing the removed rows to {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// How the stored log differs from what the ledger signed at the size asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    #[error("record 0 (genesis) is missing")]
    GenesisMissing,
    #[error("genesis: {0}")]
    GenesisUnreadable(StoreError),
    #[error("genesis ledger_key: {0}")]
    GenesisKey(KeyError),
    #[error("the checkpoint at size {size} does not verify under the ledger key: {error}")]
    CheckpointUnverified { size: u64, error: CheckpointError },
    #[error("the checkpoint stored at size {0} is not the ledger's note for it")]
    NotTheLedgersNote(u64),
    #[error("record {0} is missing")]
    RecordMissing(u64),
    /// A stored record whose columns do not parse.
    #[error("{0}")]
    RecordUnreadable(StoreError),
    #[error("record {0} does not extend the chain")]
    BrokenChain(u64),
    #[error("the first {0} records do not have the root signed at size {0}")]
    RootDiffers(u64),
}

/// What [`plan`] found: the truncation to make, once the removed rows are saved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub size: u64,
    /// The head now.
    pub head: HeadRow,
    /// The head at `size`, recomputed from the kept records.
    pub new_head: HeadRow,
    /// False when nothing lies beyond `size` and the head already is `new_head`.
    pub changes: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub size: u64,
    pub removed: Truncated,
    pub file: PathBuf,
}

/// Checks that `size` is a checkpoint the ledger signed over the stored records and computes
/// the head there; changes nothing.
pub async fn plan(store: &Store, size: u64) -> Result<Plan, RecoverError> {
    let head = store.head().await?.ok_or(RecoverError::NotInitialized)?;
    if size == 0 {
        return Err(RecoverError::Genesis);
    }
    let mismatch = |reason: Mismatch| RecoverError::Mismatch { size, reason };
    let Some(cp) = store.checkpoint_at(size).await? else {
        let nearest = match store.checkpoint_at_most(size).await? {
            Some(c) => format!("the nearest below is at size {}", c.size),
            None => "none is stored below it".to_owned(),
        };
        return Err(RecoverError::NotACheckpoint { size, nearest });
    };
    let (key, origin) = genesis(store).await?.map_err(mismatch)?;
    let opened = Checkpoint::open(&cp.note, &key)
        .map_err(|error| mismatch(Mismatch::CheckpointUnverified { size, error }))?;
    if opened.size != size || opened.root != cp.root || opened.origin != origin {
        return Err(mismatch(Mismatch::NotTheLedgersNote(size)));
    }
    let (frontier, last_hash) = fold(store, size).await?.map_err(mismatch)?;
    if frontier.root() != cp.root {
        return Err(mismatch(Mismatch::RootDiffers(size)));
    }
    let new_head =
        HeadRow { size, record_hash: last_hash, frontier: frontier.to_bytes(), checkpoint_size: size };
    let beyond = store.beyond(size).await?.is_some() || !store.checkpoints(size + 1, 1).await?.is_empty();
    Ok(Plan { size, changes: beyond || head != new_head, head, new_head })
}

/// Writes what lies beyond `plan.size` to the new file `out` (never an existing one), syncs it,
/// then truncates the log to `plan.size`, all or nothing.
pub async fn apply(store: &Store, plan: &Plan, out: &Path) -> Result<Recovered, RecoverError> {
    let io = |source| RecoverError::Io { path: out.to_owned(), source };
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(out).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let head = &plan.head;
    let line = json!({
        "kind": "head",
        "size": head.size,
        "record_hash": head.record_hash.to_hex(),
        "frontier": encode_std(&head.frontier),
        "checkpoint_size": head.checkpoint_size,
        "truncated_to": plan.size,
    });
    writeln!(w, "{line}").map_err(io)?;
    let mut records = 0_u64;
    let mut pages = store.scan(plan.size, PAGE_RECORDS);
    while let Some(page) = pages.recv().await {
        for r in page? {
            writeln!(w, "{}", record_line(&r)).map_err(io)?;
            records += 1;
        }
    }
    let mut checkpoints = 0_u64;
    let mut from = plan.size + 1;
    loop {
        let page = store.checkpoints(from, CHECKPOINT_PAGE).await?;
        for c in &page {
            writeln!(w, "{}", checkpoint_line(c)).map_err(io)?;
            checkpoints += 1;
            // Its witnesses' cosignatures go too (the truncation removes them): kept here, they
            // still show what each witness signed.
            for cosig in store.cosignatures_at(c.size).await? {
                writeln!(w, "{}", cosignature_line(&cosig)).map_err(io)?;
            }
        }
        match page.last() {
            Some(last) if page.len() == CHECKPOINT_PAGE as usize => from = last.size + 1,
            _ => break,
        }
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The file's name must survive a crash too, before any row is removed.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    let removed = store
        .truncate(&Truncation {
            size: plan.size,
            expect_head: plan.head.clone(),
            expect_records: records,
            expect_checkpoints: checkpoints,
            head: plan.new_head.clone(),
        })
        .await?;
    Ok(Recovered { size: plan.size, removed, file: out.to_owned() })
}

/// The ledger key and origin genesis names.
/// The outer error is the store failing; the inner one what is wrong with the stored log.
async fn genesis(store: &Store) -> Result<Result<(VerifierKey, String), Mismatch>, StoreError> {
    let Some(first) = store.records(0, 1).await?.into_iter().next().filter(|r| r.seq == 0) else {
        return Ok(Err(Mismatch::GenesisMissing));
    };
    let record = match first.to_record() {
        Ok(r) => r,
        Err(e) => return Ok(Err(Mismatch::GenesisUnreadable(e))),
    };
    let data = &record.event.data;
    let key = match VerifierKey::parse(data["ledger_key"].as_str().unwrap_or_default()) {
        Ok(k) => k,
        Err(e) => return Ok(Err(Mismatch::GenesisKey(e))),
    };
    Ok(Ok((key, data["origin"].as_str().unwrap_or_default().to_owned())))
}

/// The frontier and last record hash of the first `size` records, folded from their bytes
/// (gap-free, each linking to the one before, each stored hash the one its bytes give).
async fn fold(store: &Store, size: u64) -> Result<Result<(Frontier, Hash32), Mismatch>, StoreError> {
    let fetch = store.clone();
    let mut pages = crate::store::read_ahead(0, size, PAGE_RECORDS, move |next, limit| {
        let store = fetch.clone();
        async move { store.records_bulk(next, limit).await }
    });
    let mut frontier = Frontier::new();
    let mut last = Hash32::ZERO;
    while let Some(page) = pages.recv().await {
        for stored in page? {
            let seq = stored.seq;
            if seq != frontier.size() {
                return Ok(Err(Mismatch::RecordMissing(frontier.size())));
            }
            let record = match stored.to_record() {
                Ok(r) => r,
                Err(e) => return Ok(Err(Mismatch::RecordUnreadable(e))),
            };
            if record.prev_hash != last || record.record_hash != stored.record_hash {
                return Ok(Err(Mismatch::BrokenChain(seq)));
            }
            frontier.push(leaf_hash(&record.leaf()));
            last = record.record_hash;
        }
    }
    if frontier.size() != size {
        return Ok(Err(Mismatch::RecordMissing(frontier.size())));
    }
    Ok(Ok((frontier, last)))
}

/// One removed record: its seq, the envelope (re-appendable with `assay append --envelopes`
/// after `jq -c 'select(.kind == "record") | .envelope'`), and every column as stored.
fn record_line(r: &StoredRecord) -> serde_json::Value {
    let parsed = signatures_from_json(&r.signatures);
    let envelope = DecodedEnvelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: r.payload.clone(),
        signatures: parsed.as_ref().cloned().unwrap_or_default(),
    };
    let envelope: serde_json::Value =
        serde_json::from_slice(&envelope.to_json()).unwrap_or(serde_json::Value::Null);
    let mut line = json!({
        "kind": "record",
        "seq": r.seq,
        "envelope": envelope,
        "digest": r.digest.to_hex(),
        "source": r.source,
        "event_id": r.event_id,
        "type": r.ty,
        "subject": r.subject,
        "time": r.time,
        "received_at_ns": r.received_at_ns,
        "prev_hash": r.prev_hash.to_hex(),
        "record_hash": r.record_hash.to_hex(),
    });
    if parsed.is_err() {
        // Kept verbatim: the stored signatures do not parse, so the envelope has none.
        line["signatures_stored"] = encode_std(&r.signatures).into();
    }
    line
}

fn cosignature_line(c: &CosignatureRow) -> serde_json::Value {
    json!({
        "kind": "cosignature",
        "size": c.size,
        "witness": c.witness,
        "line": c.line,
        "cosigned_at": c.cosigned_at,
    })
}

fn checkpoint_line(c: &CheckpointRow) -> serde_json::Value {
    json!({
        "kind": "checkpoint",
        "size": c.size,
        "root": encode_std(&c.root.0),
        "signed_at_ns": c.signed_at_ns,
        "note": c.note,
    })
}

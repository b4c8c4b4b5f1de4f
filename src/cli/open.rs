//! Opening stores and ledgers for commands.

use std::path::Path;

use anyhow::Context;
use assay::blobs::{BLOB_BYTES_MAX_DEFAULT, BlobStore};
use assay::ledger::{Ledger, LedgerOptions};
use assay::store::{Connections, Durability, Store, StoreError};
use assay_events::keys::SignerKey;

use super::{DbTarget, LedgerKeyArgs, keys};

/// The settings key under which `assay init` records the ledger key's path.
pub const LEDGER_KEY_SETTING: &str = "ledger_key_path";

/// Opens an existing store (never creates one).
pub async fn store(db: &impl DbTarget) -> anyhow::Result<Store> {
    existing(db.target(), db.durability()).await
}

/// Opens the ledger at `target` (a SQLite path or a postgres:// URL), which must exist: a
/// missing (or empty) SQLite file is not created, and a database without a ledger is refused,
/// with what to run instead.
pub async fn existing(target: &str, durability: Durability) -> anyhow::Result<Store> {
    existing_with(target, durability, Connections::Shared).await
}

/// [`existing`] with at most `connections` to a SQLite file.
async fn existing_with(
    target: &str,
    durability: Durability,
    connections: Connections,
) -> anyhow::Result<Store> {
    let postgres = target.starts_with("postgres://") || target.starts_with("postgresql://");
    if !postgres {
        let path = Path::new(target.strip_prefix("sqlite://").unwrap_or(target));
        let empty = std::fs::metadata(path).map(|m| m.is_file() && m.len() == 0);
        match empty {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(no_ledger(target)),
            Ok(true) => anyhow::bail!(no_ledger(target)),
            _ => {}
        }
    }
    let store = match Store::open_with(target, durability, false, connections).await {
        Err(StoreError::NoLedger(_)) => anyhow::bail!(no_ledger(target)),
        opened => opened?,
    };
    // No head and no records: nothing was ever initialized here. A log with records but no
    // head row is a damaged ledger, for `assay verify` to report, not a missing one.
    if store.head().await?.is_none() && store.records(0, 1).await?.is_empty() {
        store.close().await;
        anyhow::bail!(no_ledger(target));
    }
    Ok(store)
}

/// `no ledger at PATH: create one with `assay init --db PATH …``.
fn no_ledger(target: &str) -> String {
    let shown = redact(target);
    format!("no ledger at {shown}: create one with `assay init --db {shown} --origin NAME --keys DIR`")
}

/// A URL's password as `***`.
fn redact(target: &str) -> String {
    match (target.find("://"), target.find('@')) {
        (Some(s), Some(at)) if at > s => match target[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &target[..s + 3], &target[at..]),
            None => target.to_owned(),
        },
        _ => target.to_owned(),
    }
}

/// Opens an existing ledger for appending.
pub async fn ledger(db: &impl DbTarget, key: &LedgerKeyArgs) -> anyhow::Result<Ledger> {
    ledger_with(db, key, LedgerOptions::default()).await
}

/// [`ledger`] for a process that appends and exits: as few SQLite connections as the ledger
/// works with (see [`Connections::OneShot`]).
pub async fn one_shot_ledger(db: &impl DbTarget, key: &LedgerKeyArgs) -> anyhow::Result<Ledger> {
    Ok(open_ledger(db, key, LedgerOptions::default(), Connections::OneShot).await?.0)
}

/// [`ledger`] with options (a server follows other writers' commits).
pub async fn ledger_with(
    db: &impl DbTarget,
    key: &LedgerKeyArgs,
    options: LedgerOptions,
) -> anyhow::Result<Ledger> {
    Ok(ledger_and_key(db, key, options).await?.0)
}

/// The ledger and its signing key (which the service also signs audit bundles with).
pub async fn ledger_and_key(
    db: &impl DbTarget,
    key: &LedgerKeyArgs,
    options: LedgerOptions,
) -> anyhow::Result<(Ledger, SignerKey)> {
    open_ledger(db, key, options, Connections::Shared).await
}

async fn open_ledger(
    db: &impl DbTarget,
    key: &LedgerKeyArgs,
    options: LedgerOptions,
    connections: Connections,
) -> anyhow::Result<(Ledger, SignerKey)> {
    let store = existing_with(db.target(), db.durability(), connections).await?;
    // The ledger looks up evidence files in its own store to record `evidence.synced`;
    // opened once the ledger is known to exist there.
    let options = match options.evidence {
        Some(_) => options,
        None => match BlobStore::open(db.target(), BLOB_BYTES_MAX_DEFAULT).await {
            Ok(blobs) => LedgerOptions { evidence: Some(blobs), ..options },
            Err(e) => {
                store.close().await;
                return Err(anyhow::Error::new(e).context("opening the ledger's evidence store"));
            }
        },
    };
    let ledger_key = match &key.ledger_key {
        Some(p) => keys::signer("--ledger-key", p)?,
        None => {
            let path = store
                .setting(LEDGER_KEY_SETTING)
                .await?
                .context("the ledger key's path is not recorded; pass --ledger-key")?;
            keys::signer("the ledger key recorded by `assay init`", Path::new(&path))?
        }
    };
    Ok((Ledger::open(store, ledger_key.clone(), options).await?, ledger_key))
}

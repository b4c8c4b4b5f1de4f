//! Opening stores and ledgers for commands.

use anyhow::Context;
use assay::keyfile;
use assay::ledger::{Ledger, LedgerOptions};
use assay::store::Store;
use assay_events::keys::SignerKey;

use super::{DbArgs, LedgerKeyArgs};

/// The settings key under which `assay init` records the ledger key's path.
pub const LEDGER_KEY_SETTING: &str = "ledger_key_path";

/// Opens an existing store (never creates one).
pub async fn store(db: &DbArgs) -> anyhow::Result<Store> {
    Ok(Store::open(&db.db, db.durability, false).await?)
}

/// Opens an existing ledger for appending.
pub async fn ledger(db: &DbArgs, key: &LedgerKeyArgs) -> anyhow::Result<Ledger> {
    ledger_with(db, key, LedgerOptions::default()).await
}

/// [`ledger`] with options (a server follows other writers' commits).
pub async fn ledger_with(db: &DbArgs, key: &LedgerKeyArgs, options: LedgerOptions) -> anyhow::Result<Ledger> {
    Ok(ledger_and_key(db, key, options).await?.0)
}

/// The ledger and its signing key (which the service also signs audit bundles with).
pub async fn ledger_and_key(
    db: &DbArgs,
    key: &LedgerKeyArgs,
    options: LedgerOptions,
) -> anyhow::Result<(Ledger, SignerKey)> {
    let store = store(db).await?;
    let path = match &key.ledger_key {
        Some(p) => p.clone(),
        None => store
            .setting(LEDGER_KEY_SETTING)
            .await?
            .context("the ledger key's path is not recorded; pass --ledger-key")?
            .into(),
    };
    let ledger_key = keyfile::read_signer(&path).context("reading the ledger key")?;
    Ok((Ledger::open(store, ledger_key.clone(), options).await?, ledger_key))
}

//! `assay init --db PATH --origin NAME --keys DIR`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use assay::keyfile;
use assay::ledger::{Ledger, LedgerOptions};
use assay::store::Store;
use assay_events::keys::{SignerKey, VerifierKey};

use super::open::LEDGER_KEY_SETTING;
use super::{DbArgs, Exit};

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The log's origin line in checkpoints (e.g. `lab.example/assay`).
    #[arg(long)]
    origin: String,
    /// Folder for ledger.key/.vkey and admin.key/.vkey (created if absent; existing keys are reused).
    #[arg(long)]
    keys: PathBuf,
}

/// Loads `DIR/NAME.key` or creates it.
fn key_in(dir: &Path, name: &str) -> anyhow::Result<SignerKey> {
    let (key_path, _) = keyfile::paths(dir, name);
    if key_path.exists() {
        return Ok(keyfile::read_signer(&key_path)?);
    }
    let key = keyfile::generate(name)?;
    keyfile::write_pair(dir, &key)?;
    Ok(key)
}

pub async fn run(a: InitArgs) -> anyhow::Result<Exit> {
    anyhow::ensure!(
        !a.origin.is_empty() && !a.origin.contains('\n') && !a.origin.chars().any(char::is_whitespace),
        "--origin must be one word without spaces (it is the first line of every checkpoint)"
    );
    let store = Store::open(&a.db.db, a.db.durability, true).await?;
    if let Some(head) = store.head().await? {
        anyhow::bail!(
            "{} already holds a ledger of {} records; refusing to re-initialize",
            a.db.db,
            head.size
        );
    }
    let ledger_key = key_in(&a.keys, "ledger")?;
    let admin = key_in(&a.keys, "admin")?;
    let key_path =
        std::fs::canonicalize(keyfile::paths(&a.keys, "ledger").0).context("locating the ledger key")?;
    store.set_setting(LEDGER_KEY_SETTING, &key_path.to_string_lossy()).await?;
    let admins: Vec<VerifierKey> = vec![admin.verifier()];
    let ledger = Ledger::init(store, &a.origin, ledger_key, &admins, LedgerOptions::default()).await?;
    let checkpoint = ledger.head().borrow().checkpoint.to_string();
    ledger.shutdown().await;
    outln!("initialized {} (origin {})", a.db.db, a.origin);
    outln!("ledger key: {}", key_path.display());
    outln!("admin key:  {}", std::fs::canonicalize(keyfile::paths(&a.keys, "admin").0)?.display());
    out!("{checkpoint}");
    Ok(Exit::Ok)
}

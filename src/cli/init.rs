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

/// Loads `DIR/STEM.key` or creates it, naming a new key `name`.
fn key_in(dir: &Path, stem: &str, name: &str) -> anyhow::Result<SignerKey> {
    let (key_path, _) = keyfile::paths(dir, stem);
    if key_path.exists() {
        return Ok(keyfile::read_signer(&key_path)?);
    }
    let key = keyfile::generate(name)?;
    keyfile::write_pair_as(dir, stem, &key)?;
    Ok(key)
}

pub async fn run(a: InitArgs) -> anyhow::Result<Exit> {
    anyhow::ensure!(
        assay_events::keys::valid_key_name(&a.origin),
        "--origin must be one word without spaces, control characters or `+` (it is the first line of every checkpoint, and the name of the ledger's key)"
    );
    let store = Store::open(&a.db.db, a.db.durability, true).await?;
    if let Some(head) = store.head().await? {
        anyhow::bail!(
            "{} already holds a ledger of {} records; refusing to re-initialize",
            a.db.db,
            head.size
        );
    }
    // C2SP tlog-checkpoint: the log's key is named after its origin, so that a note verifier
    // finds it by the checkpoint's first line. A ledger.key already in DIR keeps its name
    // (ledgers made before were signed by a key named `ledger`, and still verify).
    let ledger_key = key_in(&a.keys, "ledger", &a.origin)?;
    let admin = key_in(&a.keys, "admin", "admin")?;
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

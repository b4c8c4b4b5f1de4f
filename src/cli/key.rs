//! `assay key new|register|revoke`.

use std::path::PathBuf;

use assay::keyfile;
use assay::ledger::{AppendError, Incoming, build_envelope};
use assay_events::EventType;
use assay_events::roles::Role;

use super::{DbArgs, Exit, LedgerKeyArgs, keys, open, suggest};

/// The roles `--role` grants.
const ROLES: &[&str] = &["admin", "dispatcher", "worker", "runner", "author", "auditor"];

#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Write DIR/NAME.key and DIR/NAME.vkey.
    New {
        /// The key's name (it signs as assay:key/NAME).
        name: String,
        /// The folder to write NAME.key and NAME.vkey into (created if absent).
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a key with roles (signed by an admin key).
    Register {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        ledger_key: LedgerKeyArgs,
        /// The admin's signing key.
        #[arg(long)]
        signer: PathBuf,
        /// The key to register: its public verifier key (NAME.vkey).
        #[arg(long)]
        vkey: PathBuf,
        /// admin, dispatcher, worker, runner, author or auditor; repeatable.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Revoke a key (signed by an admin key). Revocation is final.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        ledger_key: LedgerKeyArgs,
        /// The admin's signing key.
        #[arg(long)]
        signer: PathBuf,
        /// The key to revoke: its public verifier key (NAME.vkey).
        #[arg(long)]
        vkey: PathBuf,
        /// Why, recorded in the key.revoked event.
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(cmd: KeyCommand) -> anyhow::Result<Exit> {
    match cmd {
        KeyCommand::New { name, out } => {
            let key = keyfile::generate(&name)?;
            let (k, v) = keyfile::write_pair(&out, &key)?;
            outln!("{}", key.verifier().to_text());
            eprintln!("wrote {} and {}", k.display(), v.display());
            Ok(Exit::Ok)
        }
        KeyCommand::Register { db, ledger_key, signer, vkey, roles } => {
            for r in &roles {
                anyhow::ensure!(
                    Role::parse_grantable(r).is_some(),
                    "--role: unknown role {r:?}{}",
                    suggest::hint(r, ROLES)
                );
            }
            let data = serde_json::json!({ "vkey": read_vkey_text(&vkey)?, "roles": roles });
            change(&db, &ledger_key, &signer, EventType::KeyRegistered.as_str(), &vkey, data).await
        }
        KeyCommand::Revoke { db, ledger_key, signer, vkey, reason } => {
            let mut data = serde_json::json!({ "vkey": read_vkey_text(&vkey)? });
            if let Some(r) = reason {
                data["reason"] = r.into();
            }
            change(&db, &ledger_key, &signer, EventType::KeyRevoked.as_str(), &vkey, data).await
        }
    }
}

fn read_vkey_text(path: &std::path::Path) -> anyhow::Result<String> {
    Ok(keys::verifier("--vkey", path)?.to_text())
}

async fn change(
    db: &DbArgs,
    ledger_key: &LedgerKeyArgs,
    signer: &std::path::Path,
    ty: &str,
    vkey: &std::path::Path,
    data: serde_json::Value,
) -> anyhow::Result<Exit> {
    let admin = keys::signer("--signer", signer)?;
    let target = keys::verifier("--vkey", vkey)?;
    let ledger = open::ledger(db, ledger_key).await?;
    let subject = format!("key/{}", target.name());
    let env = build_envelope(&admin, ty, Some(&subject), data, None, assay::clock::now_ns());
    let result = ledger.append(vec![Incoming::Decoded(env)]).await;
    ledger.shutdown().await;
    // Refusals name their class as `assay append` does: `reason [code]`.
    let outcome = result.map_err(|e| match e {
        AppendError::Rejected { reason, .. } => anyhow::anyhow!("{ty}: {reason} [{}]", reason.code()),
        other => other.into(),
    })?;
    let ack = &outcome.acks[0];
    outln!("{ty} {} at seq {} digest {}", target.keyid(), ack.seq, ack.digest);
    Ok(Exit::Ok)
}

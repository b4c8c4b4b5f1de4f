//! `assay token create|revoke`: bearer tokens for reading over HTTP beyond loopback.

use anyhow::Context;

use super::{DbArgs, Exit, open};

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Create a read token named NAME and print it (once: only its hash is stored).
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// The token's name (to revoke it by).
        #[arg(long)]
        name: String,
    },
    /// Revoke the read token named NAME; servers refuse it at once.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        /// The name given at `assay token create`.
        #[arg(long)]
        name: String,
    },
}

pub async fn run(cmd: TokenCommand) -> anyhow::Result<Exit> {
    match cmd {
        TokenCommand::Create { db, name } => {
            anyhow::ensure!(
                !name.is_empty() && !name.chars().any(char::is_control),
                "--name must be a non-empty name"
            );
            let store = open::store(&db).await?;
            let token = assay::tokens::generate();
            let created = store
                .create_read_token(&name, &assay::tokens::hash(&token), assay::clock::now_ns())
                .await
                .context("storing the token")?;
            anyhow::ensure!(created, "a valid token named {name:?} exists; revoke it first");
            outln!("{token}");
            eprintln!("read token {name:?} created; it is shown only now");
        }
        TokenCommand::Revoke { db, name } => {
            let store = open::store(&db).await?;
            let revoked = store.revoke_read_token(&name, assay::clock::now_ns()).await?;
            anyhow::ensure!(revoked, "no valid token named {name:?}");
            outln!("revoked read token {name:?}");
        }
    }
    Ok(Exit::Ok)
}

//! `assay proof inclusion|consistency`.

use super::remote::ServerArgs;
use super::{Exit, ReadDbArgs, open};

#[derive(clap::Subcommand)]
pub enum ProofCommand {
    /// Inclusion of record SEQ in the tree of a signed checkpoint.
    Inclusion {
        #[command(flatten)]
        db: ReadDbArgs,
        #[command(flatten)]
        server: ServerArgs,
        /// The record's seq.
        seq: u64,
        /// Tree size of a signed checkpoint (default: the latest).
        #[arg(long)]
        size: Option<u64>,
        /// Print the proof as one line of JSON.
        #[arg(long)]
        json: bool,
    },
    /// Consistency of tree size OLD with the checkpoint signed at NEW.
    Consistency {
        #[command(flatten)]
        db: ReadDbArgs,
        #[command(flatten)]
        server: ServerArgs,
        /// The older tree size.
        old: u64,
        /// The newer tree size, that of a signed checkpoint.
        new: u64,
        /// Print the proof as one line of JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: ProofCommand) -> anyhow::Result<Exit> {
    let (value, json) = match cmd {
        ProofCommand::Inclusion { db, server, seq, size, json } => match server.client()? {
            Some(c) => (serde_json::to_value(c.inclusion(seq, size).await?)?, json),
            None => {
                let store = open::store(&db).await?;
                (serde_json::to_value(assay::proof::inclusion(&store, seq, size).await?)?, json)
            }
        },
        ProofCommand::Consistency { db, server, old, new, json } => match server.client()? {
            Some(c) => (serde_json::to_value(c.consistency(old, new).await?)?, json),
            None => {
                let store = open::store(&db).await?;
                (serde_json::to_value(assay::proof::consistency(&store, old, new).await?)?, json)
            }
        },
    };
    if json {
        outln!("{}", serde_json::to_string(&value)?);
    } else {
        outln!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(Exit::Ok)
}

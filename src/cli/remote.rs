//! `--server URL`: commands that talk to a running `assay serve` instead of opening `--db`.

use assay::client::{Client, ClientError};

/// For commands that can use the HTTP service.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Use the HTTP service at URL (e.g. http://127.0.0.1:8080) instead of opening --db.
    #[arg(long, value_name = "URL", conflicts_with = "db")]
    pub server: Option<String>,
    /// Bearer token for reads (a server beyond loopback requires one).
    #[arg(long, env = "ASSAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ServerArgs {
    /// The client, when --server is given.
    pub fn client(&self) -> anyhow::Result<Option<Client>> {
        match &self.server {
            Some(url) => Ok(Some(Client::new(url)?.with_token(self.token.clone()))),
            None => Ok(None),
        }
    }
}

/// A client error for people: `line N: …` when the server names an envelope.
pub fn at_line(e: ClientError, linenos: &[usize], first: usize) -> anyhow::Error {
    match e {
        ClientError::Api { index: Some(i), detail, error, .. } => {
            anyhow::anyhow!("line {}: {detail} [{error}]", linenos.get(first + i).copied().unwrap_or(0))
        }
        other => other.into(),
    }
}

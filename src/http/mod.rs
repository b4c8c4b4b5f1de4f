//! The HTTP service (DESIGN §8): axum routes over a running ledger. Only this module knows
//! HTTP servers.
//!
//! - [`events`]: append (one envelope or a batch), list, by digest.
//! - [`stream`]: Server-Sent Events from a seq, catch-up then live.
//! - [`proofs`]: checkpoint, inclusion and consistency proofs; [`tiles`]: the tree as C2SP tlog-tiles.
//! - [`projections`]: live projections and `?at=SEQ` replays; audit; queue; gpus.
//! - [`campaigns`]: a campaign run's cells and the regression diff of two runs.
//! - [`dispatch`]: the dispatch gate.
//! - [`blobs`]: the evidence store: upload, download, presence.
//! - [`evidence`]: asking the ledger to record `evidence.synced` for files put later.
//! - [`ops`]: `/healthz`, `/metrics`; [`openapi`]: `/v1/openapi.json`.
//! - [`auth`]: read tokens beyond loopback; [`ratelimit`]: per-key write limits.
//! - [`server`]: binding, the router and its limits, graceful shutdown.
//! - [`witness`]: `assay witness serve`, the C2SP tlog-witness route.

pub(crate) mod auth;
mod blobs;
mod blobs_gc;
pub(crate) mod bundle;
pub(crate) mod campaigns;
mod conn;
mod dispatch;
pub(crate) mod error;
pub(crate) mod events;
mod evidence;
mod extract;
mod metrics;
pub mod openapi;
mod ops;
mod options;
mod projections;
mod proofs;
mod ratelimit;
mod rendered;
mod server;
pub(crate) mod state;
mod stream;
mod tiles;
mod unread_body;
pub mod wire;
mod witness;

pub use conn::ConnLimits;
pub use options::ServeOptions;
pub use ratelimit::RateLimit;
pub use server::{ServeError, Server};
pub use witness::WitnessServer;

/// The largest request body.
pub const BODY_BYTES_MAX: usize = 4 << 20;

/// The detail of a 413 for an oversize body.
const BODY_TOO_LARGE: &str =
    "the request body exceeds 4 MiB (4194304 bytes); send fewer envelopes per request";

pub(crate) use bundle::file_stem as bundle_file_stem;

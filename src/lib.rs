//! Assay: an auditable, signed, Merkle-logged event ledger for GPU research work.
//!
//! - [`store`]: SQL storage (only it knows SQL).
//! - [`ledger`]: the sequencer and the append path.
//! - [`verify`]: full verification of a stored ledger.
//! - [`proof`]: inclusion and consistency proofs from the store.
//! - [`schema`]: event `data` schemas.
//! - [`export`]: Parquet exports and offline audit bundles, and their verification.
//! - [`http`]: the HTTP service; [`client`]: its client; [`live`]: projections kept current.
//! - [`campaign_runs`]: a campaign run's launches from the store, and the diff of two runs.
//! - [`report`]: publication-style reports of an artifact and of the corpus.
//! - [`witness`]: a C2SP tlog-witness; [`cosigning`]: the log's side, asking witnesses.
//! - [`view`]: the JSON form of a record; [`tokens`]: read tokens.
//! - `web`: the dashboard, HTML pages over the HTTP service's read model.

pub mod blobs;
pub mod campaign_runs;
pub mod client;
pub mod clock;
pub mod copy;
pub mod cosigning;
pub mod export;
pub mod http;
pub mod keyfile;
pub mod ledger;
pub mod live;
pub mod proof;
pub mod recompute;
pub mod recover;
pub mod replay;
pub mod replay_remote;
pub mod report;
pub mod schema;
pub mod sink;
pub mod store;
pub mod tiles;
pub mod tokens;
pub mod verify;
pub mod view;
pub(crate) mod web;
pub mod witness;
pub mod witnessed;

//! How the ledger leaves the server (DESIGN §8): Parquet exports for analysis, and per-artifact
//! audit bundles, each verifiable offline with nothing but the ledger's verifier key.
//!
//! - [`parquet_export`]: `assay export parquet` — the `events` table (verbatim payloads,
//!   signatures and leaves, partitioned `events/type=<type>/`), the typed tables ([`typed`]),
//!   and the [`manifest`] naming the signed checkpoint the export is consistent with.
//! - [`check`]: `assay verify-export` — the chain, the tree, every signature, key and role,
//!   the checkpoints, every file's digest and row count, and the typed tables re-derived.
//! - [`bundle`]: `assay export bundle` — the DSSE envelopes an artifact's verdict rests on,
//!   in-toto statements per claim, a SLSA verification summary signed by the ledger, and
//!   inclusion proofs in `c2sp.org/tlog-proof@v1` text ([`tlog_proof`]).
//! - [`bundle_check`]: `assay verify-bundle` — all of that checked offline, and the verdict
//!   recomputed from the bundle's events alone.
//! - [`evidence_tar`]: `assay export bundle --with-evidence` — the files of the bundle's
//!   `evidence.captured` events, from the evidence store, in `FILE.evidence.tar`;
//!   [`evidence_check`] checks them against the bundle's signed events.

pub mod bundle;
pub mod bundle_check;
pub mod check;
pub mod check_ahead;
pub mod columns;
pub mod events;
pub mod evidence_check;
pub mod evidence_tar;
pub mod files;
pub mod intoto;
pub mod manifest;
pub mod parquet_export;
pub mod source;
pub mod tlog_proof;
pub mod typed;
pub mod write_behind;

use std::path::{Path, PathBuf};

pub use bundle::{BundleSummary, export_bundle};
pub use bundle_check::{BundleReport, verify_bundle};
pub use check::{ExportReport, verify_export};
pub use manifest::{FileEntry, Manifest};
pub use parquet_export::{ExportOptions, ExportSummary, export_parquet};
pub use source::LedgerSource;

use crate::store::StoreError;

/// Records read per query.
pub const PAGE_RECORDS: u32 = 8192;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The request cannot be served as asked (wrong `--since`, unknown artifact, ...).
    #[error("{0}")]
    Invalid(String),
    /// The source ledger is inconsistent; nothing was exported.
    #[error("the ledger does not verify: {0}")]
    Ledger(String),
    /// Evidence the bundle cites is missing from the store or does not hash to its name: bad
    /// state of the store, not bad input; nothing was written.
    #[error("{0}")]
    Evidence(String),
}

impl ExportError {
    pub fn io(path: &Path, source: std::io::Error) -> ExportError {
        ExportError::Io { path: path.to_owned(), source }
    }
}

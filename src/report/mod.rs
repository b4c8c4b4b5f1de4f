//! Publication-style reports rendered from the ledger at a signed checkpoint.
//!
//! - [`artifact`]: one artifact's report (`assay report --artifact`, `/artifacts/{slug}/report`):
//!   its claims verbatim with their verdicts in words, observed values with intervals and n,
//!   figures, runs, Xids, kernel cells, what could not be checked, and provenance.
//! - [`corpus`]: the corpus report (`assay report --corpus`, `/report`): the headline, the
//!   failing artifacts grouped by reason, and the headline's trend over the checkpoints.
//! - [`page`]: the self-contained HTML shell (inline CSS with print rules) both share.
//!
//! A report is a pure function of the ledger state at its checkpoint: the same state gives the
//! same bytes (no clock, no host, no random order).

pub mod artifact;
pub mod corpus;
pub mod page;

/// The formats a report is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A self-contained, printable HTML page (no external assets).
    Html,
    /// Markdown.
    Md,
}

/// The name a unit enum serializes to (`canonical`, `mean`, `ratio`): how pages and reports
/// write a state or a kind, the same word the JSON uses.
pub fn serde_name(v: impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|s| s.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A slug as a flat file name (its `/` would make a folder), as the audit bundle names it.
pub fn file_stem(slug: &str) -> String {
    crate::http::bundle_file_stem(slug)
}

impl Format {
    /// The file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Md => "md",
        }
    }
}

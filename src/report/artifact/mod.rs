//! One artifact's report (`assay report --artifact`, `/artifacts/{slug}/report`).
//!
//! [`build`] reads it from a ledger at its latest checkpoint through the offline audit
//! bundle's planning ([`crate::export::bundle::plan_with_state`]): the events the report cites
//! are exactly those the bundle holds, each with its inclusion proof, so `assay export bundle`
//! and `assay verify-bundle` re-verify every citation offline. The [`model`] is then rendered
//! as a self-contained HTML page ([`html`]) or as Markdown ([`md`]); both are pure functions of
//! the model, which is a pure function of the ledger at the checkpoint.

mod figures;
pub mod html;
pub mod md;
pub mod model;
mod observed;
mod rows;

use assay_projections::Projections;

pub use model::ArtifactReport;

use super::Format;
use crate::export::ExportError;
use crate::export::bundle::plan_with_state;
use crate::export::source::{LedgerSource, genesis_key};

/// The report of `slug` at the latest checkpoint of `src`, which must verify under the key
/// genesis names. `folded` is as [`crate::export::bundle::plan`] takes it.
pub async fn build<S: LedgerSource>(
    src: &S,
    slug: &str,
    folded: impl FnOnce(u64) -> Option<Projections>,
) -> Result<ArtifactReport, ExportError> {
    let key = genesis_key(src).await?;
    let (plan, state) = plan_with_state(src, slug, &key, folded).await?;
    Ok(model::of(&plan, &state, &key.keyid()))
}

/// The report in `format`.
pub fn render(report: &ArtifactReport, format: Format) -> String {
    match format {
        Format::Html => html::render(report),
        Format::Md => md::render(report),
    }
}

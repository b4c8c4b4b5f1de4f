//! The corpus report (`assay report --corpus`, `/report`): at the ledger's latest signed
//! checkpoint, the headline ("N of M canonical artifacts pass the claim/evidence audit"),
//! every canonical artifact that fails, grouped by the code of each reason it fails for (in
//! words, from [`assay_projections::reasons`]), and the headline at the signed checkpoints
//! before it (the trend).
//!
//! One replay gives it all: records are folded in seq order and the audit is taken each time
//! the fold reaches a sampled checkpoint's size ([`sample`]: at most [`TREND_POINTS_MAX`],
//! spread evenly, the latest always among them), the last of which is the report's state.
//! Nothing in it depends on the clock, the host or hash order, so the same ledger state gives
//! the same bytes.

mod render;

use std::collections::BTreeMap;

use assay_projections::audit::{AuditReport, ClaimVerdict};
use assay_projections::{reason_code, reasons};

use crate::export::ExportError;
use crate::export::source::{LedgerSource, replay_observed};

/// A server's corpus report of its latest checkpoint, kept between requests: (its tree size,
/// the report).
pub type CorpusCache = tokio::sync::Mutex<Option<(u64, std::sync::Arc<CorpusReport>)>>;

/// Points of the trend at most.
pub const TREND_POINTS_MAX: usize = 200;

/// Checkpoints listed per request.
const CHECKPOINTS_PAGE: u32 = 1000;

/// The headline at one signed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendPoint {
    /// The checkpoint's tree size (records folded).
    pub size: u64,
    pub passing: u64,
    pub canonical: u64,
}

/// A failing canonical artifact under one reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub slug: String,
    pub version: Option<u64>,
    /// The reasons' details under this code (claim ids), in the audit's order.
    pub details: Vec<String>,
    /// Why each claim named in `details` has its verdict: `<claim>: <reason in words>`.
    pub why: Vec<String>,
}

/// The failing artifacts that share a reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonGroup {
    pub code: String,
    /// The code in words, its detail left as `…`.
    pub words: String,
    pub artifacts: Vec<Failing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusReport {
    /// The signed checkpoint note the report is built at.
    pub checkpoint: String,
    pub size: u64,
    pub headline: String,
    pub passing: u64,
    pub canonical: u64,
    /// Canonical artifacts that do not pass.
    pub failing: u64,
    /// Most artifacts first, then by code.
    pub reasons: Vec<ReasonGroup>,
    /// Signed checkpoints in the ledger, up to the report's.
    pub checkpoints: u64,
    /// The headline at the sampled checkpoints, ascending; the last is the report's own.
    pub trend: Vec<TrendPoint>,
}

/// At most `max` of `sizes` (ascending), evenly spread by index, the first and last always.
pub fn sample(sizes: &[u64], max: usize) -> Vec<u64> {
    let n = sizes.len();
    if n <= max {
        return sizes.to_vec();
    }
    if max < 2 {
        return sizes[n - 1..].to_vec();
    }
    let mut out: Vec<u64> = (0..max).map(|i| sizes[i * (n - 1) / (max - 1)]).collect();
    out.dedup();
    out
}

/// The sizes of every signed checkpoint up to `size`, ascending. Each page must start past the
/// one before (sizes strictly ascending, at most `size` of them), so a source that repeats
/// itself ends the listing with an error, not a loop.
async fn checkpoint_sizes<S: LedgerSource>(src: &S, size: u64) -> Result<Vec<u64>, ExportError> {
    let mut sizes: Vec<u64> = Vec::new();
    let mut from = 0;
    loop {
        let page = src.checkpoint_sizes(from, CHECKPOINTS_PAGE).await?;
        let Some(&last) = page.last() else { break };
        if page.first().is_some_and(|f| *f < from) || page.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ExportError::Ledger(format!(
                "the checkpoints listed from size {from} are out of order"
            )));
        }
        sizes.extend(page.into_iter().filter(|s| *s <= size && *s > 0));
        if last >= size {
            break;
        }
        from = last + 1;
    }
    if sizes.last() != Some(&size) {
        return Err(ExportError::Ledger(format!("no signed checkpoint is listed at the latest size {size}")));
    }
    Ok(sizes)
}

/// The failing canonical artifacts of `report`, by reason code.
fn by_reason(report: &AuditReport) -> Vec<ReasonGroup> {
    let claims: BTreeMap<(&str, &str), &ClaimVerdict> =
        report.claims.iter().map(|c| ((c.artifact.as_str(), c.claim.as_str()), c)).collect();
    let mut groups: BTreeMap<&str, Vec<Failing>> = BTreeMap::new();
    for a in report.artifacts.iter().filter(|a| a.canonical_version.is_some() && !a.passes) {
        let mut codes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in &a.reasons {
            let details = codes.entry(reason_code(r)).or_default();
            if let Some((_, detail)) = r.split_once(':') {
                details.push(detail.to_owned());
            }
        }
        for (code, details) in codes {
            let why = details
                .iter()
                .filter_map(|id| claims.get(&(a.slug.as_str(), id.as_str())))
                .flat_map(|c| {
                    c.reasons
                        .iter()
                        .map(|r| format!("{}: {}", c.claim, reasons::explain(r).unwrap_or_else(|| r.clone())))
                })
                .collect();
            groups.entry(code).or_default().push(Failing {
                slug: a.slug.clone(),
                version: a.canonical_version,
                details,
                why,
            });
        }
    }
    let mut out: Vec<ReasonGroup> = groups
        .into_iter()
        .map(|(code, artifacts)| {
            let sample = artifacts.first().and_then(|a| a.details.first());
            ReasonGroup { code: code.to_owned(), words: words(code, sample.map(String::as_str)), artifacts }
        })
        .collect();
    out.sort_by(|a, b| b.artifacts.len().cmp(&a.artifacts.len()).then_with(|| a.code.cmp(&b.code)));
    out
}

/// A reason code in words, from the one table of reasons; its detail, if it takes one, as `…`.
fn words(code: &str, detail: Option<&str>) -> String {
    let reason = match detail {
        Some(d) => format!("{code}:{d}"),
        None => code.to_owned(),
    };
    match reasons::lookup(&reason) {
        Some(entry) => match entry.pattern.split_once(':') {
            Some((_, placeholder)) => entry.sentence.replace(placeholder, "…"),
            None => entry.sentence.to_owned(),
        },
        None => format!("Reason {code}."),
    }
}

impl CorpusReport {
    /// The report of `src` at its latest signed checkpoint.
    pub async fn build<S: LedgerSource>(src: &S) -> Result<CorpusReport, ExportError> {
        let head = src.latest_checkpoint().await?;
        let sizes = checkpoint_sizes(src, head.size).await?;
        let sampled = sample(&sizes, TREND_POINTS_MAX);
        let mut trend = Vec::with_capacity(sampled.len());
        let mut next = sampled.iter().copied().peekable();
        let state = replay_observed(src, head.size, |folded, p| {
            if next.peek() == Some(&folded) {
                next.next();
                let r = p.audit_report();
                trend.push(TrendPoint {
                    size: folded,
                    passing: r.artifacts_passing,
                    canonical: r.artifacts_canonical,
                });
            }
        })
        .await?;
        let report = state.audit_report();
        Ok(CorpusReport {
            checkpoint: head.note,
            size: head.size,
            headline: report.headline.clone(),
            passing: report.artifacts_passing,
            canonical: report.artifacts_canonical,
            failing: report.artifacts.iter().filter(|a| a.canonical_version.is_some() && !a.passes).count()
                as u64,
            reasons: by_reason(&report),
            checkpoints: sizes.len() as u64,
            trend,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_bounded_even_and_keep_the_ends() {
        let sizes: Vec<u64> = (1..=1000).collect();
        let s = sample(&sizes, 200);
        assert_eq!(s.len(), 200);
        assert_eq!((s[0], s[199]), (1, 1000));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(&[3, 9], 200), vec![3, 9]);
        assert_eq!(sample(&[], 200), Vec::<u64>::new());
    }

    #[test]
    fn reasons_read_in_words() {
        assert!(words("claim_contradicted", Some("c3")).starts_with("Claim … is contradicted"));
        assert!(words("no_claims", None).starts_with("No claim stands"));
        assert_eq!(words("made_up", None), "Reason made_up.");
    }
}

//! What an artifact's report says, gathered from a bundle plan and the projections at its
//! checkpoint. Every list is in a fixed order (by claim id, run id, seq), so the same ledger
//! state gives the same model and the same bytes.

use std::collections::BTreeSet;

use assay_projections::Projections;
use assay_projections::audit::verdict::reason_class;
use assay_projections::audit::{Audit, Check, ClaimVerdict, Registration, Verdict, VerdictCounts};
use assay_projections::canon::canonical_string;
use assay_projections::reasons::explain;

use super::figures::{Figure, figures_of};
pub use super::observed::Observed;
pub use super::rows::{CellRow, RunRow, XidRow};
use super::rows::{cell_rows, run_row, xid_rows};
use crate::export::bundle::BundlePlan;
use crate::report::serde_name;

/// An artifact's report.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactReport {
    pub slug: String,
    /// The canonical version's title (else the latest version's).
    pub title: Option<String>,
    pub canonical_version: Option<u64>,
    pub passes: bool,
    pub counts: VerdictCounts,
    /// Why it does not pass.
    pub why_not: Vec<Said>,
    pub versions: Vec<VersionRow>,
    pub claims: Vec<ClaimPart>,
    /// Every run a claim rests on, by id.
    pub runs: Vec<RunRow>,
    /// Xids inside those runs' windows, and those attached to their launches.
    pub xids: Vec<XidRow>,
    /// The kernel matrix cells the kernel checks match.
    pub kernel_cells: Vec<CellRow>,
    /// What could not be checked and why: each claim's unsupported findings.
    pub uncertain: Vec<(String, Said)>,
    pub provenance: Provenance,
}

/// A finding: its machine-readable code and the sentence it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub code: String,
    pub words: String,
}

impl Said {
    pub fn of(code: &str) -> Said {
        let words =
            explain(code).unwrap_or_else(|| format!("A finding this report has no sentence for ({code})."));
        Said { code: code.to_owned(), words }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub version: u64,
    pub status: String,
    pub title: Option<String>,
    pub content_digest: Option<String>,
    pub submitted_seq: u64,
    pub canonical: bool,
    pub require_preregistration: bool,
}

/// One claim: verbatim, its verdict in words, and what was observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimPart {
    pub id: String,
    pub statement: String,
    pub location: Option<String>,
    pub kind: &'static str,
    /// The check as asserted (canonical JSON), if the asserted event is cited.
    pub check: Option<String>,
    /// The claimed interval of a group check (`lo..hi`, a side left out unbounded).
    pub claimed: Option<String>,
    pub verdict: Verdict,
    pub registration: Registration,
    pub reasons: Vec<Said>,
    pub observed: Vec<Observed>,
    /// The other context findings (Xids that do not taint, launch counts, failed exits).
    pub notes: Vec<Said>,
    pub runs: Vec<String>,
    pub evidence: Vec<String>,
    pub asserted_seq: u64,
    pub figures: Vec<Figure>,
}

/// Where the report comes from: the signed checkpoint and every event it cites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub origin: String,
    pub size: u64,
    pub root_hex: String,
    /// The checkpoint's signed note, verbatim.
    pub note: String,
    pub ledger_keyid: String,
    pub events: Vec<Cited>,
}

/// A cited event and its inclusion proof in the checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cited {
    pub seq: u64,
    pub ty: String,
    pub digest: String,
    /// `c2sp.org/tlog-proof@v1` text.
    pub proof: String,
}

/// A verdict in words.
pub fn verdict_words(v: Verdict) -> &'static str {
    match v {
        Verdict::Supported => "Supported: the ledger's records bear the claim out.",
        Verdict::Contradicted => "Contradicted: the ledger's records go against the claim.",
        Verdict::Unsupported => "Unsupported: something the claim rests on is missing or inconclusive.",
        Verdict::Tainted => "Tainted: a hardware fault or an unauthorized signer touched its evidence.",
    }
}

/// A registration in words.
pub fn registration_words(r: Registration) -> &'static str {
    match r {
        Registration::Preregistered => {
            "Preregistered: its check was stated before any data it rests on existed."
        }
        Registration::PostHoc => "Post hoc: its check was stated after the data it rests on began to exist.",
    }
}

/// The report of the plan's artifact, `state` being the projections at its checkpoint.
pub fn of(plan: &BundlePlan, state: &Projections, ledger_keyid: &str) -> ArtifactReport {
    let (verdict, claims) = plan.verdicts();
    let slug = plan.slug();
    let entry = state.corpus.artifact(slug);
    let versions: Vec<VersionRow> = entry
        .into_iter()
        .flat_map(|a| {
            a.versions.iter().map(move |(n, v)| VersionRow {
                version: *n,
                status: serde_name(v.status),
                title: v.title.clone(),
                content_digest: v.content_digest.clone(),
                submitted_seq: v.submitted_seq,
                canonical: a.canonical == Some(*n),
                require_preregistration: v.require_preregistration,
            })
        })
        .collect();
    let title = versions.iter().find(|v| v.canonical).or(versions.last()).and_then(|v| v.title.clone());
    let audit = &state.audit;
    let parts: Vec<ClaimPart> = claims.iter().map(|c| claim_part(plan, audit, c)).collect();
    let run_ids: BTreeSet<&str> = claims.iter().flat_map(|c| c.runs.iter().map(String::as_str)).collect();
    let runs = run_ids.iter().filter_map(|id| audit.run(id).map(|f| run_row(id, f))).collect();
    let xids = run_ids.iter().flat_map(|id| xid_rows(audit, id)).collect();
    let kernel_cells = parts.iter().flat_map(|p| cell_rows(audit, slug, &p.id)).collect();
    let uncertain = parts
        .iter()
        .flat_map(|p| {
            p.reasons
                .iter()
                .filter(|r| reason_class(&r.code) == Verdict::Unsupported)
                .map(|r| (p.id.clone(), r.clone()))
        })
        .collect();
    let (checkpoint, note) = plan.checkpoint();
    let provenance = Provenance {
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        root_hex: checkpoint.root.to_hex(),
        note: note.to_owned(),
        ledger_keyid: ledger_keyid.to_owned(),
        events: plan
            .cited()
            .map(|(r, proof)| Cited {
                seq: r.seq,
                ty: r.event.ty.clone(),
                digest: r.digest.to_hex(),
                proof: proof.to_owned(),
            })
            .collect(),
    };
    ArtifactReport {
        slug: slug.to_owned(),
        title,
        canonical_version: verdict.canonical_version,
        passes: verdict.passes,
        counts: verdict.claims,
        why_not: verdict.reasons.iter().map(|r| Said::of(r)).collect(),
        versions,
        claims: parts,
        runs,
        xids,
        kernel_cells,
        uncertain,
        provenance,
    }
}

fn claim_part(plan: &BundlePlan, audit: &Audit, c: &ClaimVerdict) -> ClaimPart {
    let claim = audit.claims().get(&c.artifact).and_then(|m| m.get(&c.claim));
    let asserted = plan.cited().find(|(r, _)| r.seq == c.asserted_seq).map(|(r, _)| r);
    let check = asserted.and_then(|r| r.event.data.get("check")).map(canonical_string);
    let parsed = claim.and_then(|cl| cl.check.as_ref());
    let claimed = parsed.and_then(|ch| match ch {
        Check::Group { claimed, .. }
        | Check::CompareGroups { claimed, .. }
        | Check::Replicated { claimed, .. } => Some(claimed.display()),
        _ => None,
    });
    let (observed, notes) = observed_of(&c.context);
    ClaimPart {
        id: c.claim.clone(),
        statement: claim.map(|cl| cl.statement.clone()).unwrap_or_default(),
        location: claim.and_then(|cl| cl.location.clone()),
        kind: c.kind,
        check,
        claimed,
        verdict: c.verdict,
        registration: c.registration,
        reasons: c.reasons.iter().map(|r| Said::of(r)).collect(),
        figures: parsed.map(|ch| figures_of(audit, ch, &observed)).unwrap_or_default(),
        observed,
        notes,
        runs: c.runs.clone(),
        evidence: c.evidence.clone(),
        asserted_seq: c.asserted_seq,
    }
}

/// The observed values in a verdict's context, by pair (in pair order), and the other context
/// findings in words.
fn observed_of(context: &[String]) -> (Vec<Observed>, Vec<Said>) {
    let mut observed: Vec<Observed> = Vec::new();
    let mut notes = Vec::new();
    for item in context {
        let (code, detail) = item.split_once(':').unwrap_or((item, ""));
        let (value, pair) = match detail.rsplit_once(" (pair ") {
            Some((v, p)) => (v, Some(format!("pair {}", p.trim_end_matches(')')))),
            None => (detail, None),
        };
        let slot = |observed: &mut Vec<Observed>| match observed.iter().position(|o| o.pair == pair) {
            Some(i) => i,
            None => {
                observed.push(Observed { pair: pair.clone(), ..Observed::default() });
                observed.len() - 1
            }
        };
        let field: fn(&mut Observed) -> &mut Option<String> = match code {
            "n" => |o| &mut o.n,
            "estimate" => |o| &mut o.estimate,
            "observed_interval" => |o| &mut o.interval,
            "observed" | "observed_delta" => |o| &mut o.value,
            _ => {
                notes.push(Said::of(item));
                continue;
            }
        };
        let i = slot(&mut observed);
        *field(&mut observed[i]) = Some(value.to_owned());
    }
    // "pair 10" after "pair 9": by the pair's number.
    observed.sort_by_key(|o| o.pair.as_deref().and_then(|p| p[5..].parse::<u32>().ok()).unwrap_or(0));
    (observed, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_splits_into_observed_values_by_pair_and_notes() {
        let context: Vec<String> = [
            "estimate:1.2 (pair 1)",
            "estimate:1.4 (pair 2)",
            "n:3/3 (pair 1)",
            "n:4/4 (pair 2)",
            "observed_interval:1.1..1.3 (pair 1)",
            "observed_interval:1.2..1.6 (pair 2)",
            "xid_application_in_window:13",
        ]
        .map(str::to_owned)
        .to_vec();
        let (observed, notes) = observed_of(&context);
        assert_eq!(observed.len(), 2);
        assert_eq!(observed[0].pair.as_deref(), Some("pair 1"));
        assert_eq!(observed[1].n.as_deref(), Some("4/4"));
        assert_eq!(observed[1].interval.as_deref(), Some("1.2..1.6"));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].words.contains("13"), "{}", notes[0].words);
    }

    #[test]
    fn a_plain_check_has_one_observed_value_and_unknown_codes_still_read_as_words() {
        let (observed, _) = observed_of(&["observed:3.5".to_owned()]);
        assert_eq!(observed, vec![Observed { value: Some("3.5".into()), ..Observed::default() }]);
        assert!(Said::of("no_such_code").words.starts_with("A finding"));
    }
}

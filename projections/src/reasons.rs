//! Every reason code the projections write, in words: one table ([`REASONS`]) that the
//! dashboard (and anything else that shows reasons to people) reads, so a code and its
//! sentence never drift apart between pages.
//!
//! A reason is `code` or `code:detail` ([`crate::reason_code`]). An entry's `pattern` is the
//! reason as the docs write it, `code` or `code:<name>` (the same text as the tables in
//! [`crate::audit::verdict`] and [`crate::gates`]); its `sentence` holds `<name>` where the
//! detail goes. A code with and without a detail (`evidence_missing`,
//! `evidence_missing:<digest>`) has an entry for each form.
//!
//! The codes: artifact verdicts (`not_canonical`, `no_claims`, `claim_<verdict>:<claim>`,
//! `claim_post_hoc:<claim>`),
//! claim verdicts and their context (see [`crate::audit::verdict`]), and the ledger's gates:
//! dispatch refusals and admission rejections (see [`crate::gates`]).

use crate::data::reason_code;

/// A reason code in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason {
    /// `code` or `code:<name>`, as the docs write the reason.
    pub pattern: &'static str,
    /// What it means; `<name>` of the pattern stands for the detail.
    pub sentence: &'static str,
}

const fn r(pattern: &'static str, sentence: &'static str) -> Reason {
    Reason { pattern, sentence }
}

/// Every reason code, in words.
pub const REASONS: &[Reason] = &[
    // Why an artifact does not pass.
    r(
        "not_canonical",
        "No version of the artifact is canonical: none was admitted, or the canonical one was superseded.",
    ),
    r("no_claims", "No claim stands for the artifact: none was asserted, or every one was withdrawn."),
    r("claim_contradicted:<claim>", "Claim <claim> is contradicted by the ledger's records."),
    r("claim_unsupported:<claim>", "Claim <claim> is unsupported: something it rests on is missing."),
    r(
        "claim_post_hoc:<claim>",
        "Claim <claim> was stated after the runs it rests on started, and this version of the artifact requires every claim to be preregistered.",
    ),
    r(
        "claim_tainted:<claim>",
        "Claim <claim> is tainted: a hardware fault or an unauthorized signer touched its evidence.",
    ),
    // Claim verdicts: tainted.
    r(
        "xid_hardware_in_window:<code>",
        "A hardware-class Xid <code> hit the run's GPU while the run was on it.",
    ),
    r("xid_nvlink_in_window:<code>", "An NVLink Xid <code> hit the run's GPU while the run was on it."),
    r(
        "xid_hardware_in_launch:<code>",
        "A hardware-class Xid <code> hit the GPU while one of the run's kernel launches ran on it.",
    ),
    r(
        "xid_nvlink_in_launch:<code>",
        "An NVLink Xid <code> hit the GPU while one of the run's kernel launches ran on it.",
    ),
    r(
        "producer_lacks_role:<keyid>",
        "A cited evidence bundle was signed by key <keyid>, which held neither the worker nor the runner role when it was appended.",
    ),
    // Claim verdicts: unsupported.
    r("evidence_missing", "The claim cites no evidence."),
    r(
        "evidence_missing:<digest>",
        "The cited event <digest> is not an evidence.captured event of the log (yet).",
    ),
    r(
        "evidence_not_synced:<digest>",
        "The files of the cited evidence <digest> are not all in the evidence store (no evidence.synced), and the ledger requires them to be (control.evidence_sync).",
    ),
    r("run_without_evidence:<run>", "Run <run> captured no evidence."),
    r("run_not_finished:<run>", "Run <run> has not finished."),
    r(
        "run_not_started:<run>",
        "Run <run> finished but never started, so there is no window to check for faults.",
    ),
    r("run_not_quiesced:<run>", "Run <run> has not quiesced: its evidence may still be incomplete."),
    r("metric_missing:<run>", "Run <run> recorded no value of the claimed metric."),
    r("kernel_missing", "No completed kernel launch matches the claim's kernel, variant and backend."),
    r(
        "check_invalid",
        "The claim's check cannot be evaluated: an unknown kind, a missing field or a threshold that is not a decimal.",
    ),
    r(
        "inconclusive",
        "The observed confidence interval straddles a bound of the claimed interval: the runs neither support nor contradict the claim.",
    ),
    r(
        "interval_undefined",
        "The observed interval is not a finite number: a ratio over a baseline of zero, or values too large to add.",
    ),
    // Claim verdicts: contradicted.
    r(
        "value_mismatch",
        "The observed value does not meet the claim's threshold (for a claim over groups of runs: the observed interval lies wholly outside the claimed one).",
    ),
    r("kernel_failed", "A matching kernel launch failed its correctness check."),
    r("kernel_faulted", "A matching kernel launch faulted."),
    r("run_failed:<run>", "Run <run> exited with a nonzero code or was killed by a signal."),
    // Context of a claim verdict (never changes it).
    r("observed:<value>", "Observed value: <value>."),
    r("observed_delta:<delta>", "Observed difference: <delta>."),
    r(
        "observed_interval:<interval>",
        "Observed confidence interval (deterministic bootstrap of the claimed statistic across the runs): <interval>.",
    ),
    r("estimate:<value>", "The claimed statistic over the runs themselves: <value>."),
    r("n:<n>", "Runs in the group: <n> (runs/baseline runs for a comparison)."),
    r(
        "xid_application_in_window:<code>",
        "An application-class Xid <code> was seen on the run's GPU during the run (it does not taint).",
    ),
    r(
        "xid_driver_in_window:<code>",
        "A driver-class Xid <code> was seen on the run's GPU during the run (it does not taint).",
    ),
    r(
        "xid_informational_in_window:<code>",
        "An informational Xid <code> was seen on the run's GPU during the run (it does not taint).",
    ),
    r(
        "xid_unknown_in_window:<code>",
        "An Xid <code> of unknown class was seen on the run's GPU during the run (it does not taint).",
    ),
    r(
        "xid_application_in_launch:<code>",
        "An application-class Xid <code> was attached to one of the run's kernel launches (it does not taint).",
    ),
    r(
        "xid_driver_in_launch:<code>",
        "A driver-class Xid <code> was attached to one of the run's kernel launches (it does not taint).",
    ),
    r(
        "xid_informational_in_launch:<code>",
        "An informational Xid <code> was attached to one of the run's kernel launches (it does not taint).",
    ),
    r(
        "xid_unknown_in_launch:<code>",
        "An Xid <code> of unknown class was attached to one of the run's kernel launches (it does not taint).",
    ),
    r("launches:<counts>", "Matching kernel launches: <counts>."),
    r("kernel_error:<error>", "A matching kernel launch reported the error <error>."),
    // The dispatch gate's refusals.
    r("run_not_queued", "The run is unknown or no longer queued."),
    r("paused", "The queue is paused: the gate refuses every request."),
    r("maintenance", "A maintenance window covers the worker or GPU."),
    r("preflight_missing", "The worker never sent a preflight."),
    r("preflight_failed", "The worker's latest preflight is unhealthy."),
    r("preflight_stale", "The worker's latest preflight is too old."),
    r("gpu_required", "The run needs a GPU and the request names none."),
    r("gpu_not_offered:<pci>", "The worker's latest preflight does not offer GPU <pci>."),
    r(
        "gpu_needs_reset:<pci>",
        "GPU <pci> needs a reset: an Xid asked for one and no preflight has found it working since.",
    ),
    r("lane_held_by:<run>", "The GPU lane is held by run <run>, which has not quiesced or been cancelled."),
    r("more_reasons:<n>", "And <n> more reasons, left out."),
    // The admission gate's rejections (also `run_not_finished` and `run_without_evidence`).
    r("content_duplicate_of:<slug>", "The same content was already admitted as <slug>."),
    r(
        "slug_canonical:<slug>@<version>",
        "<slug>@<version> is already canonical: an admin must supersede it before a new version is admitted.",
    ),
    r("version_not_newer", "The version is not above every version of the slug ever admitted."),
];

/// The entry for `reason` (`code` or `code:detail`), if the code is known.
pub fn lookup(reason: &str) -> Option<&'static Reason> {
    let code = reason_code(reason);
    let detailed = reason.len() > code.len();
    REASONS.iter().find(|e| {
        let (c, has_detail) = e.pattern.split_once(':').map_or((e.pattern, false), |(c, _)| (c, true));
        c == code && has_detail == detailed
    })
}

/// `reason` in words, its detail in place; `None` for a code not in [`REASONS`].
pub fn explain(reason: &str) -> Option<String> {
    let entry = lookup(reason)?;
    Some(match (entry.pattern.split_once(':'), reason.split_once(':')) {
        (Some((_, placeholder)), Some((_, detail))) => entry.sentence.replace(placeholder, detail),
        _ => entry.sentence.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::audit::Verdict;
    use crate::audit::verdict::reason_class;

    /// The reasons a doc text names in backticks: `code` or `code:<name>` words.
    fn backticked(text: &str) -> BTreeSet<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| {
                let code = w.split(':').next().unwrap_or("");
                !code.is_empty()
                    && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
            .map(str::to_owned)
            .collect()
    }

    /// `text` without its parenthesized parts.
    fn outside_parentheses(text: &str) -> String {
        let mut depth = 0;
        text.chars()
            .filter(|c| {
                depth += i32::from(*c == '(') - i32::from(*c == ')');
                depth == 0 && *c != ')'
            })
            .collect()
    }

    #[test]
    fn every_claim_reason_of_the_verdict_table_is_in_words_with_its_class() {
        let source = include_str!("audit/verdict.rs");
        let mut rows = 0;
        for line in source.lines().filter(|l| l.starts_with("//! | ")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let class = match cells[1] {
                "tainted" => Verdict::Tainted,
                "unsupported" => Verdict::Unsupported,
                "contradicted" => Verdict::Contradicted,
                _ => continue,
            };
            let codes = outside_parentheses(cells[2]);
            for pattern in backticked(&codes) {
                rows += 1;
                let entry = REASONS.iter().find(|e| e.pattern == pattern);
                assert!(entry.is_some(), "{pattern} of the verdict table has no sentence");
                assert_eq!(reason_class(&pattern), class, "{pattern}");
            }
        }
        assert!(rows >= 15, "read {rows} codes of the verdict table");
    }

    #[test]
    fn every_gate_reason_is_in_words() {
        let source = include_str!("gates.rs");
        let mut found = 0;
        for line in source.lines().filter(|l| l.trim_start().starts_with("/// - `")) {
            // The codes before the first explanation (`code`: …, `code` (…)).
            let head = line.split_once("`: ").map_or(line.to_owned(), |(h, _)| format!("{h}`"));
            for pattern in backticked(&outside_parentheses(&head)) {
                found += 1;
                assert!(
                    REASONS.iter().any(|e| e.pattern == pattern),
                    "{pattern} of gates.rs has no sentence"
                );
            }
        }
        assert!(found >= 12, "read {found} gate codes");
    }

    #[test]
    fn artifact_reasons_and_context_are_in_words() {
        for reason in [
            "not_canonical",
            "no_claims",
            "claim_contradicted:c1",
            "claim_unsupported:c1",
            "claim_tainted:c1",
            "observed:1.5",
            "observed_delta:2 - 1",
            "observed_interval:3.05..3.1 (pair 2)",
            "estimate:3.07",
            "n:5/4",
            "claim_post_hoc:c1",
            "xid_application_in_window:13",
            "xid_driver_in_window:13",
            "xid_informational_in_window:154",
            "xid_unknown_in_window:999",
            "launches:passed=1,failed=0,faulted=0",
            "kernel_error:boom",
            "run_failed:r1",
        ] {
            assert!(explain(reason).is_some(), "{reason}");
        }
    }

    #[test]
    fn the_detail_goes_in_place_and_forms_are_told_apart() {
        assert_eq!(explain("run_not_finished:r-7").unwrap(), "Run r-7 has not finished.");
        assert_eq!(explain("evidence_missing").unwrap(), "The claim cites no evidence.");
        assert!(explain("evidence_missing:abcd").unwrap().contains("abcd"));
        assert_eq!(
            explain("slug_canonical:a/b@3").unwrap(),
            "a/b@3 is already canonical: an admin must supersede it before a new version is admitted."
        );
        // A detail that itself holds colons stays whole.
        assert_eq!(
            explain("kernel_error:cuda: illegal address").unwrap(),
            "A matching kernel launch reported the error cuda: illegal address."
        );
        assert_eq!(explain("no_such_code"), None);
        assert_eq!(explain("paused:extra"), None, "a code known only bare does not take a detail");
        let patterns: BTreeSet<&str> = REASONS.iter().map(|e| e.pattern).collect();
        assert_eq!(patterns.len(), REASONS.len(), "one entry per pattern");
    }
}

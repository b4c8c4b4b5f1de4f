//! A campaign cell's outcome as the matrix and the diff draw it: the outcome in words and in
//! colour (`k-pass`, `k-fail`, `k-fault`; `k-none` for a cell not run), the fault's name and
//! the attached Xids ("CUDA_ERROR_ILLEGAL_ADDRESS · Xid 13"), the duration of a pass, and the
//! fallback that re-ran the cell ("→ fallback route=reference passed").

use std::time::Duration;

use assay_projections::campaign_diff::{Launch, Outcome, Side};
use maud::{Markup, html};
use serde_json::Value;

use crate::web::layout::duration;

/// The colour class of an outcome.
pub fn class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "k-pass",
        Outcome::Failed => "k-fail",
        Outcome::Faulted => "k-fault",
    }
}

/// The worse of two outcomes (faulted, then failed, then passed), for a matrix cell holding
/// several.
pub fn worse(a: Outcome, b: Outcome) -> Outcome {
    a.max(b)
}

/// `CUDA_ERROR_ILLEGAL_ADDRESS · Xid 13`, `Xid 43`, `1.2 ms`: what follows the outcome word.
pub fn detail(launch: &Launch) -> String {
    let mut parts = Vec::new();
    if launch.outcome == Outcome::Faulted {
        parts.push(launch.error.clone().unwrap_or_else(|| "no error name".to_owned()));
    }
    if let Some(xids) = launch.xids_text() {
        parts.push(xids);
    }
    if launch.outcome == Outcome::Passed
        && let Some(us) = launch.duration_us
    {
        parts.push(duration(Duration::from_micros(us)));
    }
    parts.join(" · ")
}

/// The launch: its outcome word, then [`detail`].
pub fn launch(launch: &Launch) -> Markup {
    let detail = detail(launch);
    html! {
        span.outcome { (launch.outcome.as_str()) }
        @if !detail.is_empty() { " " span.detail { (detail) } }
    }
}

/// The axes a fallback changed: `route=reference` (its variant against the primary's).
pub fn overrides(primary: &Value, fallback: &Value) -> String {
    let Some(f) = fallback.as_object() else { return String::new() };
    let changed: Vec<String> = f
        .iter()
        .filter(|(k, v)| primary.get(k.as_str()) != Some(*v))
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    changed.join(" ")
}

/// A cell's side: its primary launch, then the fallback that re-ran it on a line of its own,
/// in its own colour.
pub fn side(side: &Side, variant: &Value) -> Markup {
    html! {
        (launch(&side.launch))
        @if let Some(f) = &side.fallback {
            @let changed = overrides(variant, &f.variant);
            " "
            span.fallback.(class(f.launch.outcome)) data-outcome=(f.launch.outcome.as_str()) {
                "→ fallback "
                @if !changed.is_empty() { span.overrides { (changed) } " " }
                (launch(&f.launch))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use assay_projections::campaign_diff::Fallback;
    use serde_json::json;

    use super::*;

    fn of(outcome: Outcome, error: Option<&str>, xids: &[u64], duration_us: Option<u64>) -> Launch {
        Launch {
            outcome,
            error: error.map(str::to_owned),
            duration_us,
            repeats: None,
            xids: xids.to_vec(),
            launch: Some(0),
            seq: 0,
        }
    }

    #[test]
    fn details_name_the_fault_and_its_xids() {
        let fault = of(Outcome::Faulted, Some("CUDA_ERROR_ILLEGAL_ADDRESS"), &[13], None);
        assert_eq!(detail(&fault), "CUDA_ERROR_ILLEGAL_ADDRESS · Xid 13");
        assert_eq!(detail(&of(Outcome::Failed, None, &[13, 31], Some(5))), "Xid 13, 31");
        assert_eq!(detail(&of(Outcome::Passed, None, &[], Some(1_200))), "1.2 ms");
        assert_eq!(worse(Outcome::Passed, Outcome::Faulted), Outcome::Faulted);
        assert_eq!(worse(Outcome::Failed, Outcome::Passed), Outcome::Failed);
    }

    #[test]
    fn a_side_shows_its_fallback_and_what_it_changed() {
        let variant = json!({"m": 64, "route": "oob"});
        let s = Side {
            launch: of(Outcome::Faulted, Some("SIGNAL_SIGSEGV"), &[], None),
            fallback: Some(Fallback {
                variant: json!({"m": 64, "route": "reference"}),
                launch: of(Outcome::Passed, None, &[], None),
            }),
        };
        let html = side(&s, &variant).into_string();
        assert_eq!(
            html,
            concat!(
                r#"<span class="outcome">faulted</span> <span class="detail">SIGNAL_SIGSEGV</span> "#,
                r#"<span class="fallback k-pass" data-outcome="passed">→ fallback "#,
                r#"<span class="overrides">route=reference</span> <span class="outcome">passed</span></span>"#
            )
        );
    }
}

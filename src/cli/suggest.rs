//! "Did you mean …?" for names a person types: event types, projections, roles.

use assay_events::schemas::EVENT_TYPES;

/// The candidate closest to `given` by edit distance (a transposition counts once), if it is
/// close enough to be a typo: at most 1 edit for short names, about one in four for long ones.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (given.chars().count() / 4).clamp(1, 4);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean "X"?`, or `; one of a, b, c` when nothing is close.
pub fn hint(given: &str, candidates: &[&str]) -> String {
    match closest(given, candidates.iter().copied()) {
        Some(c) => format!("; did you mean {c:?}?"),
        None => format!("; one of {}", candidates.join(", ")),
    }
}

/// Checks an event type against the v1 list: `unknown event type "X"; did you mean "Y"?`.
pub fn event_type(ty: &str) -> Result<(), String> {
    if EVENT_TYPES.contains(&ty) {
        return Ok(());
    }
    let family: Vec<&str> = EVENT_TYPES
        .iter()
        .copied()
        .filter(|t| t.strip_prefix(ty).is_some_and(|r| r.starts_with('.')))
        .collect();
    let more = match closest(ty, EVENT_TYPES.iter().copied()) {
        Some(c) => format!("; did you mean {c:?}?"),
        None if !family.is_empty() => format!("; did you mean one of {}?", family.join(", ")),
        None => format!("; the v1 types are {}", EVENT_TYPES.join(", ")),
    };
    Err(format!("unknown event type {ty:?}{more}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_recognized_and_strangers_are_not() {
        let types = EVENT_TYPES.iter().copied();
        assert_eq!(closest("metric.recordedd", types.clone()), Some("metric.recorded"));
        assert_eq!(closest("metrci.recorded", types.clone()), Some("metric.recorded"));
        assert_eq!(closest("run.start", types.clone()), Some("run.started"));
        assert_eq!(closest("gpu.xids", types.clone()), Some("gpu.xid"));
        assert_eq!(closest("banana", types.clone()), None);
        assert_eq!(closest("qeue", ["queue", "gpus"]), Some("queue"));
        assert_eq!(closest("x", ["queue", "gpus"]), None);
        assert!(event_type("metric.recorded").is_ok());
        let e = event_type("kernel.launch").unwrap_err();
        assert!(e.contains("kernel.launch.completed, kernel.launch.faulted"), "{e}");
        let e = event_type("zzz").unwrap_err();
        assert!(e.contains("the v1 types are ledger.initialized"), "{e}");
    }
}

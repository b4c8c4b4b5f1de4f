//! The projection names, in one list: what `GET /v1/projections/{name}`, `assay replay
//! --projection` and the digests are keyed by.

use serde::Serialize;

/// One projection. `Verdicts` is the audit report (evaluated from `audit`, `keys` and
/// `corpus`), listed so that its digest can be compared too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectionName {
    Keys,
    Queue,
    Corpus,
    Audit,
    Gpus,
    Kernels,
    Verdicts,
}

/// A name that is not a projection's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no projection {0:?}; one of {names}", names = ProjectionName::joined())]
pub struct UnknownProjection(pub String);

impl ProjectionName {
    /// Every projection, in display order.
    pub const ALL: &[ProjectionName] = &[
        ProjectionName::Keys,
        ProjectionName::Queue,
        ProjectionName::Corpus,
        ProjectionName::Audit,
        ProjectionName::Gpus,
        ProjectionName::Kernels,
        ProjectionName::Verdicts,
    ];

    /// The name as it is written in URLs and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProjectionName::Keys => "keys",
            ProjectionName::Queue => "queue",
            ProjectionName::Corpus => "corpus",
            ProjectionName::Audit => "audit",
            ProjectionName::Gpus => "gpus",
            ProjectionName::Kernels => "kernels",
            ProjectionName::Verdicts => "verdicts",
        }
    }

    /// Parses a name written as [`ProjectionName::as_str`] writes it.
    pub fn parse(s: &str) -> Result<ProjectionName, UnknownProjection> {
        ProjectionName::ALL
            .iter()
            .copied()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| UnknownProjection(s.to_owned()))
    }

    /// Every name, as written.
    pub fn names() -> impl Iterator<Item = &'static str> {
        ProjectionName::ALL.iter().map(|n| n.as_str())
    }

    /// Every name, comma-separated, in display order.
    pub fn joined() -> String {
        ProjectionName::names().collect::<Vec<_>>().join(", ")
    }
}

impl std::str::FromStr for ProjectionName {
    type Err = UnknownProjection;
    fn from_str(s: &str) -> Result<ProjectionName, UnknownProjection> {
        ProjectionName::parse(s)
    }
}

impl std::fmt::Display for ProjectionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_error_lists_them() {
        for n in ProjectionName::ALL {
            assert_eq!(ProjectionName::parse(n.as_str()), Ok(*n));
            assert_eq!(serde_json::to_value(n).unwrap(), n.as_str());
        }
        assert_eq!(
            ProjectionName::parse("nope").unwrap_err().to_string(),
            r#"no projection "nope"; one of keys, queue, corpus, audit, gpus, kernels, verdicts"#
        );
    }
}

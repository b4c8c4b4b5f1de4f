//! The corpus index: artifacts by slug and version, their admission, the canonical version
//! per slug, superseded versions and duplicates.
//!
//! - `artifact.submitted` records a version as `submitted` (the ledger decides next).
//! - `artifact.admitted` makes that version `admitted` and the slug's canonical version.
//! - `artifact.rejected` makes it `rejected`, with the gate's reasons.
//! - `artifact.superseded` marks a version `superseded` (by a later version number); if it
//!   was canonical, the slug has no canonical version until the next admission.
//!
//! Duplicates are noted at submission: a slug resubmitted while it has a canonical version,
//! and a content digest already submitted under another slug.

use std::collections::{BTreeMap, BTreeSet};

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use serde::Serialize;

use crate::data::{bool_of, owned, str_of, strs_of, u64_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionStatus {
    Submitted,
    Admitted,
    Rejected,
    Superseded,
}

/// One version of an artifact (its latest submission, if submitted more than once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    pub status: VersionStatus,
    pub title: Option<String>,
    pub content_digest: Option<String>,
    pub runs: Vec<String>,
    pub files: u64,
    /// The files' total size; `u64::MAX` when it does not fit in 64 bits.
    pub bytes: u64,
    pub generator: Option<String>,
    /// Event digest of the latest `artifact.submitted` of this version.
    pub submission: String,
    pub submitted_seq: u64,
    /// How many times this (slug, version) was submitted.
    pub submissions: u64,
    pub decided_seq: Option<u64>,
    /// The ledger's reasons (rejections; empty for admissions).
    pub reasons: Vec<String>,
    pub superseded_by: Option<u64>,
    pub superseded_seq: Option<u64>,
    pub supersede_reason: Option<String>,
    /// Duplicates noted at submission: `slug:<slug>@<canonical version>` when the slug was
    /// canonical, `content:<other slug>` for each other slug with the same content digest.
    pub duplicate_of: Vec<String>,
    /// The submission asks that every claim be preregistered (`require_preregistration`):
    /// while this version is canonical, a `post_hoc` claim keeps the artifact from passing.
    /// Left out of the serialized state when false, so older ledgers keep their digest.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_preregistration: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub canonical: Option<u64>,
    pub max_admitted: Option<u64>,
    pub versions: BTreeMap<u64, Version>,
}

/// A (slug, version) pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SlugVersion {
    pub slug: String,
    pub version: u64,
}

/// Everything submitted with one content digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContentEntry {
    /// slug → versions submitted with this content.
    pub slugs: BTreeMap<String, BTreeSet<u64>>,
    /// The first admitted (slug, version) with this content.
    pub admitted: Option<SlugVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorpusCounts {
    pub submitted: u64,
    pub admitted: u64,
    pub rejected: u64,
    pub superseded: u64,
    /// Submissions of a slug that had a canonical version at the time.
    pub slug_duplicates: u64,
    /// Submissions whose content digest was already submitted under another slug.
    pub content_duplicates: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Corpus {
    artifacts: BTreeMap<String, Artifact>,
    /// content digest → entry.
    content: BTreeMap<String, ContentEntry>,
    counts: CorpusCounts,
}

impl Corpus {
    pub fn new() -> Corpus {
        Corpus::default()
    }

    pub fn apply(&mut self, record: &Record) {
        let Some(ty) = record.event_type() else { return };
        match ty {
            EventType::ArtifactSubmitted => self.apply_submitted(record),
            EventType::ArtifactAdmitted => self.apply_decided(record, true),
            EventType::ArtifactRejected => self.apply_decided(record, false),
            EventType::ArtifactSuperseded => self.apply_superseded(record),
            _ => {}
        }
    }

    fn apply_submitted(&mut self, record: &Record) {
        let data = &record.event.data;
        let (Some(slug), Some(version)) = (str_of(data, "slug"), u64_of(data, "version")) else {
            return;
        };
        let content_digest = owned(str_of(data, "content_digest"));
        let files = data.get("files").and_then(|f| f.as_array());
        let mut duplicate_of = Vec::new();
        let artifact = self.artifacts.entry(slug.to_owned()).or_default();
        if let Some(c) = artifact.canonical {
            duplicate_of.push(format!("slug:{slug}@{c}"));
            self.counts.slug_duplicates += 1;
        }
        if let Some(digest) = &content_digest {
            let entry = self.content.entry(digest.clone()).or_default();
            let others: Vec<String> =
                entry.slugs.keys().filter(|s| *s != slug).map(|s| format!("content:{s}")).collect();
            if !others.is_empty() {
                self.counts.content_duplicates += 1;
            }
            duplicate_of.extend(others);
            entry.slugs.entry(slug.to_owned()).or_default().insert(version);
        }
        let submissions = artifact.versions.get(&version).map_or(0, |v| v.submissions) + 1;
        self.counts.submitted += 1;
        artifact.versions.insert(
            version,
            Version {
                status: VersionStatus::Submitted,
                title: owned(str_of(data, "title")),
                content_digest,
                runs: strs_of(data, "runs").map(str::to_owned).collect(),
                files: files.map_or(0, |f| f.len() as u64),
                // Saturating: 10 000 files of up to 2^64 - 1 bytes each are schema-valid.
                bytes: files
                    .into_iter()
                    .flatten()
                    .filter_map(|f| u64_of(f, "bytes"))
                    .fold(0, u64::saturating_add),
                generator: owned(str_of(data, "generator")),
                submission: record.digest.to_hex(),
                submitted_seq: record.seq,
                submissions,
                decided_seq: None,
                reasons: Vec::new(),
                superseded_by: None,
                superseded_seq: None,
                supersede_reason: None,
                duplicate_of,
                require_preregistration: bool_of(data, "require_preregistration") == Some(true),
            },
        );
    }

    fn apply_decided(&mut self, record: &Record, admitted: bool) {
        let data = &record.event.data;
        let (Some(slug), Some(version)) = (str_of(data, "slug"), u64_of(data, "version")) else {
            return;
        };
        let Some(artifact) = self.artifacts.get_mut(slug) else { return };
        let Some(v) = artifact.versions.get_mut(&version) else { return };
        v.decided_seq = Some(record.seq);
        v.reasons = strs_of(data, "reasons").map(str::to_owned).collect();
        if !admitted {
            v.status = VersionStatus::Rejected;
            self.counts.rejected += 1;
            return;
        }
        v.status = VersionStatus::Admitted;
        self.counts.admitted += 1;
        artifact.canonical = Some(version);
        artifact.max_admitted = Some(artifact.max_admitted.map_or(version, |m| m.max(version)));
        if let Some(entry) = v.content_digest.as_ref().and_then(|d| self.content.get_mut(d)) {
            entry.admitted.get_or_insert_with(|| SlugVersion { slug: slug.to_owned(), version });
        }
    }

    fn apply_superseded(&mut self, record: &Record) {
        let data = &record.event.data;
        let (Some(slug), Some(version)) = (str_of(data, "slug"), u64_of(data, "version")) else {
            return;
        };
        let Some(artifact) = self.artifacts.get_mut(slug) else { return };
        let Some(v) = artifact.versions.get_mut(&version) else { return };
        if v.status != VersionStatus::Superseded {
            self.counts.superseded += 1;
        }
        v.status = VersionStatus::Superseded;
        v.superseded_by = u64_of(data, "by");
        v.superseded_seq = Some(record.seq);
        v.supersede_reason = owned(str_of(data, "reason"));
        if artifact.canonical == Some(version) {
            artifact.canonical = None;
        }
    }

    pub fn artifacts(&self) -> &BTreeMap<String, Artifact> {
        &self.artifacts
    }

    pub fn artifact(&self, slug: &str) -> Option<&Artifact> {
        self.artifacts.get(slug)
    }

    /// The slug's canonical version, if it has one.
    pub fn canonical(&self, slug: &str) -> Option<u64> {
        self.artifacts.get(slug)?.canonical
    }

    /// Every (slug, canonical version), sorted by slug.
    pub fn canonical_set(&self) -> impl Iterator<Item = (&str, u64)> {
        self.artifacts.iter().filter_map(|(s, a)| a.canonical.map(|v| (s.as_str(), v)))
    }

    /// The highest version of the slug ever admitted.
    pub fn max_admitted(&self, slug: &str) -> Option<u64> {
        self.artifacts.get(slug)?.max_admitted
    }

    /// The first admitted (slug, version) whose content digest is `digest`.
    pub fn content_admitted(&self, digest: &str) -> Option<&SlugVersion> {
        self.content.get(digest)?.admitted.as_ref()
    }

    /// Content digests submitted under more than one slug, with those slugs.
    pub fn content_duplicates(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.content
            .iter()
            .filter(|(_, e)| e.slugs.len() > 1)
            .map(|(d, e)| (d.as_str(), e.slugs.keys().map(String::as_str).collect()))
    }

    pub fn counts(&self) -> &CorpusCounts {
        &self.counts
    }

    pub fn digest(&self) -> Hash32 {
        crate::digest::state_digest(self)
    }
}

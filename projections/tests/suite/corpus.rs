//! The corpus projection.

use assay_projections::corpus::VersionStatus;
use assay_projections::testkit::*;

fn runs() -> Vec<Ev> {
    clean_run("r1", "w1", GPU0, &[])
}

#[test]
fn submitted_admitted_rejected_superseded() {
    let mut h = runs();
    h.extend([
        artifact_submitted("a", 1, "a1", &["r1"]),
        artifact_submitted("a", 2, "a2", &["r1"]),
        artifact_superseded("a", 1, 3),
        artifact_submitted("a", 3, "a3", &["r1"]),
    ]);
    given(h).then(|s| {
        let a = s.corpus.artifact("a").unwrap();
        assert_eq!(a.canonical, Some(3));
        let status: Vec<_> = a.versions.iter().map(|(v, e)| (*v, e.status)).collect();
        assert_eq!(
            status,
            [(1, VersionStatus::Superseded), (2, VersionStatus::Rejected), (3, VersionStatus::Admitted)]
        );
        assert_eq!(a.versions[&2].reasons, ["slug_canonical:a@1"]);
        assert_eq!(a.versions[&2].duplicate_of, ["slug:a@1"]);
        assert_eq!(a.versions[&1].superseded_by, Some(3));
        assert_eq!(a.versions[&1].files, 1);
        assert_eq!(a.versions[&1].bytes, 9120);
        let c = s.corpus.counts();
        assert_eq!((c.submitted, c.admitted, c.rejected, c.superseded, c.slug_duplicates), (3, 2, 1, 1, 1));
        assert_eq!(s.corpus.canonical_set().collect::<Vec<_>>(), [("a", 3)]);
    });
}

#[test]
fn same_content_under_two_slugs() {
    let mut h = runs();
    h.extend([artifact_submitted("a", 1, "same", &["r1"]), artifact_submitted("b", 1, "same", &["r1"])]);
    given(h).then(|s| {
        let dups: Vec<_> = s.corpus.content_duplicates().collect();
        assert_eq!(dups, [(hex_of("same").as_str(), vec!["a", "b"])]);
        let b = &s.corpus.artifact("b").unwrap().versions[&1];
        assert_eq!(b.duplicate_of, ["content:a"]);
        assert_eq!(b.reasons, ["content_duplicate_of:a"]);
        assert_eq!(s.corpus.counts().content_duplicates, 1);
        assert_eq!(
            s.corpus.content_admitted(&hex_of("same")).map(|sv| (sv.slug.as_str(), sv.version)),
            Some(("a", 1))
        );
    });
}

#[test]
fn a_resubmission_replaces_the_version_entry() {
    let mut h = vec![artifact_submitted("a", 1, "a1", &["late"])];
    h.extend(clean_run("late", "w1", GPU0, &[]));
    h.push(artifact_submitted("a", 1, "a1", &["late"]));
    given(h).then(|s| {
        let v = &s.corpus.artifact("a").unwrap().versions[&1];
        assert_eq!((v.status, v.submissions), (VersionStatus::Admitted, 2));
        assert!(v.reasons.is_empty());
    });
}

#[test]
fn the_total_size_of_an_artifacts_files_saturates() {
    // Each file may be up to 2^64 - 1 bytes (the schema's bound); two of them do not overflow
    // the projection.
    let mut e = artifact_submitted("big", 1, "big", &[]);
    let file = e.data["files"][0].clone();
    let (mut a, mut b) = (file.clone(), file);
    (a["path"], a["bytes"], b["path"], b["bytes"]) =
        ("a.bin".into(), u64::MAX.into(), "b.bin".into(), u64::MAX.into());
    e.data["files"] = serde_json::json!([a, b]);
    given(vec![e]).then(|s| {
        let v = &s.corpus.artifact("big").unwrap().versions[&1];
        assert_eq!((v.files, v.bytes), (2, u64::MAX));
    });
}

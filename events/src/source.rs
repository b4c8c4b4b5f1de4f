//! Whose event it is: a CloudEvent's `source`, `assay:key/<name>`, names the key whose
//! signature makes the event its producer's (DESIGN §2), and a DSSE signature's keyid is
//! `<name>+<hexid>`. Ingest, `assay verify`, export verification, bundles and the projections
//! all find the producer's signature here.

use crate::dsse::Signature;

/// What every producer's `source` starts with.
pub const SOURCE_KEY_PREFIX: &str = "assay:key/";

/// The key name `source` names (`assay:key/<name>`), if it names one.
pub fn source_key_name(source: &str) -> Option<&str> {
    source.strip_prefix(SOURCE_KEY_PREFIX)
}

/// The first signature whose keyid is `<name>+<hexid>`. Key names hold no `+`, so the name is
/// everything before the last one.
pub fn signature_by_name<'s>(name: &str, signatures: &'s [Signature]) -> Option<&'s Signature> {
    signatures.iter().find(|s| s.keyid.rsplit_once('+').is_some_and(|(n, _)| n == name))
}

/// The signature by the key `source` names, if the source names a key and that key signed.
pub fn source_signature<'s>(source: &str, signatures: &'s [Signature]) -> Option<&'s Signature> {
    source_key_name(source).and_then(|name| signature_by_name(name, signatures))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(keyid: &str) -> Signature {
        Signature { keyid: keyid.to_owned(), sig: [0; 64] }
    }

    #[test]
    fn finds_the_signature_by_the_named_key() {
        let sigs = [sig("admin+00000001"), sig("w1+0000000a"), sig("w1+0000000b")];
        assert_eq!(source_signature("assay:key/w1", &sigs).map(|s| s.keyid.as_str()), Some("w1+0000000a"));
        assert_eq!(
            source_signature("assay:key/admin", &sigs).map(|s| s.keyid.as_str()),
            Some("admin+00000001")
        );
        // A prefix of a name is not the name; a source that names no key finds nothing.
        assert_eq!(source_signature("assay:key/w", &sigs), None);
        assert_eq!(source_signature("w1", &sigs), None);
        assert_eq!(source_signature("assay:key/w1", &[]), None);
        // The name is all before the last '+'.
        assert_eq!(
            signature_by_name("a+b", &[sig("a+b+00000001")]).map(|s| s.keyid.as_str()),
            Some("a+b+00000001")
        );
        assert_eq!(signature_by_name("a", &[sig("a+b+00000001")]), None);
        assert_eq!(source_key_name("assay:key/w1"), Some("w1"));
        assert_eq!(source_key_name("assay:w1"), None);
    }
}

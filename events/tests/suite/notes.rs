//! C2SP signed notes and checkpoints, including the vendored tests/vectors/signed-note.

use std::path::Path;

use assay_events::Hash32;
use assay_events::checkpoint::{Checkpoint, CheckpointError};
use assay_events::keys::{KeyError, SignerKey, VerifierKey};
use assay_events::note::{self, NoteError};

fn vector() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/signed-note/note.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("vector field {name}"))
}

#[test]
fn signed_note_vector() {
    let v = vector();
    let signer = SignerKey::parse(field(&v, "signer_key")).unwrap();
    let verifier = VerifierKey::parse(field(&v, "verifier_key")).unwrap();
    assert_eq!(signer.to_text(), field(&v, "signer_key"));
    assert_eq!(verifier.to_text(), field(&v, "verifier_key"));
    assert_eq!(signer.verifier(), verifier);
    assert_eq!(signer.keyid(), "PeterNeumann+c74f20a3");

    let signed = note::sign(field(&v, "text"), &signer).unwrap();
    assert_eq!(signed, field(&v, "signed_note"));
    let opened = note::open(&signed, &verifier).unwrap();
    assert_eq!(opened.text, field(&v, "text"));
    assert_eq!(opened.signatures.len(), 1);
    assert_eq!(opened.signatures[0].id, 0xc74f20a3);

    let bad = v["bad_verifier_keys"].as_array().unwrap();
    assert!(!bad.is_empty());
    for k in bad {
        let k = k.as_str().unwrap();
        assert!(VerifierKey::parse(k).is_err(), "{k} must be rejected");
    }
    // The first is 36 bytes of key material whose last base64 symbol also has non-zero
    // trailing bits; either defect rejects it.
    assert!(matches!(
        VerifierKey::parse(bad[0].as_str().unwrap()),
        Err(KeyError::Length(_) | KeyError::Malformed(_))
    ));
    assert!(matches!(VerifierKey::parse(bad[1].as_str().unwrap()), Err(KeyError::Algorithm(_))));
}

#[test]
fn note_rejections() {
    let v = vector();
    let verifier = VerifierKey::parse(field(&v, "verifier_key")).unwrap();
    let signed = field(&v, "signed_note");

    let tampered = signed.replacen("cryptography", "cryptographY", 1);
    assert_eq!(note::open(&tampered, &verifier), Err(NoteError::BadSignature(verifier.keyid())));
    let other = SignerKey::from_seed("PeterNeumann", [7; 32]).unwrap();
    assert!(matches!(note::open(signed, &other.verifier()), Err(NoteError::NoSignatureByKey(_))));

    for bad in [
        "",
        "text\n",
        "text\n\n",
        "text\n\n\u{2014} PeterNeumann x08go",
        "text\n\n- PeterNeumann AAAAAAA=\n",
        "text\n\n\u{2014} PeterNeumann\n",
        "text\n\n\u{2014} Peter Neumann AAAAAAA=\n",
        "text\n\n\u{2014} PeterNeumann AAAA\n",
        "te\rxt\n\n\u{2014} PeterNeumann AAAAAAA=\n",
    ] {
        assert!(matches!(note::parse(bad), Err(NoteError::Malformed(_))), "{bad:?}");
    }
    // Another key's signature line is ignored, ours still verifies.
    let extra = format!("{signed}\u{2014} someone AAAAAAA=\n");
    assert!(note::open(&extra, &verifier).is_ok());

    let k = SignerKey::from_seed("k", [1; 32]).unwrap();
    assert!(note::sign("", &k).is_err());
    assert!(note::sign("no newline", &k).is_err());
    assert!(note::sign("tab\there\n", &k).is_err());
    // C2SP allows empty lines inside the text: the last blank line separates the signatures.
    let text = "a\n\nb\n\n";
    assert_eq!(note::open(&note::sign(text, &k).unwrap(), &k.verifier()).unwrap().text, text);
}

fn keys() -> (SignerKey, SignerKey) {
    (
        SignerKey::from_seed("ledger.example/log", rand::random()).unwrap(),
        SignerKey::from_seed("ledger.example/log", rand::random()).unwrap(),
    )
}

#[test]
fn checkpoint_round_trip() {
    let (k, _) = keys();
    let cp = Checkpoint { origin: "ledger.example/log".into(), size: 42, root: Hash32([3; 32]) };
    let text = cp.to_text();
    assert_eq!(text, format!("ledger.example/log\n42\n{}\n", assay_events::b64::encode_std(&[3; 32])));
    let signed = cp.sign(&k);
    assert!(signed.starts_with(&text));
    assert_eq!(Checkpoint::open(&signed, &k.verifier()).unwrap(), cp);
    assert_eq!(Checkpoint::parse_unverified(&signed).unwrap(), cp);
    assert_eq!(Checkpoint::from_text(&text).unwrap(), cp);
}

#[test]
fn checkpoint_tampering_and_wrong_key() {
    let (k, other) = keys();
    let cp = Checkpoint { origin: "o".into(), size: 7, root: Hash32([9; 32]) };
    let signed = cp.sign(&k);

    let bigger = signed.replacen("\n7\n", "\n8\n", 1);
    assert_ne!(bigger, signed);
    assert!(matches!(
        Checkpoint::open(&bigger, &k.verifier()),
        Err(CheckpointError::Note(NoteError::BadSignature(_)))
    ));
    let root_b64 = assay_events::b64::encode_std(&[9; 32]);
    let new_root = assay_events::b64::encode_std(&[8; 32]);
    let moved = signed.replacen(&root_b64, &new_root, 1);
    assert_ne!(moved, signed);
    assert!(Checkpoint::open(&moved, &k.verifier()).is_err());

    // Same name, different key: the id differs, so the signature is not ours.
    assert!(matches!(
        Checkpoint::open(&signed, &other.verifier()),
        Err(CheckpointError::Note(NoteError::NoSignatureByKey(_)))
    ));
    assert!(Checkpoint::open(&cp.sign(&other), &k.verifier()).is_err());
}

#[test]
fn checkpoint_body_rules() {
    let root = assay_events::b64::encode_std(&[1; 32]);
    let ok = Checkpoint::from_text(&format!("o\n3\n{root}\next one\n")).unwrap();
    assert_eq!(ok.size, 3);
    assert_eq!(Checkpoint::from_text(&format!("o\n0\n{root}\n")).unwrap().size, 0);
    for bad in [
        format!("o\n3\n{root}"),
        format!("\n3\n{root}\n"),
        format!("o\n+3\n{root}\n"),
        format!("o\n03\n{root}\n"),
        format!("o\n-3\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        format!("o\n3\n{root}\n\n"),
        "o\n3\n".to_string(),
        "o\n3\nAAAA\n".to_string(),
        "o\n3\n!!\n".to_string(),
        "o\n".to_string(),
    ] {
        assert!(matches!(Checkpoint::from_text(&bad), Err(CheckpointError::Malformed(_))), "{bad:?}");
    }
    let k = SignerKey::from_seed("k", [1; 32]).unwrap();
    let cp = Checkpoint { origin: "two\nlines".into(), size: 1, root: Hash32::ZERO };
    assert!(cp.try_sign(&k).is_err());
}

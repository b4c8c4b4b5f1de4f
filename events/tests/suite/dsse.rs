//! DSSE: PAE, envelope parsing and signing, canonical signatures JSON.

use assay_events::b64::encode_std;
use assay_events::dsse::{
    DecodedEnvelope, Envelope, EnvelopeError, EnvelopeSignature, PAYLOAD_TYPE, Signature, pae,
    signatures_canonical_json, signatures_from_json,
};
use assay_events::keys::SignerKey;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use proptest::prelude::*;

fn key(name: &str) -> SignerKey {
    SignerKey::from_seed(name, rand::random()).unwrap()
}

fn envelope_json(payload_type: &str, payload: &str, sigs: &[(&str, &str)]) -> Vec<u8> {
    let sigs: Vec<serde_json::Value> =
        sigs.iter().map(|(k, s)| serde_json::json!({"keyid": k, "sig": s})).collect();
    serde_json::to_vec(&serde_json::json!({
        "payloadType": payload_type, "payload": payload, "signatures": sigs
    }))
    .unwrap()
}

#[test]
fn pae_spec_vector() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
}

#[test]
fn sign_verify_and_round_trip() {
    let k = key("runner-gpu0");
    let env = DecodedEnvelope::sign(b"{\"a\":1}".to_vec(), &k);
    assert_eq!(env.payload_type, PAYLOAD_TYPE);
    assert_eq!(env.signatures[0].keyid, k.keyid());
    assert!(env.verify_with(&k.verifier()));
    assert!(!env.verify_with(&key("runner-gpu0").verifier()), "same name, other key");
    let mut tampered = env.clone();
    tampered.payload.push(b' ');
    assert!(!tampered.verify_with(&k.verifier()));

    let json = env.to_json();
    assert_eq!(Envelope::parse(&json).unwrap(), env);
    let text = String::from_utf8(json).unwrap();
    assert!(text.starts_with("{\"payloadType\":\""), "{text}");
    assert!(!text.contains(' '), "compact: {text}");
    assert_eq!(env.to_envelope().decode().unwrap(), env);
}

#[test]
fn every_base64_form_is_accepted() {
    let k = key("a");
    // Bytes chosen so that standard and URL-safe encodings differ.
    let payload = vec![0xfb, 0xff, 0xbf, b'{', b'}'];
    let env = DecodedEnvelope::sign(payload.clone(), &k);
    let sig = env.signatures[0].sig;
    for engine in [&STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        let json =
            envelope_json(PAYLOAD_TYPE, &engine.encode(&payload), &[(&k.keyid(), &engine.encode(sig))]);
        let parsed = Envelope::parse(&json).unwrap();
        assert_eq!(parsed, env);
        assert!(parsed.verify_with(&k.verifier()));
    }
}

#[test]
fn parse_errors_name_the_problem() {
    let sig = encode_std(&[0u8; 64]);
    let ok = |p: &str| envelope_json(PAYLOAD_TYPE, p, &[("k+00000000", &sig)]);
    assert!(Envelope::parse(&ok("e30=")).is_ok());

    assert!(matches!(Envelope::parse(b"{"), Err(EnvelopeError::Json(_))));
    assert!(matches!(Envelope::parse(b"[]"), Err(EnvelopeError::Json(_))));
    assert!(matches!(Envelope::parse(&ok("*")), Err(EnvelopeError::PayloadBase64(_))));
    let e = Envelope::parse(&envelope_json("text/plain", "e30=", &[("k", &sig)])).unwrap_err();
    assert!(matches!(e, EnvelopeError::PayloadType { .. }));
    assert!(e.to_string().contains("text/plain"));
    assert_eq!(Envelope::parse(&envelope_json(PAYLOAD_TYPE, "e30=", &[])), Err(EnvelopeError::NoSignatures));
    let e = Envelope::parse(&envelope_json(PAYLOAD_TYPE, "e30=", &[("k", &sig), ("k", "AAAA")])).unwrap_err();
    assert!(matches!(e, EnvelopeError::SignatureEncoding { index: 1, .. }), "{e}");
    assert!(e.to_string().starts_with("signatures[1].sig"), "{e}");
    let e = Envelope::parse(&envelope_json(PAYLOAD_TYPE, "e30=", &[("k", "!!")])).unwrap_err();
    assert!(matches!(e, EnvelopeError::SignatureEncoding { index: 0, .. }), "{e}");

    let unknown =
        br#"{"payloadType":"application/vnd.assay.event+json","payload":"e30=","signatures":[],"extra":1}"#;
    assert!(matches!(Envelope::parse(unknown), Err(EnvelopeError::Json(m)) if m.contains("extra")));
    let missing = br#"{"payloadType":"application/vnd.assay.event+json","signatures":[]}"#;
    assert!(matches!(Envelope::parse(missing), Err(EnvelopeError::Json(m)) if m.contains("payload")));
}

#[test]
fn canonical_signatures_json() {
    let sigs = vec![
        Signature { keyid: "a+0000000a".into(), sig: [1; 64] },
        Signature { keyid: "we\"ird\u{1}é".into(), sig: [2; 64] },
    ];
    let json = signatures_canonical_json(&sigs);
    let expected = format!(
        r#"[{{"keyid":"a+0000000a","sig":"{}"}},{{"keyid":"we\"ird\u0001é","sig":"{}"}}]"#,
        encode_std(&[1; 64]),
        encode_std(&[2; 64])
    );
    assert_eq!(String::from_utf8(json.clone()).unwrap(), expected);
    // Byte-identical to serde_json over the wire struct (same escaping, same key order).
    let wire: Vec<EnvelopeSignature> =
        sigs.iter().map(|s| EnvelopeSignature { keyid: s.keyid.clone(), sig: encode_std(&s.sig) }).collect();
    assert_eq!(json, serde_json::to_vec(&wire).unwrap());
    assert_eq!(signatures_from_json(&json).unwrap(), sigs);
    assert_eq!(signatures_canonical_json(&[]), b"[]");
    assert!(signatures_from_json(b"[{\"keyid\":\"a\",\"sig\":\"AA==\"}]").is_err());
    assert!(signatures_from_json(b"{}").is_err());
}

/// Stored signatures are read with their strings borrowed from the JSON: what that accepts, and
/// the error it gives otherwise, are the wire struct's.
#[test]
fn stored_signatures_read_in_place_err_as_the_wire_struct() {
    let cases: [&[u8]; 8] = [
        b"{}",
        b"[1]",
        b"[[\"a\"]]",
        b"[{\"keyid\":1,\"sig\":\"AA==\"}]",
        b"[{\"keyid\":\"a\"}]",
        b"[{\"keyid\":\"a\",\"sig\":\"AA==\",\"x\":1}]",
        b"[{\"keyid\":\"a\",\"keyid\":\"b\",\"sig\":\"AA==\"}]",
        b"[{\"keyid\":\"a\",\"sig\":\"AA==\"",
    ];
    for json in cases {
        let wire =
            serde_json::from_slice::<Vec<EnvelopeSignature>>(json).expect_err("the wire struct refuses it");
        assert_eq!(
            signatures_from_json(json),
            Err(EnvelopeError::Json(wire.to_string())),
            "{}",
            String::from_utf8_lossy(json)
        );
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::parse(&bytes);
        let _ = signatures_from_json(&bytes);
    }

    #[test]
    fn parse_never_panics_on_near_envelopes(
        ty in ".{0,40}", payload in "[A-Za-z0-9+/_=-]{0,200}", keyid in ".{0,20}",
        sig in "[A-Za-z0-9+/_=-]{0,100}",
    ) {
        let json = envelope_json(&ty, &payload, &[(&keyid, &sig)]);
        let _ = Envelope::parse(&json);
    }

    /// The canonical signatures JSON, written straight into its buffer, is byte for byte what
    /// serde_json makes of the wire struct, for any keyids (quotes, backslashes, control
    /// characters, any Unicode) and signatures, and reads back to the same signatures.
    #[test]
    fn canonical_signatures_json_is_serde_jsons(
        sigs in proptest::collection::vec(
            ("(\\PC|[\"\\\\/\u{0}-\u{1f}\u{7f}\u{2028}])*", proptest::array::uniform32(any::<u8>())),
            0..4,
        ),
        tail in proptest::array::uniform32(any::<u8>()),
    ) {
        let sigs: Vec<Signature> = sigs
            .into_iter()
            .map(|(keyid, head)| {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&head);
                sig[32..].copy_from_slice(&tail);
                Signature { keyid, sig }
            })
            .collect();
        let wire: Vec<EnvelopeSignature> =
            sigs.iter().map(|s| EnvelopeSignature { keyid: s.keyid.clone(), sig: encode_std(&s.sig) }).collect();
        let json = signatures_canonical_json(&sigs);
        prop_assert_eq!(&json, &serde_json::to_vec(&wire).unwrap());
        prop_assert_eq!(signatures_from_json(&json).unwrap(), sigs);
    }
}

#[test]
fn submitted_envelopes_carry_few_distinct_well_formed_keyids() {
    use assay_events::dsse::SIGNATURES_MAX;
    let k = key("w1");
    let env = DecodedEnvelope::sign(b"{}".to_vec(), &k);
    assert_eq!(env.check_submitted(), Ok(()));
    let sig = |keyid: &str| Signature { keyid: keyid.to_owned(), sig: [7; 64] };

    let mut many = env.clone();
    many.signatures = (0..SIGNATURES_MAX).map(|i| sig(&format!("k{i}+00000000"))).collect();
    assert_eq!(many.check_submitted(), Ok(()));
    many.signatures.push(sig("k-last+00000000"));
    assert_eq!(many.check_submitted(), Err(EnvelopeError::TooManySignatures { got: 9, max: 8 }));

    let mut repeated = env.clone();
    repeated.signatures = vec![env.signatures[0].clone(); 5000];
    assert!(matches!(repeated.check_submitted(), Err(EnvelopeError::TooManySignatures { got: 5000, .. })));
    repeated.signatures.truncate(2);
    let err = repeated.check_submitted().unwrap_err();
    assert_eq!(err, EnvelopeError::DuplicateKeyid { index: 1, keyid: k.keyid() });
    assert!(err.to_string().contains("signs twice"), "{err}");

    for bad in ["", "w1\0+00000000", "w\u{1b}[31m+00000000", &"k".repeat(257)] {
        let mut e = env.clone();
        e.signatures.push(sig(bad));
        let err = e.check_submitted().unwrap_err();
        assert!(matches!(err, EnvelopeError::Keyid { index: 1, .. }), "{bad:?}: {err}");
        assert!(err.to_string().contains("signatures[1].keyid"), "{err}");
    }
    let mut e = env.clone();
    e.payload_type = "text/plain".into();
    assert!(matches!(e.check_submitted(), Err(EnvelopeError::PayloadType { .. })));
    e = env;
    e.signatures.clear();
    assert_eq!(e.check_submitted(), Err(EnvelopeError::NoSignatures));
}

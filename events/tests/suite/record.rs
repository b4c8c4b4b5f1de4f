//! The record leaf, record hash and chain.

use assay_events::Hash32;
use assay_events::cloudevent::event_digest;
use assay_events::dsse::{DecodedEnvelope, Signature, signatures_canonical_json};
use assay_events::keys::SignerKey;
use assay_events::merkle::{Frontier, leaf_hash};
use assay_events::record::{LEAF_LEN, LEAF_PREFIX, LeafFields, Record, RecordError};

fn payload(id: &str) -> Vec<u8> {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"assay:key/runner-gpu0","type":"run.heartbeat","subject":"run/r1","time":"2025-01-02T03:04:05.123456789Z","datacontenttype":"application/json","data":{{"run":"r1"}}}}"#
    )
    .into_bytes()
}

fn sigs() -> Vec<Signature> {
    vec![Signature { keyid: "runner-gpu0+01020304".into(), sig: [5; 64] }]
}

#[test]
fn leaf_layout_is_exact() {
    let f = LeafFields {
        seq: 0x0102030405060708,
        received_at_ns: -2,
        digest: Hash32([0xaa; 32]),
        signatures_digest: Hash32([0xbb; 32]),
        prev_hash: Hash32([0xcc; 32]),
    };
    let leaf = f.to_bytes();
    assert_eq!(leaf.len(), 128);
    assert_eq!(LEAF_LEN, 128);
    assert_eq!(&leaf[..16], b"assay/record/v1\n");
    assert_eq!(&leaf[..16], LEAF_PREFIX);
    assert_eq!(&leaf[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&leaf[24..32], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(&leaf[32..64], &[0xaa; 32]);
    assert_eq!(&leaf[64..96], &[0xbb; 32]);
    assert_eq!(&leaf[96..128], &[0xcc; 32]);
    assert_eq!(f.record_hash(), Hash32(*blake3::hash(&leaf).as_bytes()));
    assert_eq!(LeafFields::from_bytes(&leaf).unwrap(), f);

    assert!(matches!(LeafFields::from_bytes(&leaf[..127]), Err(RecordError::Leaf(_))));
    let mut wrong = leaf;
    wrong[0] = b'A';
    assert!(matches!(LeafFields::from_bytes(&wrong), Err(RecordError::Leaf(_))));
}

#[test]
fn record_new_computes_and_parses() {
    let p = payload("e1");
    let r = Record::new(0, 1_700_000_000_000_000_000, p.clone(), sigs(), Hash32::ZERO).unwrap();
    assert_eq!(r.event.id, "e1");
    assert_eq!(r.event.ty, "run.heartbeat");
    assert_eq!(r.event.subject.as_deref(), Some("run/r1"));
    assert_eq!(r.digest, Hash32(*blake3::hash(&p).as_bytes()));
    assert_eq!(r.digest, event_digest(&p));
    assert_eq!(r.signatures_digest(), Hash32::blake3(&signatures_canonical_json(&sigs())));
    let leaf = r.leaf();
    assert_eq!(r.record_hash, Hash32::blake3(&leaf));
    assert_eq!(&leaf[96..], &[0; 32], "seq 0 chains to zeros");
    assert_eq!(r.leaf_fields(), LeafFields::from_bytes(&leaf).unwrap());
    assert_eq!(r.leaf_fields().record_hash(), r.record_hash);

    let env = r.envelope();
    assert_eq!(env.payload, p);
    assert_eq!(env.signatures, sigs());
    assert_eq!(env.payload_type, assay_events::dsse::PAYLOAD_TYPE);

    let bad = Record::new(1, 0, b"{}".to_vec(), sigs(), r.record_hash);
    assert!(matches!(bad, Err(RecordError::Event(_))));
}

#[test]
fn chain_and_tree() {
    let key = SignerKey::from_seed("runner-gpu0", [3; 32]).unwrap();
    let mut prev = Hash32::ZERO;
    let mut frontier = Frontier::new();
    let mut records = Vec::new();
    for seq in 0..5u64 {
        let env = DecodedEnvelope::sign(payload(&format!("e{seq}")), &key);
        assert!(env.verify_with(&key.verifier()));
        let r = Record::new(seq, seq as i64 * 10, env.payload, env.signatures, prev).unwrap();
        assert_eq!(r.leaf_fields().prev_hash, prev);
        prev = r.record_hash;
        frontier.push(leaf_hash(&r.leaf()));
        records.push(r);
    }
    let leaves: Vec<Hash32> = records.iter().map(|r| leaf_hash(&r.leaf())).collect();
    assert_eq!(frontier.root(), assay_events::merkle::root_of(&leaves));
    // Changing any committed field changes the record hash, and so every later one.
    let mut edited = records[2].clone();
    edited.received_at_ns += 1;
    assert_ne!(edited.leaf_fields().record_hash(), records[2].record_hash);
    edited = records[2].clone();
    edited.signatures[0].sig[0] ^= 1;
    assert_ne!(edited.leaf_fields().record_hash(), records[2].record_hash);
}

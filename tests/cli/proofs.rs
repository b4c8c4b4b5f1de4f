//! `assay proof inclusion|consistency --json` output checked with the library's RFC 9162
//! verifiers against checkpoint notes saved earlier and opened with ledger.vkey.

use crate::support;

use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use assay_events::merkle::{leaf_hash, root_of, verify_consistency, verify_inclusion};
use assay_events::record::LeafFields;
use serde_json::Value;
use support::{Lab, b64, b64_hash, leaf_hashes_from_log};

/// A checkpoint saved after one append invocation.
struct Saved {
    note: String,
    cp: Checkpoint,
}

/// Builds a ledger in several append invocations and saves the checkpoint after each.
fn ledger_with_checkpoints() -> (Lab, Vec<Saved>) {
    let lab = Lab::new();
    let w = lab.worker("w1");
    let mut saved = Vec::new();
    let mut step = 0;
    // Sizes chosen so checkpoints land on powers of two, odd sizes and multi-batch appends.
    for n in [1, 5, 56, 1000, 37, 1500, 448] {
        lab.append_metrics(&w, "r-proof", step, n);
        step += n;
        let (_, cp) = lab.save_checkpoint(&format!("cp-{step}.txt"));
        let note = lab.checkpoint();
        assert_eq!(cp.size, lab.records(), "each invocation ends in a checkpoint at its size");
        saved.push(Saved { note, cp });
    }
    (lab, saved)
}

fn proof_hashes(v: &Value) -> Vec<Hash32> {
    v["proof"]
        .as_array()
        .expect("proof array")
        .iter()
        .map(|h| b64_hash(h.as_str().expect("base64")))
        .collect()
}

/// Flips one bit of one hash.
fn flipped(proof: &[Hash32], i: usize) -> Vec<Hash32> {
    let mut p = proof.to_vec();
    p[i].0[7] ^= 0x10;
    p
}

#[test]
fn inclusion_and_consistency_proofs_verify_against_saved_checkpoints() {
    let (lab, saved) = ledger_with_checkpoints();
    let vkey = lab.ledger_vkey();
    let log = lab.log(&[]);
    let leaves = leaf_hashes_from_log(&log);
    let latest = saved.last().expect("checkpoints");
    assert_eq!(latest.cp.size as usize, leaves.len());

    // Inclusion: first, middle and last seq of every saved tree size, and a few in between.
    let mut checked = 0;
    for s in &saved {
        let size = s.cp.size;
        let mut seqs = vec![0, size / 2, size - 1, size / 3, (2 * size) / 3];
        seqs.dedup();
        for seq in seqs {
            let out = lab
                .db(
                    &["proof", "inclusion"],
                    &[seq.to_string().as_str(), "--size", &size.to_string(), "--json"],
                )
                .ok();
            let v = out.json();
            assert_eq!(v["seq"].as_u64(), Some(seq));
            assert_eq!(v["tree_size"].as_u64(), Some(size));
            // The served note is byte-for-byte the one saved earlier, and opens with ledger.vkey.
            let note = v["checkpoint"].as_str().expect("checkpoint");
            assert_eq!(note, s.note, "the note signed at {size}");
            let cp = Checkpoint::open(note, &vkey).expect("opens with ledger.vkey");
            assert_eq!(cp, s.cp);
            let leaf = b64(v["leaf"].as_str().expect("leaf"));
            let fields = LeafFields::from_bytes(&leaf).expect("a record leaf");
            assert_eq!(fields.seq, seq);
            assert_eq!(fields.digest.to_hex(), log[seq as usize]["digest"].as_str().unwrap());
            let lh = b64_hash(v["leaf_hash"].as_str().expect("leaf_hash"));
            assert_eq!(lh, leaf_hash(&leaf));
            assert_eq!(lh, leaves[seq as usize], "the leaf a client rebuilds from the log");
            let proof = proof_hashes(&v);
            verify_inclusion(seq, size, &lh, &proof, &cp.root)
                .unwrap_or_else(|e| panic!("inclusion of {seq} in {size}: {e}"));

            // Any change to the proof, the index, the leaf or the root fails.
            for i in 0..proof.len() {
                assert!(verify_inclusion(seq, size, &lh, &flipped(&proof, i), &cp.root).is_err());
            }
            if !proof.is_empty() {
                assert!(verify_inclusion(seq, size, &lh, &proof[1..], &cp.root).is_err());
                let other = if seq == 0 { 1 } else { seq - 1 };
                assert!(verify_inclusion(other, size, &lh, &proof, &cp.root).is_err());
                assert!(verify_inclusion(seq, size, &leaves[other as usize], &proof, &cp.root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(lh);
            assert!(verify_inclusion(seq, size, &lh, &longer, &cp.root).is_err());
            let mut root = cp.root;
            root.0[0] ^= 1;
            assert!(verify_inclusion(seq, size, &lh, &proof, &root).is_err());
            checked += 1;
        }
    }
    assert!(checked >= 25);

    // Without --size: the latest checkpoint, as `assay checkpoint` prints it.
    let v = lab.db(&["proof", "inclusion"], &["7", "--json"]).ok().json();
    assert_eq!(v["tree_size"].as_u64(), Some(latest.cp.size));
    assert_eq!(v["checkpoint"].as_str(), Some(lab.checkpoint().as_str()));
    verify_inclusion(7, latest.cp.size, &leaves[7], &proof_hashes(&v), &latest.cp.root).expect("latest");

    // Consistency between every pair of saved checkpoints.
    let mut pairs = 0;
    for (i, old) in saved.iter().enumerate() {
        for new in &saved[i + 1..] {
            let (o, n) = (old.cp.size, new.cp.size);
            let v = lab
                .db(&["proof", "consistency"], &[o.to_string().as_str(), &n.to_string(), "--json"])
                .ok()
                .json();
            assert_eq!((v["old_size"].as_u64(), v["new_size"].as_u64()), (Some(o), Some(n)));
            assert_eq!(v["checkpoint"].as_str(), Some(new.note.as_str()));
            let served_new = Checkpoint::open(v["checkpoint"].as_str().unwrap(), &vkey).expect("opens");
            assert_eq!(served_new.root, new.cp.root);
            // The roots in the answer are those of the saved notes…
            assert_eq!(b64_hash(v["old_root"].as_str().unwrap()), old.cp.root);
            assert_eq!(b64_hash(v["new_root"].as_str().unwrap()), new.cp.root);
            // …but a client checks the proof against the notes it saved, not the answer's roots.
            let proof = proof_hashes(&v);
            verify_consistency(o, n, &old.cp.root, &new.cp.root, &proof)
                .unwrap_or_else(|e| panic!("consistency {o} -> {n}: {e}"));
            for k in 0..proof.len() {
                assert!(verify_consistency(o, n, &old.cp.root, &new.cp.root, &flipped(&proof, k)).is_err());
            }
            if !proof.is_empty() {
                assert!(
                    verify_consistency(o, n, &old.cp.root, &new.cp.root, &proof[..proof.len() - 1]).is_err()
                );
            }
            assert!(verify_consistency(o, n, &new.cp.root, &old.cp.root, &proof).is_err());
            assert!(verify_consistency(o + 1, n, &old.cp.root, &new.cp.root, &proof).is_err());
            pairs += 1;
        }
    }
    assert_eq!(pairs, saved.len() * (saved.len() - 1) / 2);

    // An old size that is no checkpoint: the old root is the tree of that prefix of the log.
    let n = latest.cp.size;
    for o in [2, 3, 700, n - 1] {
        let v = lab
            .db(&["proof", "consistency"], &[o.to_string().as_str(), &n.to_string(), "--json"])
            .ok()
            .json();
        let old_root = b64_hash(v["old_root"].as_str().unwrap());
        assert_eq!(old_root, root_of(&leaves[..o as usize]), "root of the first {o} records");
        verify_consistency(o, n, &old_root, &latest.cp.root, &proof_hashes(&v)).expect("consistent");
    }
}

#[test]
fn proofs_need_a_signed_size_and_a_leaf_inside_it() {
    let lab = Lab::new();
    let w = lab.worker("w1");
    lab.append_metrics(&w, "r-x", 0, 10);
    let size = lab.records();
    // No checkpoint was signed at 5: the tool says so rather than proving against an unsigned root.
    let out = lab.db(&["proof", "inclusion"], &["1", "--size", "5", "--json"]).status(2);
    assert!(out.stderr.contains("no checkpoint was signed at tree size 5"), "{}", out.stderr);
    let out = lab.db(&["proof", "inclusion"], &[size.to_string().as_str(), "--json"]).status(2);
    assert!(out.stderr.contains("not below tree size"), "{}", out.stderr);
    let out = lab.db(&["proof", "consistency"], &["1", "5", "--json"]).status(2);
    assert!(out.stderr.contains("no checkpoint was signed"), "{}", out.stderr);
    let out = lab.db(&["proof", "consistency"], &["0", size.to_string().as_str(), "--json"]).status(2);
    assert!(out.stderr.contains("invalid sizes"), "{}", out.stderr);
}

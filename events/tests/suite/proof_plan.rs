//! ProofPlan against a straightforward recursive RFC 6962 reference.

use std::collections::HashMap;
use std::sync::OnceLock;

use assay_events::Hash32;
use assay_events::merkle::{
    Frontier, NodeId, ProofError, ProofPlan, consistency_plan, inclusion_plan, leaf_hash, node_hash,
    range_nodes, root_of, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

/// The reference tree: leaf hashes and MTH of sub-ranges, memoized because the exhaustive
/// test asks for the same ranges many times.
struct Reference {
    leaves: Vec<Hash32>,
    memo: HashMap<(usize, usize), Hash32>,
}

impl Reference {
    fn new(leaves: &[Hash32]) -> Reference {
        Reference { leaves: leaves.to_vec(), memo: HashMap::new() }
    }

    /// RFC 6962 §2.1 MTH(D[lo:hi]).
    fn mth(&mut self, lo: usize, hi: usize) -> Hash32 {
        if let Some(h) = self.memo.get(&(lo, hi)) {
            return *h;
        }
        let h = match hi - lo {
            0 => root_of(&[]),
            1 => self.leaves[lo],
            n => {
                let k = largest_pow2_below(n);
                let (l, r) = (self.mth(lo, lo + k), self.mth(lo + k, hi));
                node_hash(&l, &r)
            }
        };
        self.memo.insert((lo, hi), h);
        h
    }

    /// RFC 6962 §2.1.1 PATH(m, D[lo:hi]).
    fn path(&mut self, m: usize, lo: usize, hi: usize) -> Vec<Hash32> {
        if hi - lo <= 1 {
            return Vec::new();
        }
        let k = largest_pow2_below(hi - lo);
        if m < k {
            let mut p = self.path(m, lo, lo + k);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.path(m - k, lo + k, hi);
            p.push(self.mth(lo, lo + k));
            p
        }
    }

    /// RFC 6962 §2.1.2 SUBPROOF(m, D[lo:hi], b).
    fn subproof(&mut self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<Hash32> {
        let n = hi - lo;
        if m == n {
            return if b { Vec::new() } else { vec![self.mth(lo, hi)] };
        }
        let k = largest_pow2_below(n);
        if m <= k {
            let mut p = self.subproof(m, lo, lo + k, b);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.subproof(m - k, lo + k, hi, false);
            p.push(self.mth(lo, lo + k));
            p
        }
    }
}

fn largest_pow2_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn leaves(n: u64) -> Vec<Hash32> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Every complete subtree hash of a tree of `leaves`, as storage would hold them.
fn node_map(leaves: &[Hash32]) -> HashMap<NodeId, Hash32> {
    let mut f = Frontier::new();
    leaves.iter().flat_map(|l| f.push(*l)).collect()
}

/// Fetches only nodes that lie inside the tree of `size` leaves, as a store at that size
/// would: a plan that needs anything else fails to assemble.
fn assemble(plan: &ProofPlan, nodes: &HashMap<NodeId, Hash32>, size: u64) -> Vec<Hash32> {
    plan.assemble(|id| {
        let end = (id.index + 1) << id.level;
        if end <= size { nodes.get(&id).copied() } else { None }
    })
    .unwrap()
}

#[test]
fn exhaustive_up_to_70() {
    const MAX: u64 = 70;
    let all = leaves(MAX);
    let nodes = node_map(&all);
    let mut reference = Reference::new(&all);
    for n in 1..=MAX {
        let root = reference.mth(0, n as usize);
        assert_eq!(root, root_of(&all[..n as usize]));
        for i in 0..n {
            let plan = inclusion_plan(i, n).unwrap();
            let got = assemble(&plan, &nodes, n);
            assert_eq!(got, reference.path(i as usize, 0, n as usize), "inclusion {i} in {n}");
            verify_inclusion(i, n, &all[i as usize], &got, &root).unwrap();
            let other = all[((i + 1) % MAX) as usize];
            assert!(verify_inclusion(i, n, &other, &got, &root).is_err());
            if let Some(first) = got.first() {
                let mut bad = got.clone();
                bad[0] = node_hash(first, first);
                assert_eq!(
                    verify_inclusion(i, n, &all[i as usize], &bad, &root),
                    Err(ProofError::RootMismatch)
                );
            }
        }
        for m in 1..=n {
            let plan = consistency_plan(m, n).unwrap();
            let got = assemble(&plan, &nodes, n);
            let want = reference.subproof(m as usize, 0, n as usize, true);
            assert_eq!(got, want, "consistency {m} -> {n}");
            let old_root = reference.mth(0, m as usize);
            verify_consistency(m, n, &old_root, &root, &got).unwrap();
            if m < n {
                assert!(verify_consistency(m, n, &root, &old_root, &got).is_err());
            }
        }
    }
}

#[test]
fn plan_errors_and_nodes() {
    assert_eq!(inclusion_plan(0, 0), Err(ProofError::IndexOutOfRange { index: 0, size: 0 }));
    assert_eq!(inclusion_plan(5, 5), Err(ProofError::IndexOutOfRange { index: 5, size: 5 }));
    assert_eq!(consistency_plan(0, 3), Err(ProofError::Sizes { old: 0, new: 3 }));
    assert_eq!(consistency_plan(4, 3), Err(ProofError::Sizes { old: 4, new: 3 }));
    assert!(consistency_plan(3, 3).unwrap().ranges.is_empty());
    assert!(inclusion_plan(0, 1).unwrap().ranges.is_empty());

    // Leaf 0 of 7: siblings are leaf 1, [2,4), then the incomplete [4,7) = [4,6) + [6,7).
    let plan = inclusion_plan(0, 7).unwrap();
    let n = |level, index| NodeId { level, index };
    assert_eq!(plan.ranges, vec![vec![n(0, 1)], vec![n(1, 1)], vec![n(1, 2), n(0, 6)]]);
    assert_eq!(plan.nodes(), vec![n(0, 1), n(1, 1), n(1, 2), n(0, 6)]);
    assert_eq!(plan.assemble(|_| None), Err(ProofError::MissingNode(n(0, 1))));

    assert_eq!(range_nodes(3, 3), vec![]);
    assert_eq!(range_nodes(0, 8), vec![n(3, 0)]);
    assert_eq!(range_nodes(3, 13), vec![n(0, 3), n(2, 1), n(2, 2), n(0, 12)]);
    assert_eq!(range_nodes(0, u64::MAX).len(), 64);
}

#[test]
fn verify_rejects_bad_shapes() {
    let all = leaves(5);
    let root = root_of(&all);
    let proof = assemble(&inclusion_plan(1, 5).unwrap(), &node_map(&all), 5);
    assert_eq!(
        verify_inclusion(1, 5, &all[1], &proof[..2], &root),
        Err(ProofError::Length { got: 2, want: 3 })
    );
    let mut longer = proof.clone();
    longer.push(root);
    assert!(matches!(verify_inclusion(1, 5, &all[1], &longer, &root), Err(ProofError::Length { .. })));
    assert!(verify_inclusion(5, 5, &all[1], &proof, &root).is_err());
    assert!(verify_inclusion(u64::MAX, u64::MAX, &all[1], &proof, &root).is_err());
    let empty = root_of(&[]);
    assert!(verify_consistency(0, 0, &empty, &empty, &[]).is_err());
    assert!(verify_consistency(0, 5, &empty, &root, &[]).is_err());
    assert!(verify_consistency(5, 5, &root, &root, &[]).is_ok());
    assert!(verify_consistency(5, 5, &root, &empty, &[]).is_err());
    assert!(verify_consistency(5, 5, &root, &root, &[root]).is_err());
    assert!(verify_consistency(6, 5, &root, &root, &[]).is_err());
}

#[test]
fn frontier_parts() {
    let mut f = Frontier::new();
    for l in leaves(11) {
        f.push(l);
    }
    assert_eq!(f.hashes().len(), 3);
    assert_eq!(Frontier::from_parts(11, f.hashes().to_vec()).unwrap(), f);
    assert!(Frontier::from_parts(12, f.hashes().to_vec()).is_err());
    assert!(Frontier::from_bytes(11, &f.to_bytes()[1..]).is_err());
    assert!(Frontier::from_bytes(11, &[]).is_err());
    assert_eq!(Frontier::from_bytes(0, &[]).unwrap().root(), root_of(&[]));
}

const BIG: u64 = 10_000;

fn big() -> &'static (Vec<Hash32>, HashMap<NodeId, Hash32>) {
    static BIG_TREE: OnceLock<(Vec<Hash32>, HashMap<NodeId, Hash32>)> = OnceLock::new();
    BIG_TREE.get_or_init(|| {
        let l = leaves(BIG);
        let nodes = node_map(&l);
        (l, nodes)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_sizes(size in 1..=BIG, index_seed: u64, old_seed: u64) {
        let (all, nodes) = big();
        let index = index_seed % size;
        let old = 1 + old_seed % size;
        let mut reference = Reference::new(&all[..size as usize]);
        let root = reference.mth(0, size as usize);

        let got = assemble(&inclusion_plan(index, size).unwrap(), nodes, size);
        prop_assert_eq!(&got, &reference.path(index as usize, 0, size as usize));
        prop_assert!(verify_inclusion(index, size, &all[index as usize], &got, &root).is_ok());

        let got = assemble(&consistency_plan(old, size).unwrap(), nodes, size);
        prop_assert_eq!(&got, &reference.subproof(old as usize, 0, size as usize, true));
        let old_root = reference.mth(0, old as usize);
        prop_assert!(verify_consistency(old, size, &old_root, &root, &got).is_ok());
    }
}

/// What a proof reads from the store grows as log n, at any size: an inclusion proof asks for
/// at most 2·⌈log2 n⌉ stored nodes, a consistency proof with the two roots it states for at
/// most 4·⌈log2 n⌉ (so a proof in a ledger of 10 million records reads about a hundred rows).
#[test]
fn a_proof_reads_logarithmically_many_nodes() {
    let mut sizes: Vec<u64> = vec![1, 2, 3, 10_000_000, (1 << 40) - 1, 1 << 40, (1 << 40) + 1, u64::MAX / 2];
    // Sizes of every shape: all ones, alternating bits, a lone high bit and one more.
    for k in [7u32, 23, 40, 62] {
        sizes.extend([(1u64 << k) - 1, ((1u64 << k) - 1) / 3, (1u64 << k) + 1]);
    }
    for size in sizes {
        let log = u64::BITS - (size - 1).leading_zeros().min(63);
        let log = usize::try_from(log.max(1)).expect("a small number");
        for index in [0, 1, size / 3, size / 2, size.saturating_sub(2), size - 1] {
            let index = index.min(size - 1);
            let nodes = inclusion_plan(index, size).expect("a plan").nodes().len();
            assert!(nodes <= 2 * log, "inclusion of {index} in {size}: {nodes} nodes > 2·{log}");
            let old = index.max(1);
            let roots = range_nodes(0, old).len() + range_nodes(0, size).len();
            let nodes = consistency_plan(old, size).expect("a plan").nodes().len() + roots;
            assert!(nodes <= 4 * log, "consistency {old}..{size}: {nodes} nodes > 4·{log}");
        }
    }
}

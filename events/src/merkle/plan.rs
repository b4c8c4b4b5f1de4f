//! Proof shapes: which leaf ranges an RFC 9162 proof hashes, and which stored complete
//! subtrees make up each range.

use super::{NodeId, ProofError, ProofPlan};

/// The largest power of two strictly below `n` (n ≥ 2): where RFC 6962 splits a tree.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Decomposes `[begin, end)` into maximal complete subtrees, left to right.
pub fn range_nodes(begin: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut at = begin;
    while at < end {
        // The subtree must start aligned to its size and fit in what is left.
        let align = at.trailing_zeros().min(63);
        let fit = 63 - (end - at).leading_zeros();
        let level = align.min(fit);
        out.push(NodeId { level: level as u8, index: at >> level });
        at += 1 << level;
    }
    out
}

/// Leaf ranges of the inclusion proof (RFC 9162 §2.1.3.1 PATH), bottom-up.
pub(crate) fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut lo, mut hi) = (0, size);
    let mut top_down = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            top_down.push((mid, hi));
            hi = mid;
        } else {
            top_down.push((lo, mid));
            lo = mid;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// Leaf ranges of the consistency proof (RFC 9162 §2.1.4.1 SUBPROOF), bottom-up.
pub(crate) fn consistency_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::Sizes { old, new });
    }
    let (mut lo, mut hi) = (0, new);
    // `whole` is SUBPROOF's flag b: true while [lo, hi) still starts at the old tree's
    // left edge, whose root the verifier already knows.
    let mut whole = true;
    let mut top_down = Vec::new();
    while old != hi {
        let mid = lo + split_point(hi - lo);
        if old <= mid {
            top_down.push((mid, hi));
            hi = mid;
        } else {
            top_down.push((lo, mid));
            lo = mid;
            whole = false;
        }
    }
    if !whole {
        top_down.push((lo, hi));
    }
    top_down.reverse();
    Ok(top_down)
}

fn plan_of(ranges: Vec<(u64, u64)>) -> ProofPlan {
    ProofPlan { ranges: ranges.into_iter().map(|(b, e)| range_nodes(b, e)).collect() }
}

/// Plan for the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
    inclusion_ranges(index, size).map(plan_of)
}

/// Plan for the consistency proof between sizes `old` and `new` (0 < old ≤ new).
pub fn consistency_plan(old: u64, new: u64) -> Result<ProofPlan, ProofError> {
    consistency_ranges(old, new).map(plan_of)
}

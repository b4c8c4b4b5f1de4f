//! The RFC 6962 / RFC 9162 Merkle tree with SHA-256.
//!
//! leaf hash = SHA-256(0x00 ‖ leaf), node hash = SHA-256(0x01 ‖ left ‖ right),
//! the empty tree's root = SHA-256("").
//!
//! Storage keeps every complete subtree `(level, index)` = the subtree over leaves
//! `[index·2^level, (index+1)·2^level)`. A proof is a list of range hashes; each range
//! decomposes into O(log n) stored nodes ([`ProofPlan`]), so a proof costs O(log n) reads.

mod plan;
mod verify;

use sha2::{Digest, Sha256};

use crate::Hash32;

pub use plan::{consistency_plan, inclusion_plan, range_nodes};
pub use verify::{verify_consistency, verify_inclusion};

pub fn leaf_hash(leaf: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    Hash32(h.finalize().into())
}

pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

pub fn empty_root() -> Hash32 {
    Hash32(Sha256::digest([]).into())
}

/// A complete subtree: leaves `[index << level, (index + 1) << level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

/// The compact range `[0, size)`: one hash per set bit of `size`, largest subtree first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash32>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds from stored parts; errors unless `hashes.len() == size.count_ones()`.
    pub fn from_parts(size: u64, hashes: Vec<Hash32>) -> Result<Frontier, ProofError> {
        if hashes.len() != size.count_ones() as usize {
            return Err(ProofError::Malformed(format!(
                "frontier of size {size} needs {} hashes, got {}",
                size.count_ones(),
                hashes.len()
            )));
        }
        Ok(Frontier { size, hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn hashes(&self) -> &[Hash32] {
        &self.hashes
    }

    /// Appends a leaf hash; returns every complete subtree it completes, the leaf itself
    /// (level 0) first, then its ancestors by increasing level.
    pub fn push(&mut self, leaf_hash: Hash32) -> Vec<(NodeId, Hash32)> {
        let mut node = NodeId { level: 0, index: self.size };
        let mut hash = leaf_hash;
        let mut out = vec![(node, hash)];
        // Each trailing one bit of the old size is a left sibling waiting for this leaf.
        let mut bits = self.size;
        while bits & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            hash = node_hash(&left, &hash);
            node = NodeId { level: node.level + 1, index: node.index >> 1 };
            out.push((node, hash));
            bits >>= 1;
        }
        self.hashes.push(hash);
        self.size += 1;
        out
    }

    /// Root of `[0, size)` (the right fold of the hashes); the empty root when size is 0.
    pub fn root(&self) -> Hash32 {
        right_fold(&self.hashes).unwrap_or_else(empty_root)
    }

    /// Serialised form for storage: the hashes concatenated (32 bytes each).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.iter().flat_map(|h| h.0).collect()
    }

    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Frontier, ProofError> {
        if !bytes.len().is_multiple_of(32) {
            return Err(ProofError::Malformed(format!(
                "frontier bytes: {} is not a multiple of 32",
                bytes.len()
            )));
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|c| Hash32::from_slice(c).map_err(|e| ProofError::Malformed(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Frontier::from_parts(size, hashes)
    }
}

/// node_hash(h0, node_hash(h1, … node_hash(h_{n-2}, h_{n-1}))); `None` for no hashes.
pub(crate) fn right_fold(hashes: &[Hash32]) -> Option<Hash32> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// Which stored nodes a proof needs and how to fold them into proof hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    /// One entry per proof hash, in proof order; each lists the complete subtrees whose
    /// right fold is that hash (a single node when the range is itself complete).
    pub ranges: Vec<Vec<NodeId>>,
}

impl ProofPlan {
    /// Every distinct node the plan needs (to fetch in one query).
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut seen = std::collections::HashSet::new();
        self.ranges.iter().flatten().copied().filter(|n| seen.insert(*n)).collect()
    }

    /// Builds the proof from fetched node hashes; errors if one is missing.
    pub fn assemble(&self, mut get: impl FnMut(NodeId) -> Option<Hash32>) -> Result<Vec<Hash32>, ProofError> {
        self.ranges
            .iter()
            .map(|range| {
                let hashes = range
                    .iter()
                    .map(|&n| get(n).ok_or(ProofError::MissingNode(n)))
                    .collect::<Result<Vec<_>, _>>()?;
                right_fold(&hashes).ok_or_else(|| ProofError::Malformed("empty range in plan".into()))
            })
            .collect()
    }
}

/// [`verify_consistency`] over opaque byte strings, as transparency-log verifiers take them:
/// equal sizes compare the roots byte for byte (whatever their length); otherwise every hash
/// must be 32 bytes.
pub fn verify_consistency_bytes(
    old_size: u64,
    new_size: u64,
    old_root: &[u8],
    new_root: &[u8],
    proof: &[Vec<u8>],
) -> Result<(), ProofError> {
    if old_size == new_size && old_size > 0 {
        if !proof.is_empty() {
            return Err(ProofError::Length { got: proof.len(), want: 0 });
        }
        return if old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    let typed = |b: &[u8]| Hash32::from_slice(b).map_err(|e| ProofError::Malformed(e.to_string()));
    let proof = proof.iter().map(|h| typed(h)).collect::<Result<Vec<_>, _>>()?;
    verify_consistency(old_size, new_size, &typed(old_root)?, &typed(new_root)?, &proof)
}

/// In-memory reference: root of the given leaf hashes (for tests and small trees).
pub fn root_of(leaf_hashes: &[Hash32]) -> Hash32 {
    match leaf_hashes {
        [] => empty_root(),
        [one] => *one,
        _ => {
            // RFC 6962 MTH: split at the largest power of two strictly below n.
            let k = plan::split_point(leaf_hashes.len() as u64) as usize;
            node_hash(&root_of(&leaf_hashes[..k]), &root_of(&leaf_hashes[k..]))
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("invalid sizes: old {old}, new {new}")]
    Sizes { old: u64, new: u64 },
    #[error("proof has the wrong length: {got}, expected {want}")]
    Length { got: usize, want: usize },
    #[error("calculated root does not match")]
    RootMismatch,
    #[error("node {0:?} is missing")]
    MissingNode(NodeId),
    #[error("malformed: {0}")]
    Malformed(String),
}

//! Inclusion and consistency proofs read from the store: O(log n) node reads each.

use std::collections::HashMap;

use assay_events::Hash32;
use assay_events::b64::encode_std;
use assay_events::merkle::{self, NodeId, ProofPlan, leaf_hash};
use serde::Serialize;

use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Range(String),
    #[error(
        "no checkpoint was signed at tree size {0}; ask for the size of a checkpoint (the latest is {1}; `assay checkpoint --list` or GET /v1/checkpoints lists them)"
    )]
    NoCheckpoint(u64, u64),
    #[error("the tree is missing node {0:?}")]
    MissingNode(NodeId),
}

/// `assay proof inclusion --json` and `GET /v1/proof/inclusion`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InclusionProof {
    pub seq: u64,
    pub tree_size: u64,
    /// base64 of the leaf bytes.
    pub leaf: String,
    /// base64 of SHA-256(0x00 ‖ leaf).
    pub leaf_hash: String,
    pub proof: Vec<String>,
    /// The checkpoint note signed at `tree_size`.
    pub checkpoint: String,
}

/// `assay proof consistency --json` and `GET /v1/proof/consistency`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: String,
    pub new_root: String,
    pub proof: Vec<String>,
    /// The checkpoint note signed at `new_size`.
    pub checkpoint: String,
}

/// The size and note of the checkpoint signed at `size` (the latest where `None`). Every query
/// is a round trip to the store's connection, a good part of a proof's latency: the head is
/// read only when no size is asked for or none was signed at it (for the error's "latest").
async fn checkpoint_note(store: &Store, size: Option<u64>) -> Result<(u64, String), ProofError> {
    if let Some(size) = size
        && let Some(c) = store.checkpoint_at(size).await?
    {
        return Ok((size, c.note));
    }
    let head = store.head().await?.ok_or_else(|| ProofError::Range("the ledger is empty".into()))?;
    let Some(size) = size else {
        let size = head.checkpoint_size;
        return match store.checkpoint_at(size).await? {
            Some(c) => Ok((size, c.note)),
            None => Err(ProofError::NoCheckpoint(size, size)),
        };
    };
    Err(ProofError::NoCheckpoint(size, head.checkpoint_size))
}

async fn fetch(store: &Store, plan: &ProofPlan) -> Result<Vec<Hash32>, ProofError> {
    let nodes: HashMap<NodeId, Hash32> = store.nodes(&plan.nodes()).await?.into_iter().collect();
    plan.assemble(|id| nodes.get(&id).copied()).map_err(|e| match e {
        merkle::ProofError::MissingNode(id) => ProofError::MissingNode(id),
        other => ProofError::Range(other.to_string()),
    })
}

/// The root of the first `size` leaves, folded from stored nodes.
pub async fn root_at(store: &Store, size: u64) -> Result<Hash32, ProofError> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    let plan = ProofPlan { ranges: vec![merkle::range_nodes(0, size)] };
    Ok(fetch(store, &plan).await?[0])
}

pub async fn inclusion(store: &Store, seq: u64, size: Option<u64>) -> Result<InclusionProof, ProofError> {
    // The record does not depend on the checkpoint: both are read at once (on two of the
    // pool's connections), then the nodes.
    let (note, records) = tokio::join!(checkpoint_note(store, size), store.records(seq, 1));
    let (tree_size, checkpoint) = note?;
    let plan = merkle::inclusion_plan(seq, tree_size).map_err(|e| ProofError::Range(e.to_string()))?;
    let record = records?
        .into_iter()
        .next()
        .filter(|r| r.seq == seq)
        .ok_or_else(|| ProofError::Range(format!("no record {seq}")))?;
    let leaf = record.to_record()?.leaf();
    let proof = fetch(store, &plan).await?;
    Ok(InclusionProof {
        seq,
        tree_size,
        leaf: encode_std(&leaf),
        leaf_hash: encode_std(&leaf_hash(&leaf).0),
        proof: proof.iter().map(|h| encode_std(&h.0)).collect(),
        checkpoint,
    })
}

pub async fn consistency(store: &Store, old: u64, new: u64) -> Result<ConsistencyProof, ProofError> {
    let (new_size, checkpoint) = checkpoint_note(store, Some(new)).await?;
    let plan = merkle::consistency_plan(old, new_size).map_err(|e| ProofError::Range(e.to_string()))?;
    // The proof's nodes and both roots' in one query: each non-empty root is one more range
    // (`root_at`'s), after the proof's.
    let mut with_roots = plan.clone();
    with_roots.ranges.extend(
        [old, new_size].into_iter().filter(|&size| size > 0).map(|size| merkle::range_nodes(0, size)),
    );
    let mut proof = fetch(store, &with_roots).await?;
    let mut roots = proof.split_off(plan.ranges.len().min(proof.len())).into_iter();
    let mut root_of = |size: u64| match size {
        0 => Ok(merkle::empty_root()),
        _ => roots.next().ok_or_else(|| ProofError::Range(format!("no root folded for size {size}"))),
    };
    let (old_root, new_root) = (root_of(old)?, root_of(new_size)?);
    Ok(ConsistencyProof {
        old_size: old,
        new_size,
        old_root: encode_std(&old_root.0),
        new_root: encode_std(&new_root.0),
        proof: proof.iter().map(|h| encode_std(&h.0)).collect(),
        checkpoint,
    })
}

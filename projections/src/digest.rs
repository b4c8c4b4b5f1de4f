//! State digests: blake3 over a canonical JSON serialization.
//!
//! Canonical = serde_json of types whose maps are `BTreeMap`s (sorted keys) and whose
//! floats are finite, so equal states always give equal bytes.

use assay_events::Hash32;

/// blake3 of the canonical JSON of `state`.
pub fn state_digest<T: serde::Serialize>(state: &T) -> Hash32 {
    // Serializing plain data structures into a Vec cannot fail: no maps with non-string
    // keys and no custom serializers that error live in projection state.
    let bytes = serde_json::to_vec(state).expect("projection state serializes");
    Hash32::blake3(&bytes)
}

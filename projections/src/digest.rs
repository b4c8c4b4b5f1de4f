//! State digests: blake3 over the canonical JSON of a state ([`crate::canon`]: compact,
//! object keys sorted at every depth).
//!
//! States hold maps with string (or integer) keys and finite floats only, so equal states
//! give equal bytes, and the JSON a projection shows (`Projections::state_json`) hashes to
//! its digest once written canonically.

use assay_events::Hash32;

/// The canonical JSON text of `state`.
pub fn canonical_json<T: serde::Serialize>(state: &T) -> String {
    // Projection state is plain data: string or integer map keys, finite floats, no
    // serializer that can fail, so conversion to a JSON value cannot fail.
    let value = serde_json::to_value(state).expect("projection state serializes");
    crate::canon::canonical_string(&value)
}

/// blake3 of the canonical JSON of `state`.
pub fn state_digest<T: serde::Serialize>(state: &T) -> Hash32 {
    Hash32::blake3(canonical_json(state).as_bytes())
}

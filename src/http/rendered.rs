//! A projection's body as `/v1/projections/{name}` serves it, `{"seq","digest","state"}` with
//! `state` in canonical JSON, and the cache that renders the live state's bodies once per seq.

use std::collections::HashMap;
use std::sync::Mutex;

use assay_events::Hash32;
use assay_projections::{ProjectionName, Projections};
use axum::body::Bytes;

/// Rendered bodies of the live state: name → (seq, body).
#[derive(Default)]
pub struct RenderCache {
    bodies: Mutex<HashMap<ProjectionName, (Option<u64>, Bytes)>>,
}

impl RenderCache {
    /// The last body rendered for `name`, with the seq it was rendered at.
    pub fn get(&self, name: ProjectionName) -> Option<(Option<u64>, Bytes)> {
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).get(&name).cloned()
    }

    /// Keeps `body`, rendered at `seq`, as `name`'s (the one before is dropped).
    pub fn put(&self, name: ProjectionName, seq: Option<u64>, body: Bytes) {
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).insert(name, (seq, body));
    }
}

/// The body of projection `name` of `p`; None for a name `p` does not know.
pub fn render(p: &Projections, name: ProjectionName) -> Option<Bytes> {
    let state = p.state_json(name)?;
    let canonical = assay_projections::canon::canonical_string(&state);
    let digest = Hash32::blake3(canonical.as_bytes());
    let seq = p.seq().map_or("null".to_owned(), |s| s.to_string());
    Some(Bytes::from(format!(r#"{{"seq":{seq},"digest":"{}","state":{canonical}}}"#, digest.to_hex())))
}

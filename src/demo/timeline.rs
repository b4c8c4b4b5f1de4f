//! The generated history before it is appended: signed envelopes with their producer times,
//! put in time order at the end.
//!
//! Events that a gate reads (preflights, dispatch requests, control events, run endings,
//! evidence, artifact submissions) are emitted by the simulation in the order it decides
//! them, at non-decreasing times; the rest (metrics, heartbeats, telemetry, Xids, kernel
//! launches, claims) may be emitted ahead of time. Sorting by (time, emission order) thus
//! keeps every gate's inputs in the order the simulation assumed.

use assay_events::Hash32;
use assay_events::cloudevent::event_digest;
use assay_events::dsse::DecodedEnvelope;
use assay_events::keys::SignerKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use assay::ledger::build_envelope;

struct Pending {
    time_ns: i64,
    order: u64,
    envelope: DecodedEnvelope,
}

pub struct Timeline {
    events: Vec<Pending>,
    order: u64,
    /// Random bits of event ids (UUIDv7), seeded: the same seed gives the same ids.
    ids: StdRng,
    /// Events at or after this time are not emitted (the history ends there).
    pub end_ns: i64,
}

impl Timeline {
    pub fn new(seed: u64, end_ns: i64) -> Timeline {
        Timeline { events: Vec::new(), order: 0, ids: StdRng::seed_from_u64(seed ^ 0x1d5_u64), end_ns }
    }

    /// Signs and keeps one event; returns its event digest.
    pub fn emit(&mut self, key: &SignerKey, ty: &str, subject: &str, data: Value, time_ns: i64) -> Hash32 {
        let millis = u64::try_from(time_ns / 1_000_000).unwrap_or(0);
        let random: [u8; 10] = self.ids.r#gen();
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid().to_string();
        let envelope = build_envelope(key, ty, Some(subject), data, Some(id), time_ns);
        let digest = event_digest(&envelope.payload);
        self.events.push(Pending { time_ns, order: self.order, envelope });
        self.order += 1;
        digest
    }

    /// Like [`Timeline::emit`], unless `time_ns` is past the end of the history.
    pub fn emit_before_end(
        &mut self,
        key: &SignerKey,
        ty: &str,
        subject: &str,
        data: Value,
        time_ns: i64,
    ) -> Option<Hash32> {
        (time_ns < self.end_ns).then(|| self.emit(key, ty, subject, data, time_ns))
    }

    /// The envelopes by (time, emission order).
    pub fn into_sorted(mut self) -> Vec<DecodedEnvelope> {
        self.events.sort_by_key(|p| (p.time_ns, p.order));
        self.events.into_iter().map(|p| p.envelope).collect()
    }
}

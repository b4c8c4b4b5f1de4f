//! Stateless checks of an envelope before it reaches the sequencer, run in parallel:
//! decoding, the CloudEvent, the schema, the source binding, and the signature against the
//! key registry as last published (a key registered later in the same batch is checked again
//! inside the sequencer).

use assay_events::cloudevent::{event_digest, CloudEvent};
use assay_events::dsse::{DecodedEnvelope, Envelope, PAYLOAD_TYPE};
use assay_events::Hash32;
use assay_projections::KeyRegistry;
use rayon::prelude::*;

use super::error::Rejection;
use crate::schema;

/// The largest payload (CloudEvent bytes) the ledger accepts.
pub const PAYLOAD_BYTES_MAX: usize = 1 << 20;

/// Below this many envelopes, checking in the caller's thread beats a rayon fan-out.
const PARALLEL_ENVELOPES_MIN: usize = 16;

/// An envelope that passed the stateless checks.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub envelope: DecodedEnvelope,
    pub event: CloudEvent,
    pub digest: Hash32,
    /// The keyid (`name+hexid`) of the signature that `source` names.
    pub signer: String,
    /// The verifier key text the signature was verified with, if the key was known.
    pub verified_with: Option<String>,
}

/// Input to [`prepare_all`]: raw JSON bytes or an already decoded envelope.
pub enum Incoming {
    Json(Vec<u8>),
    Decoded(DecodedEnvelope),
}

/// Checks every envelope, in parallel when there are many.
pub fn prepare_all(items: Vec<Incoming>, keys: &KeyRegistry) -> Vec<Result<Prepared, Rejection>> {
    if items.len() < PARALLEL_ENVELOPES_MIN {
        items.into_iter().map(|i| prepare(i, keys)).collect()
    } else {
        items.into_par_iter().map(|i| prepare(i, keys)).collect()
    }
}

pub fn prepare(item: Incoming, keys: &KeyRegistry) -> Result<Prepared, Rejection> {
    let envelope = match item {
        Incoming::Json(bytes) => Envelope::parse(&bytes)?,
        Incoming::Decoded(env) => env,
    };
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(Rejection::Envelope(assay_events::dsse::EnvelopeError::PayloadType {
            expected: PAYLOAD_TYPE,
            got: envelope.payload_type.clone(),
        }));
    }
    if envelope.payload.len() > PAYLOAD_BYTES_MAX {
        return Err(Rejection::PayloadTooLarge { bytes: envelope.payload.len(), max: PAYLOAD_BYTES_MAX });
    }
    let event = CloudEvent::parse(&envelope.payload)?;
    schema::validate(&event.ty, &event.data)?;
    check_subject(&event)?;
    let signer = signer_keyid(&event, &envelope)?;
    let verified_with = match keys.get(&signer) {
        Some(entry) => {
            if !envelope.verify_with(&entry.verifier) {
                return Err(Rejection::BadSignature(signer));
            }
            Some(entry.vkey.clone())
        }
        None => None,
    };
    let digest = event_digest(&envelope.payload);
    Ok(Prepared { envelope, event, digest, signer, verified_with })
}

/// The keyid of the signature whose key name `source` (`assay:key/<name>`) names.
fn signer_keyid(event: &CloudEvent, envelope: &DecodedEnvelope) -> Result<String, Rejection> {
    let not_signer = || Rejection::SourceNotSigner { event_source: event.source.clone() };
    let name = event.source.strip_prefix("assay:key/").ok_or_else(not_signer)?;
    envelope
        .signatures
        .iter()
        .find(|s| s.keyid.rsplit_once('+').is_some_and(|(n, _)| n == name))
        .map(|s| s.keyid.clone())
        .ok_or_else(not_signer)
}

/// The subject an event's `data` dictates (schemas/events/README.md), for every v1 type.
pub fn expected_subject(event: &CloudEvent) -> Option<String> {
    let data = &event.data;
    let field = |name: &str| data.get(name).and_then(|v| v.as_str());
    let scoped = |prefix: &str, value: Option<&str>| value.map(|v| format!("{prefix}/{v}"));
    let ty = event.ty.as_str();
    match ty.split('.').next().unwrap_or("") {
        "ledger" | "audit" => Some("ledger".to_owned()),
        "control" => Some("control".to_owned()),
        "key" => scoped("key", field("vkey").and_then(|k| k.split('+').next())),
        "run" | "evidence" | "metric" | "kernel" | "dispatch" => scoped("run", field("run")),
        "artifact" => scoped("artifact", field("slug")),
        "claim" => scoped("artifact", field("artifact")),
        "worker" => scoped("worker", field("worker")),
        "gpu" if ty == "gpu.preflight" => {
            scoped("worker", field("host").or_else(|| event.source.strip_prefix("assay:key/")))
        }
        "gpu" => scoped("gpu", field("pci")),
        _ => None,
    }
}

fn check_subject(event: &CloudEvent) -> Result<(), Rejection> {
    match expected_subject(event) {
        Some(expected) if event.subject.as_deref() != Some(expected.as_str()) => {
            Err(Rejection::Subject { expected, got: event.subject.clone() })
        }
        _ => Ok(()),
    }
}

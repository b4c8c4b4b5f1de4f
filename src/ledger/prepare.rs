//! Stateless checks of an envelope before it reaches the sequencer, run in parallel:
//! decoding, the envelope and CloudEvent rules for new events (strict JSON, identifiers,
//! bounds), the schema, the source binding, and every signature against the key registry as
//! last published (a signature by a key not registered yet is checked again inside the
//! sequencer, against the keys at its position).

use assay_events::cloudevent::{CloudEvent, event_digest};
use assay_events::dsse::{
    DecodedEnvelope, Envelope, VERIFY_BATCH_MAX, signatures_canonical_json, verify_many,
};
use assay_events::keys::VerifierKey;
use assay_events::source::{source_key_name, source_signature};
use assay_events::{EventType, Hash32};
use assay_projections::KeyRegistry;
use assay_projections::keys::KeyEntry;
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
    /// blake3 of the canonical signatures JSON (the leaf's signatures digest): with `digest`,
    /// what makes a resend identical to a stored record.
    pub signatures_digest: Hash32,
    /// The canonical signatures JSON itself (as the store keeps it), made here on the worker
    /// threads so the sequencer does not make it again.
    pub signatures_json: Vec<u8>,
    /// The keyid (`name+hexid`) of the signature that `source` names.
    pub signer: String,
    /// Per signature, in envelope order: the verifier key text it verified under here, or
    /// None when its key was not registered yet (the sequencer checks it then).
    pub verified: Vec<Option<String>>,
}

impl Prepared {
    /// True when the signature `source` names verified here, under a registered key.
    pub fn signer_verified(&self) -> bool {
        self.envelope
            .signatures
            .iter()
            .zip(&self.verified)
            .any(|(s, v)| s.keyid == self.signer && v.is_some())
    }
}

/// Input to [`prepare_all`]: raw JSON bytes or an already decoded envelope.
pub enum Incoming {
    Json(Vec<u8>),
    Decoded(DecodedEnvelope),
}

/// Whether [`prepare_all`] checks the signatures by registered keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    /// Check each in Ed25519 batches.
    Verify,
    /// These very bytes passed every check here, their signatures under these very keys,
    /// before, in this process (the second pass of a whole-input append, which compares each
    /// chunk's bytes with a digest taken when it was checked): mark the signatures verified
    /// under the key the registry holds for their keyid, and skip the checks that are
    /// functions of the bytes alone (strict JSON, the envelope and CloudEvent rules, the
    /// schema, the subject), which would find what they found then. The sequencer checks
    /// again any signature whose key at its position is another.
    CheckedBefore,
}

/// Checks every envelope, in parallel when there are many; signatures by keys already
/// registered are checked in Ed25519 batches.
pub fn prepare_all(
    items: Vec<Incoming>,
    keys: &KeyRegistry,
    signatures: Signatures,
) -> Vec<Result<Prepared, Rejection>> {
    let parallel = items.len() >= PARALLEL_ENVELOPES_MIN;
    let strict = signatures == Signatures::Verify;
    let check = |item| check_unsigned(item, strict);
    let mut out: Vec<Result<Prepared, Rejection>> = if parallel {
        items.into_par_iter().map(check).collect()
    } else {
        items.into_iter().map(check).collect()
    };
    // (envelope, signature, key) of every signature whose key the registry knows.
    let jobs: Vec<(usize, usize, &KeyEntry)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.as_ref().ok()?)))
        .flat_map(|(i, p)| {
            p.envelope
                .signatures
                .iter()
                .enumerate()
                .filter_map(move |(j, s)| Some((i, j, keys.get(&s.keyid)?)))
        })
        .collect();
    let verdicts: Vec<bool> = {
        let pairs: Vec<(&DecodedEnvelope, &VerifierKey)> = jobs
            .iter()
            .filter_map(|(i, _, entry)| Some((&out[*i].as_ref().ok()?.envelope, &entry.verifier)))
            .collect();
        if signatures == Signatures::CheckedBefore {
            vec![true; pairs.len()]
        } else if parallel {
            pairs.par_chunks(VERIFY_BATCH_MAX).flat_map_iter(verify_many).collect()
        } else {
            verify_many(&pairs)
        }
    };
    for ((i, j, entry), ok) in jobs.into_iter().zip(verdicts) {
        if let Ok(p) = &mut out[i] {
            if ok {
                p.verified[j] = Some(entry.vkey.clone());
            } else {
                out[i] = Err(Rejection::BadSignature(p.envelope.signatures[j].keyid.clone()));
            }
        }
    }
    out
}

/// Every check but the signature; `strict: false` only decodes what passed them all before
/// ([`Signatures::CheckedBefore`]): the strict-JSON pass, the schema and the attribute rules
/// are about half the cost of this function.
fn check_unsigned(item: Incoming, strict: bool) -> Result<Prepared, Rejection> {
    let envelope = match item {
        Incoming::Json(bytes) => Envelope::parse(&bytes)?,
        Incoming::Decoded(env) => env,
    };
    if strict {
        envelope.check_submitted()?;
    }
    if envelope.payload.len() > PAYLOAD_BYTES_MAX {
        return Err(Rejection::PayloadTooLarge { bytes: envelope.payload.len(), max: PAYLOAD_BYTES_MAX });
    }
    let event = if strict {
        let event = CloudEvent::parse_submitted(&envelope.payload)?;
        schema::validate(&event.ty, &event.data)?;
        check_subject(&event)?;
        event
    } else {
        CloudEvent::parse(&envelope.payload)?
    };
    let signer = signer_keyid(&event, &envelope)?;
    let digest = event_digest(&envelope.payload);
    let signatures_json = signatures_canonical_json(&envelope.signatures);
    let signatures_digest = Hash32::blake3(&signatures_json);
    let verified = vec![None; envelope.signatures.len()];
    Ok(Prepared { envelope, event, digest, signatures_digest, signatures_json, signer, verified })
}

/// The keyid of the signature whose key name `source` (`assay:key/<name>`) names.
fn signer_keyid(event: &CloudEvent, envelope: &DecodedEnvelope) -> Result<String, Rejection> {
    source_signature(&event.source, &envelope.signatures)
        .map(|s| s.keyid.clone())
        .ok_or_else(|| Rejection::SourceNotSigner { event_source: event.source.clone() })
}

/// The subject an event's `data` dictates (schemas/events/README.md), for every v1 type;
/// `None` for a type outside v1.
pub fn expected_subject(event: &CloudEvent) -> Option<String> {
    let data = &event.data;
    let field = |name: &str| data.get(name).and_then(|v| v.as_str());
    let scoped = |prefix: &str, value: Option<&str>| value.map(|v| format!("{prefix}/{v}"));
    use EventType as T;
    match event.event_type()? {
        T::LedgerInitialized | T::AuditAttested => Some("ledger".to_owned()),
        T::ControlPaused | T::ControlResumed | T::ControlMaintenance | T::ControlEvidenceSync => {
            Some("control".to_owned())
        }
        T::KeyRegistered | T::KeyRevoked => scoped("key", field("vkey").and_then(|k| k.split('+').next())),
        T::RunQueued
        | T::RunStarted
        | T::RunHeartbeat
        | T::RunFinished
        | T::RunQuiesced
        | T::RunCancelled
        | T::EvidenceCaptured
        | T::EvidenceSynced
        | T::MetricRecorded
        | T::KernelLaunchCompleted
        | T::KernelLaunchFaulted
        | T::DispatchRequested
        | T::DispatchDecided => scoped("run", field("run")),
        T::ArtifactSubmitted | T::ArtifactAdmitted | T::ArtifactRejected | T::ArtifactSuperseded => {
            scoped("artifact", field("slug"))
        }
        T::ClaimAsserted | T::ClaimWithdrawn => scoped("artifact", field("artifact")),
        T::WorkerPreflight => scoped("worker", field("worker")),
        T::GpuPreflight => scoped("worker", field("host").or_else(|| source_key_name(&event.source))),
        T::GpuTelemetry | T::GpuXid => scoped("gpu", field("pci")),
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

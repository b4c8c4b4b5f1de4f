//! Assay's event and record model.
//!
//! Pure: this crate never does I/O, never reads a clock and never draws randomness.
//! Time is data in records; keys are generated from seeds the caller supplies.
//!
//! - [`dsse`]: DSSE envelopes and PAE.
//! - [`cloudevent`]: the CloudEvents 1.0 payload.
//! - [`keys`]: Ed25519 keys in C2SP signed-note text form.
//! - [`note`]: C2SP signed notes.
//! - [`checkpoint`]: C2SP `tlog-checkpoint` bodies, signed as notes.
//! - [`cosignature`]: C2SP `cosignature/v1`, a witness's timestamped signature on a checkpoint.
//! - [`merkle`]: the RFC 6962 SHA-256 tree, its compact frontier, proofs and their checks.
//! - [`record`]: the record leaf, the record hash and the hash chain.
//! - [`schemas`]: the v1 event types ([`EventType`]) and their compiled-in schemas.
//! - [`roles`]: the roles that may emit each event type.
//! - [`source`]: the key an event's `source` names, and that key's signature.
//! - [`pci`]: PCI bus ids in their one canonical form.
//! - [`text`]: the rule for identifier strings (no control characters, bounded length).
//! - [`json`]: strict JSON (no duplicate keys).
//! - [`witness_policy`]: which witnesses a verifier trusts, and the quorum K of N it requires.
//! - [`xid`]: NVIDIA's Xid catalog: class and recommended action per Xid code.

#![forbid(unsafe_code)]

pub mod b64;
pub mod checkpoint;
pub mod cloudevent;
pub mod cosignature;
pub mod dsse;
pub mod hash;
pub mod json;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod pci;
pub mod record;
pub mod roles;
pub mod schemas;
pub mod source;
pub mod text;
pub mod witness_policy;
pub mod xid;

pub use hash::Hash32;
pub use schemas::{EventType, UnknownEventType};

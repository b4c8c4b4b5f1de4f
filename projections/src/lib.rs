//! Assay's projections: pure state machines over records.
//!
//! Every projection folds records in seq order with `apply(&Record)`, is deterministic, and
//! has a `digest()`: blake3 of its canonical JSON ([`digest`]). Projections never do I/O,
//! never read a clock and never write events; time is data (`received_at_ns`, the event's
//! `time`). The sequencer consults them to decide [`gates`].
//!
//! - [`keys`]: trusted keys and roles.
//! - [`authorize`]: who may sign what, the one rule ingest, verify and export verification apply.
//! - [`queue`]: runs by state, GPU lanes, pause and maintenance, preflights, decisions.
//! - [`corpus`]: artifacts by slug and version, canonical versions, duplicates.
//! - [`audit`]: claim verdicts from runs, metrics, Xids, kernel launches and evidence.
//! - [`gpus`]: per-device (host, PCI id) telemetry, Xid history, needs-reset.
//! - [`kernels`]: the campaign matrix; [`kernel_runs`]: the campaign runs, latest first.
//! - [`campaign_diff`]: one campaign run's cells, and the regression diff of two runs.
//! - [`bundle`]: all of them together ([`Projections`]).
//! - [`name`]: the projection names, in one list ([`ProjectionName`]).
//! - [`reasons`]: every reason code the verdicts and gates write, in words.

#![forbid(unsafe_code)]

pub mod audit;
pub mod authorize;
pub mod bundle;
pub mod campaign_diff;
pub mod canon;
pub mod corpus;
mod data;
pub mod decimal;
pub mod digest;
pub mod gates;
pub mod gpus;
pub mod kernel_runs;
pub mod kernels;
pub mod keys;
pub mod name;
pub mod pci;
pub mod queue;
pub mod reasons;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod xid_class;

pub use bundle::Projections;
pub use data::reason_code;
pub use gates::{
    AdmissionDecision, DispatchDecision, GateError, LedgerDecision, admission_decision, dispatch_decision,
    ledger_event_data,
};
pub use keys::KeyRegistry;
pub use name::{ProjectionName, UnknownProjection};

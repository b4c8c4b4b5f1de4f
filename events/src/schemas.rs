//! The v1 event types and their `data` schemas (`schemas/events/<type>.json`), from one list:
//! the schema texts are compiled in, so nothing reads them at run time.

/// Declares [`EVENT_TYPES`] and [`SCHEMA_TEXTS`] from the same list of types.
macro_rules! v1_types {
    ($($ty:literal),* $(,)?) => {
        /// Every v1 event type.
        pub const EVENT_TYPES: &[&str] = &[$($ty),*];
        /// Every v1 event type with its JSON Schema (2020-12) text.
        pub const SCHEMA_TEXTS: &[(&str, &str)] =
            &[$(($ty, include_str!(concat!("../../schemas/events/", $ty, ".json")))),*];
    };
}

v1_types![
    "ledger.initialized",
    "key.registered",
    "key.revoked",
    "control.paused",
    "control.resumed",
    "control.maintenance",
    "run.queued",
    "worker.preflight",
    "dispatch.requested",
    "dispatch.decided",
    "run.started",
    "run.heartbeat",
    "run.finished",
    "run.quiesced",
    "run.cancelled",
    "evidence.captured",
    "metric.recorded",
    "kernel.launch.completed",
    "kernel.launch.faulted",
    "gpu.preflight",
    "gpu.telemetry",
    "gpu.xid",
    "artifact.submitted",
    "artifact.admitted",
    "artifact.rejected",
    "artifact.superseded",
    "claim.asserted",
    "claim.withdrawn",
    "audit.attested",
];

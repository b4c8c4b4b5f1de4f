//! The v1 event types and their `data` schemas (`schemas/events/<type>.json`), from one list:
//! the [`EventType`] enum, [`EVENT_TYPES`] and [`SCHEMA_TEXTS`] are all generated from it, and
//! the schema texts are compiled in, so nothing reads them at run time.

/// Declares [`EventType`], [`EVENT_TYPES`] and [`SCHEMA_TEXTS`] from the same list of types.
macro_rules! v1_types {
    ($($variant:ident => $ty:literal),* $(,)?) => {
        /// A v1 event type. Records keep their `type` as the string the producer wrote; this is
        /// that string parsed, for matching. A type outside v1 (a later version's) has no
        /// variant: [`EventType::parse`] refuses it and callers treat it as unknown.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $(
                #[doc = concat!("`", $ty, "`")]
                $variant,
            )*
        }

        impl EventType {
            /// Every v1 event type, in the order of the list.
            pub const ALL: &[EventType] = &[$(EventType::$variant),*];

            /// The type as it is written in events (`run.queued`, …).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $ty,)*
                }
            }

            /// Parses a v1 type string; anything else is [`UnknownEventType`].
            pub fn parse(s: &str) -> Result<EventType, UnknownEventType> {
                match s {
                    $($ty => Ok(EventType::$variant),)*
                    _ => Err(UnknownEventType(s.to_owned())),
                }
            }

            /// The `$id` of the type's schema, which CloudEvents name in `dataschema`.
            pub const fn schema_id(self) -> &'static str {
                match self {
                    $(EventType::$variant => concat!("https://assay.dev/schemas/events/", $ty, ".json"),)*
                }
            }

            /// The type's JSON Schema (2020-12) text.
            pub const fn schema_text(self) -> &'static str {
                match self {
                    $(EventType::$variant =>
                        include_str!(concat!("../../schemas/events/", $ty, ".json")),)*
                }
            }
        }

        /// Every v1 event type.
        pub const EVENT_TYPES: &[&str] = &[$($ty),*];
        /// Every v1 event type with its JSON Schema (2020-12) text.
        pub const SCHEMA_TEXTS: &[(&str, &str)] =
            &[$(($ty, include_str!(concat!("../../schemas/events/", $ty, ".json")))),*];
    };
}

v1_types![
    LedgerInitialized => "ledger.initialized",
    KeyRegistered => "key.registered",
    KeyRevoked => "key.revoked",
    ControlPaused => "control.paused",
    ControlResumed => "control.resumed",
    ControlMaintenance => "control.maintenance",
    ControlEvidenceSync => "control.evidence_sync",
    RunQueued => "run.queued",
    WorkerPreflight => "worker.preflight",
    DispatchRequested => "dispatch.requested",
    DispatchDecided => "dispatch.decided",
    RunStarted => "run.started",
    RunHeartbeat => "run.heartbeat",
    RunFinished => "run.finished",
    RunQuiesced => "run.quiesced",
    RunCancelled => "run.cancelled",
    EvidenceCaptured => "evidence.captured",
    EvidenceSynced => "evidence.synced",
    MetricRecorded => "metric.recorded",
    KernelLaunchCompleted => "kernel.launch.completed",
    KernelLaunchFaulted => "kernel.launch.faulted",
    GpuPreflight => "gpu.preflight",
    GpuTelemetry => "gpu.telemetry",
    GpuXid => "gpu.xid",
    ArtifactSubmitted => "artifact.submitted",
    ArtifactAdmitted => "artifact.admitted",
    ArtifactRejected => "artifact.rejected",
    ArtifactSuperseded => "artifact.superseded",
    ClaimAsserted => "claim.asserted",
    ClaimWithdrawn => "claim.withdrawn",
    AuditAttested => "audit.attested",
];

/// A type string that is not a v1 event type (a typo, or a later version's type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a v1 event type")]
pub struct UnknownEventType(pub String);

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<EventType, UnknownEventType> {
        EventType::parse(s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// So that a test can compare a type with the string it expects.
impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list() {
        assert_eq!(EventType::ALL.len(), EVENT_TYPES.len());
        for (i, t) in EventType::ALL.iter().enumerate() {
            assert_eq!(t.as_str(), EVENT_TYPES[i]);
            assert_eq!(SCHEMA_TEXTS[i], (t.as_str(), t.schema_text()));
            assert_eq!(EventType::parse(t.as_str()), Ok(*t));
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
            assert_eq!(t.to_string(), t.as_str());
            let schema: serde_json::Value = serde_json::from_str(t.schema_text()).expect("a schema");
            assert_eq!(schema["$id"], t.schema_id(), "the dataschema of {t} is its schema's $id");
        }
        for s in ["", "run", "run.queued ", "Run.Queued", "run.queued.v2"] {
            assert_eq!(EventType::parse(s), Err(UnknownEventType(s.to_owned())));
        }
    }
}

//! The roles, and the roles allowed to emit each v1 event type (DESIGN §2).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Dispatcher,
    Worker,
    Runner,
    Author,
    Auditor,
    /// The ledger's own key.
    Ledger,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Worker => "worker",
            Role::Runner => "runner",
            Role::Author => "author",
            Role::Auditor => "auditor",
            Role::Ledger => "ledger",
        }
    }
    /// Parses "admin", "dispatcher", …; `ledger` is not grantable and is rejected here.
    pub fn parse_grantable(s: &str) -> Option<Role> {
        // Only the ledger's own key holds `ledger`; a key.registered event cannot grant it.
        match s {
            "admin" => Some(Role::Admin),
            "dispatcher" => Some(Role::Dispatcher),
            "worker" => Some(Role::Worker),
            "runner" => Some(Role::Runner),
            "author" => Some(Role::Author),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

pub use crate::schemas::{EVENT_TYPES, EventType};

impl EventType {
    /// The roles any of which lets a key emit this type.
    /// admin: key.*, control.*, artifact.superseded; dispatcher: run.queued,
    /// dispatch.requested, run.cancelled; worker: worker.preflight,
    /// run.started/finished/quiesced/heartbeat, evidence.captured, metric.recorded; runner:
    /// kernel.*, gpu.*, and all a worker may; author: artifact.submitted, claim.asserted,
    /// claim.withdrawn; auditor: audit.attested; ledger: ledger.initialized,
    /// dispatch.decided, artifact.admitted, artifact.rejected, evidence.synced.
    pub fn allowed_roles(self) -> &'static [Role] {
        use EventType as T;
        use Role::*;
        match self {
            T::KeyRegistered | T::KeyRevoked => &[Admin],
            T::ControlPaused | T::ControlResumed | T::ControlMaintenance | T::ControlEvidenceSync => &[Admin],
            T::ArtifactSuperseded => &[Admin],
            T::RunQueued | T::DispatchRequested | T::RunCancelled => &[Dispatcher],
            T::WorkerPreflight
            | T::RunStarted
            | T::RunFinished
            | T::RunQuiesced
            | T::RunHeartbeat
            | T::EvidenceCaptured
            | T::MetricRecorded => &[Worker, Runner],
            T::KernelLaunchCompleted | T::KernelLaunchFaulted => &[Runner],
            T::GpuPreflight | T::GpuTelemetry | T::GpuXid => &[Runner],
            T::ArtifactSubmitted | T::ClaimAsserted | T::ClaimWithdrawn => &[Author],
            T::AuditAttested => &[Auditor],
            T::LedgerInitialized
            | T::DispatchDecided
            | T::ArtifactAdmitted
            | T::ArtifactRejected
            | T::EvidenceSynced => &[Ledger],
        }
    }

    /// A change to the key registry after genesis: `key.registered` or `key.revoked`.
    pub fn is_key_change(self) -> bool {
        matches!(self, EventType::KeyRegistered | EventType::KeyRevoked)
    }
}

/// The roles any of which lets a key emit `event_type` ([`EventType::allowed_roles`]);
/// `None` for a type outside v1, so that an unknown `key.foo` gets no role.
pub fn allowed_roles(event_type: &str) -> Option<&'static [Role]> {
    EventType::parse(event_type).ok().map(EventType::allowed_roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_roles_and_unknown_has_none() {
        for t in EVENT_TYPES {
            assert!(allowed_roles(t).is_some_and(|r| !r.is_empty()), "{t}");
        }
        for t in ["key.foo", "kernel.x", "gpu", "", "run.queued "] {
            assert_eq!(allowed_roles(t), None, "{t:?}");
        }
    }

    #[test]
    fn roles_per_design_table() {
        use Role::*;
        let may = |t: &str, r: Role| allowed_roles(t).is_some_and(|rs| rs.contains(&r));
        assert!(may("key.registered", Admin) && may("control.paused", Admin));
        assert!(may("artifact.superseded", Admin) && !may("artifact.superseded", Author));
        assert!(may("run.queued", Dispatcher) && !may("run.queued", Worker));
        assert!(may("run.heartbeat", Worker) && may("run.heartbeat", Runner));
        assert!(may("metric.recorded", Runner) && may("evidence.captured", Worker));
        assert!(may("kernel.launch.faulted", Runner) && !may("kernel.launch.faulted", Worker));
        assert!(may("gpu.xid", Runner) && !may("gpu.xid", Admin));
        assert!(may("claim.asserted", Author) && may("audit.attested", Auditor));
        assert!(may("dispatch.decided", Ledger) && !may("dispatch.decided", Dispatcher));
        assert!(may("ledger.initialized", Ledger) && !may("ledger.initialized", Admin));
        // Every type is in the table and every table entry is a known type.
        let roles = [Admin, Dispatcher, Worker, Runner, Author, Auditor, Ledger];
        let total: usize = EVENT_TYPES.iter().map(|t| roles.iter().filter(|r| may(t, **r)).count()).sum();
        // 31 types, 7 of which (the worker's) two roles may emit.
        assert_eq!(total, EVENT_TYPES.len() + 7);
    }

    #[test]
    fn role_strings() {
        for r in [Role::Admin, Role::Dispatcher, Role::Worker, Role::Runner, Role::Author, Role::Auditor] {
            assert_eq!(Role::parse_grantable(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert_eq!(Role::Ledger.as_str(), "ledger");
        assert_eq!(Role::parse_grantable("ledger"), None);
        assert_eq!(Role::parse_grantable("Admin"), None);
    }
}

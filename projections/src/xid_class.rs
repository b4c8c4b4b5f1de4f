//! Xid classes: which NVIDIA Xid errors are hardware faults (they taint runs on that GPU)
//! and which are the application's own doing (context only).
//!
//! The audit's classes live beside the Xid catalog ([`assay_events::xid::audit_class`], the
//! module the runner labels events from, with a test that they agree): a code the audit
//! classes takes that class; other codes take the class the producer recorded in the event's
//! `severity`.

use assay_events::xid::{Severity, audit_class};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XidClass {
    Hardware,
    Nvlink,
    Application,
    Driver,
    Informational,
    Unknown,
}

impl XidClass {
    pub fn as_str(self) -> &'static str {
        match self {
            XidClass::Hardware => "hardware",
            XidClass::Nvlink => "nvlink",
            XidClass::Application => "application",
            XidClass::Driver => "driver",
            XidClass::Informational => "informational",
            XidClass::Unknown => "unknown",
        }
    }

    /// The `severity` vocabulary of `gpu.xid`; anything else is `Unknown`.
    pub fn from_severity(severity: &str) -> XidClass {
        match severity {
            "hardware" => XidClass::Hardware,
            "nvlink" => XidClass::Nvlink,
            "application" => XidClass::Application,
            "driver" => XidClass::Driver,
            "informational" => XidClass::Informational,
            _ => XidClass::Unknown,
        }
    }

    /// Hardware and NVLink Xids taint the runs on that GPU inside their window.
    pub fn taints(self) -> bool {
        matches!(self, XidClass::Hardware | XidClass::Nvlink)
    }
}

impl From<Severity> for XidClass {
    fn from(severity: Severity) -> XidClass {
        match severity {
            Severity::Hardware => XidClass::Hardware,
            Severity::Nvlink => XidClass::Nvlink,
            Severity::Application => XidClass::Application,
            Severity::Driver => XidClass::Driver,
            Severity::Informational => XidClass::Informational,
            _ => XidClass::Unknown,
        }
    }
}

/// The audit's class for `code`, where the audit decides it whatever the event says
/// ([`assay_events::xid::audit_class`]: v1's rules, kept so that verdicts recomputed from an
/// older export or bundle agree with it).
pub fn catalog_class(code: u32) -> Option<XidClass> {
    audit_class(code).map(XidClass::from)
}

/// The table's class for `code`, else the event's own `severity`.
pub fn classify(code: u32, severity: &str) -> XidClass {
    catalog_class(code).unwrap_or_else(|| XidClass::from_severity(severity))
}

/// True iff the recommended `action` needs the GPU reset (or the node rebooted).
pub fn action_needs_reset(action: &str) -> bool {
    matches!(action, "RESET_GPU" | "REBOOT" | "DRAIN_AND_RESET")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_then_severity() {
        for code in [48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120] {
            assert_eq!(classify(code, "application"), XidClass::Hardware, "{code}");
        }
        for code in 144..=150 {
            assert_eq!(classify(code, "unknown"), XidClass::Nvlink);
        }
        // Codes the catalog says taint but the audit leaves to the event (v1's rules).
        assert_eq!(classify(54, "informational"), XidClass::Informational);
        for code in [13, 31, 43, 45] {
            assert_eq!(classify(code, "hardware"), XidClass::Application, "{code}");
        }
        assert_eq!(classify(154, "hardware"), XidClass::Hardware);
        assert_eq!(classify(8, "driver"), XidClass::Driver);
        assert_eq!(classify(999, "bogus"), XidClass::Unknown);
        assert!(XidClass::Hardware.taints() && XidClass::Nvlink.taints());
        assert!(!XidClass::Application.taints() && !XidClass::Driver.taints());
        assert!(action_needs_reset("RESET_GPU") && !action_needs_reset("RESTART_APP"));
    }
}

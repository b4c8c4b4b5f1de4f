//! Severity and recommended action per Xid, after NVIDIA's Xid catalog.
//!
//! Source: NVIDIA, "Analyzing Xid Errors with the Xid Catalog" (Ampere and newer GPUs),
//! <https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html>, columns *Mnemonic*,
//! *Description* and *Resolution Bucket (Immediate Action)*; for codes the catalog marks as
//! unused on current GPUs (61) the older catalog,
//! <https://docs.nvidia.com/deploy/xid-errors/archive/index.html>. The immediate-action bucket is
//! kept verbatim in [`XidInfo::catalog_action`]; [`Action`] is a coarser reading of it:
//!
//! | catalog bucket | [`Action`] |
//! |---|---|
//! | `IGNORE` | `NONE` |
//! | `RESTART_APP` | `RESTART_APP` |
//! | `RESET_GPU`, `WORKFLOW_XID_48`, `WORKFLOW_NVLINK_ERR` (both say "a GPU reset or node reboot is needed") | `RESET_GPU` |
//! | `RESTART_BM` | `REBOOT` |
//! | `CHECK_MECHANICALS` | `CHECK_MECHANICALS` |
//! | `CONTACT_SUPPORT` | `CONTACT_SUPPORT` |
//! | `UPDATE_SWFW` | `UPDATE_SOFTWARE` |
//! | `RESTART_VM` | `RESTART_VM` |
//! | `WORKFLOW_XID_45` (follow the Xid it accompanies) | `NONE` |
//! | `WORKFLOW_NVLINK5_ERR` (Xids 144–150: decided by the error unit; see the Xid 154 that follows) | `WORKFLOW_NVLINK` |
//! | `XID_154` | `SEE_RECOVERY_ACTION`, refined from the message by [`classify`] |
//!
//! [`Severity`] and [`XidInfo::taints_hardware`] are this project's classes: `hardware` Xids
//! (memory ECC, row remapping, fallen off the bus, GSP, micro-controller halts) and the
//! NVLink faults taint runs on that GPU; `application` Xids (13, 31, 43, 45, …) are the
//! program's own fault and do not; `driver` Xids are software-side; `informational` ones
//! report state.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::record::XidRecord;
use super::recovery::{RecoveryAction, recovery_change};

/// The class of an Xid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// The GPU (memory, bus, micro-controllers) failed.
    Hardware,
    /// The application faulted; the GPU is fine.
    Application,
    /// Driver or firmware side.
    Driver,
    /// An NVLink fault.
    Nvlink,
    /// A state report, not a fault.
    Informational,
    /// Not in the catalog.
    Unknown,
}

impl Severity {
    /// The lowercase name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Hardware => "hardware",
            Severity::Application => "application",
            Severity::Driver => "driver",
            Severity::Nvlink => "nvlink",
            Severity::Informational => "informational",
            Severity::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do about an Xid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Action {
    /// Nothing.
    None,
    /// Restart the application.
    RestartApp,
    /// Reset the GPU (or reboot the node).
    ResetGpu,
    /// Reboot the node.
    Reboot,
    /// Check power cables and seating.
    CheckMechanicals,
    /// Contact the vendor.
    ContactSupport,
    /// Update driver, firmware or software.
    UpdateSoftware,
    /// Restart the virtual machine.
    RestartVm,
    /// Stop peer-to-peer traffic to the GPU.
    DrainP2p,
    /// NVLink5 diagnostic workflow: the error unit decides; follow the Xid 154 that follows.
    WorkflowNvlink,
    /// An Xid 154 whose recovery action could not be read.
    SeeRecoveryAction,
    /// Not in the catalog.
    Unknown,
}

impl Action {
    /// The upper-case name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "NONE",
            Action::RestartApp => "RESTART_APP",
            Action::ResetGpu => "RESET_GPU",
            Action::Reboot => "REBOOT",
            Action::CheckMechanicals => "CHECK_MECHANICALS",
            Action::ContactSupport => "CONTACT_SUPPORT",
            Action::UpdateSoftware => "UPDATE_SOFTWARE",
            Action::RestartVm => "RESTART_VM",
            Action::DrainP2p => "DRAIN_P2P",
            Action::WorkflowNvlink => "WORKFLOW_NVLINK",
            Action::SeeRecoveryAction => "SEE_RECOVERY_ACTION",
            Action::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The catalog's entry for one Xid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct XidInfo {
    /// The Xid number.
    pub code: u32,
    /// NVIDIA's mnemonic, e.g. `ROBUST_CHANNEL_GPU_ECC_DBE`; `UNKNOWN` when not catalogued.
    pub name: &'static str,
    /// NVIDIA's short description.
    pub description: &'static str,
    /// This project's class for the Xid.
    pub severity: Severity,
    /// What to do.
    pub action: Action,
    /// The catalog's immediate-action bucket, verbatim (`UNKNOWN` when not catalogued).
    pub catalog_action: &'static str,
    /// Whether a run on this GPU around this Xid is tainted.
    pub taints_hardware: bool,
}

impl XidInfo {
    /// Whether the catalog knows this code.
    pub fn is_known(&self) -> bool {
        self.severity != Severity::Unknown
    }
}

use Action as A;
use Severity as S;

type Row = (u32, &'static str, &'static str, Severity, Action, &'static str, bool);

/// Catalogued Xids, sorted by code.
#[rustfmt::skip]
const CATALOG: &[Row] = &[
    (8, "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT", "GPU stopped processing", S::Driver, A::RestartApp, "RESTART_APP", false),
    (11, "ROBUST_CHANNEL_GR_ERROR_MISSING_HW", "Invalid or corrupted push buffer stream", S::Application, A::RestartApp, "RESTART_APP", false),
    (13, "ROBUST_CHANNEL_GR_EXCEPTION", "Graphics Engine Exception", S::Application, A::RestartApp, "RESTART_APP", false),
    (14, "ROBUST_CHANNEL_FAKE_ERROR", "Fake or injected error", S::Informational, A::None, "IGNORE", false),
    (31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT", "GPU memory page fault", S::Application, A::RestartApp, "RESTART_APP", false),
    (32, "ROBUST_CHANNEL_PBDMA_ERROR", "Invalid or corrupted push buffer stream", S::Driver, A::RestartApp, "RESTART_APP", false),
    (38, "ROBUST_CHANNEL_FECS_ERR_WATCHDOG_TIMEOUT", "Driver firmware error", S::Driver, A::None, "IGNORE", false),
    (43, "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR", "GPU stopped processing", S::Application, A::None, "IGNORE", false),
    (44, "ROBUST_CHANNEL_GR_FAULT_DURING_CTXSW", "Graphics Engine fault during context switch", S::Driver, A::None, "IGNORE", false),
    (45, "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL", "Preemptive cleanup, due to previous errors", S::Application, A::None, "WORKFLOW_XID_45", false),
    (46, "ROBUST_CHANNEL_GPU_TIMEOUT_ERROR", "GPU stopped processing", S::Driver, A::ResetGpu, "RESET_GPU", false),
    (48, "ROBUST_CHANNEL_GPU_ECC_DBE", "Double Bit ECC Error", S::Hardware, A::ResetGpu, "WORKFLOW_XID_48", true),
    (54, "SILENT_RUNNING_PWR_REDUCED_CLOCKING", "Auxiliary power is not connected to the GPU board", S::Hardware, A::CheckMechanicals, "CHECK_MECHANICALS", true),
    (61, "PMU_BREAKPOINT", "Internal micro-controller breakpoint/warning", S::Hardware, A::ContactSupport, "CONTACT_SUPPORT", true),
    (62, "PMU_HALT_ERROR", "Internal micro-controller halt", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (63, "INFOROM_DRAM_RETIREMENT_EVENT", "GPU memory remapping event", S::Hardware, A::None, "IGNORE", true),
    (64, "INFOROM_DRAM_RETIREMENT_FAILURE", "GPU memory remapping failure", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (69, "ROBUST_CHANNEL_GR_CLASS_ERROR", "Graphics Engine class error", S::Application, A::RestartApp, "RESTART_APP", false),
    (74, "NVLINK_ERROR", "NVLINK Error", S::Nvlink, A::ResetGpu, "WORKFLOW_NVLINK_ERR", true),
    (78, "VGPU_START_ERROR", "vGPU Start Error", S::Driver, A::UpdateSoftware, "UPDATE_SWFW", false),
    (79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS", "GPU has fallen off the bus", S::Hardware, A::Reboot, "RESTART_BM", true),
    (92, "EXCESSIVE_SBE_INTERRUPTS", "High single-bit ECC error rate", S::Hardware, A::None, "IGNORE", true),
    (94, "ROBUST_CHANNEL_CONTAINED_ERROR", "Contained memory error", S::Hardware, A::RestartApp, "RESTART_APP", true),
    (95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", "Uncontained memory error", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (109, "ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR", "Context Switch Timeout Error", S::Driver, A::ResetGpu, "RESET_GPU", false),
    (110, "SEC_FAULT_ERROR", "Security Fault Error", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (119, "GSP_RPC_TIMEOUT", "GSP RPC Timeout", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (120, "GSP_ERROR", "GSP Error", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (121, "C2C_ERROR", "C2C Error (corrected)", S::Nvlink, A::None, "IGNORE", false),
    (136, "ALI_TRAINING_FAIL", "Link Training Failed", S::Nvlink, A::ResetGpu, "RESET_GPU", true),
    (137, "NVLINK_PRIV_ERR", "NVLink Privilege Error", S::Application, A::None, "IGNORE", false),
    (140, "UNRECOVERABLE_ECC_ERROR_ESCAPE", "ECC Unrecovered Error", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (143, "GPU_INIT_ERROR", "GPU Initialization Error", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (144, "NVLINK_SAW_ERROR", "NVLINK: SAW Error", S::Nvlink, A::WorkflowNvlink, "WORKFLOW_NVLINK5_ERR", true),
    (145, "NVLINK_RLW_ERROR", "NVLINK: RLW Error", S::Nvlink, A::WorkflowNvlink, "WORKFLOW_NVLINK5_ERR", true),
    (146, "NVLINK_TLW_ERROR", "NVLINK: TLW Error", S::Nvlink, A::WorkflowNvlink, "WORKFLOW_NVLINK5_ERR", true),
    (147, "NVLINK_TREX_ERROR", "NVLINK: TREX Error", S::Nvlink, A::WorkflowNvlink, "WORKFLOW_NVLINK5_ERR", true),
    (148, "NVLINK_NVLPW_CTRL_ERROR", "NVLINK: NVLPW_CTRL Error", S::Nvlink, A::WorkflowNvlink, "WORKFLOW_NVLINK5_ERR", true),
    (149, "NVLINK_NETIR_ERROR", "NVLINK: NETIR Error", S::Nvlink, A::WorkflowNvlink, "WORKFLOW_NVLINK5_ERR", true),
    (150, "NVLINK_MSE_ERROR", "NVLINK: MSE Error", S::Nvlink, A::WorkflowNvlink, "WORKFLOW_NVLINK5_ERR", true),
    (151, "ROBUST_CHANNEL_KEY_ROTATION_ERROR", "Key rotation Error", S::Driver, A::RestartVm, "RESTART_VM", false),
    (154, "GPU_RECOVERY_ACTION_CHANGED", "GPU Recovery Action Changed", S::Informational, A::SeeRecoveryAction, "XID_154", false),
    (155, "NVLINK_SW_DEFINED_ERROR", "NVLINK: SW Defined Error (intentional link down)", S::Nvlink, A::ResetGpu, "RESET_GPU", false),
    (156, "RESOURCE_RETIREMENT_EVENT", "Resource Retirement Event", S::Hardware, A::ResetGpu, "RESET_GPU", true),
    (157, "RESOURCE_RETIREMENT_FAILURE", "Resource Retirement Failure", S::Hardware, A::None, "IGNORE", true),
    (158, "GPU_FATAL_TIMEOUT", "GPU Fatal Timeout", S::Hardware, A::ResetGpu, "RESET_GPU", true),
];

/// The catalog entry for `code`; unknown codes come back with severity and action
/// `Unknown`, not tainting.
pub fn catalog(code: u32) -> XidInfo {
    match CATALOG.binary_search_by_key(&code, |row| row.0) {
        Ok(index) => {
            let (code, name, description, severity, action, catalog_action, taints_hardware) = CATALOG[index];
            XidInfo { code, name, description, severity, action, catalog_action, taints_hardware }
        }
        Err(_) => XidInfo {
            code,
            name: "UNKNOWN",
            description: "not in the Xid catalog",
            severity: Severity::Unknown,
            action: Action::Unknown,
            catalog_action: "UNKNOWN",
            taints_hardware: false,
        },
    }
}

/// Every catalogued code, ascending.
pub fn catalogued_codes() -> impl Iterator<Item = u32> {
    CATALOG.iter().map(|row| row.0)
}

/// The catalog entry for a parsed record. For Xid 154 the action is read from the message
/// ("GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)"): the new
/// recovery action decides it.
pub fn classify(record: &XidRecord) -> XidInfo {
    let mut info = catalog(record.code);
    if record.code == 154
        && let Some(change) = recovery_change(&record.message)
    {
        info.action = match change.to {
            RecoveryAction::None => Action::None,
            RecoveryAction::GpuReset | RecoveryAction::DrainAndReset => Action::ResetGpu,
            RecoveryAction::NodeReboot => Action::Reboot,
            RecoveryAction::DrainP2p => Action::DrainP2p,
            RecoveryAction::Other(_) => Action::SeeRecoveryAction,
        };
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sorted_and_unique() {
        assert!(CATALOG.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn required_codes_are_catalogued() {
        let required = [13, 31, 32, 43, 45, 48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 109, 119, 120, 154];
        for code in required.into_iter().chain(144..=150) {
            assert!(catalog(code).is_known(), "Xid {code}");
        }
    }

    #[test]
    fn hardware_and_application_classes() {
        for code in [48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120, 144, 150] {
            assert!(catalog(code).taints_hardware, "Xid {code} should taint");
        }
        for code in [13, 31, 43, 45] {
            let info = catalog(code);
            assert_eq!(info.severity, Severity::Application, "Xid {code}");
            assert!(!info.taints_hardware, "Xid {code} should not taint");
        }
        assert_eq!(catalog(79).action, Action::Reboot);
        assert_eq!(catalog(48).action, Action::ResetGpu);
        assert_eq!(catalog(13).action, Action::RestartApp);
        assert_eq!(catalog(147).severity, Severity::Nvlink);
    }

    #[test]
    fn unknown_codes_are_kept_and_marked() {
        let info = catalog(9999);
        assert_eq!(info.code, 9999);
        assert_eq!(info.severity, Severity::Unknown);
        assert_eq!(info.action, Action::Unknown);
        assert!(!info.taints_hardware);
    }

    #[test]
    fn names_serialise_as_documented() {
        assert_eq!(serde_json::to_string(&Severity::Nvlink).ok().as_deref(), Some("\"nvlink\""));
        assert_eq!(serde_json::to_string(&Action::ResetGpu).ok().as_deref(), Some("\"RESET_GPU\""));
        assert_eq!(
            serde_json::to_string(&Action::CheckMechanicals).ok().as_deref(),
            Some("\"CHECK_MECHANICALS\"")
        );
        for severity in [S::Hardware, S::Application, S::Driver, S::Nvlink, S::Informational, S::Unknown] {
            let json = serde_json::to_string(&severity).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", severity.as_str()));
        }
        for action in [
            A::None,
            A::RestartApp,
            A::ResetGpu,
            A::Reboot,
            A::CheckMechanicals,
            A::ContactSupport,
            A::UpdateSoftware,
            A::RestartVm,
            A::DrainP2p,
            A::WorkflowNvlink,
            A::SeeRecoveryAction,
            A::Unknown,
        ] {
            let json = serde_json::to_string(&action).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
        }
    }

    #[test]
    fn xid_154_action_comes_from_the_message() {
        let record = |message: &str| XidRecord {
            pci: "0000:01:00.0".into(),
            code: 154,
            pid: None,
            name: None,
            message: message.into(),
        };
        let reset = record("GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)");
        assert_eq!(classify(&reset).action, Action::ResetGpu);
        let reboot =
            record("GPU recovery action changed from 0x1 (GPU Reset Required) to 0x2 (Node Reboot Required)");
        assert_eq!(classify(&reboot).action, Action::Reboot);
        let drain = record("GPU recovery action changed from 0x0 (None) to 0x3 (Drain P2P)");
        assert_eq!(classify(&drain).action, Action::DrainP2p);
        let cleared = record("GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)");
        assert_eq!(classify(&cleared).action, Action::None);
        let garbled = record("GPU recovery action changed");
        assert_eq!(classify(&garbled).action, Action::SeeRecoveryAction);
    }
}

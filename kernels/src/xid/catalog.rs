//! The catalog entry for a parsed Xid record: the shared table
//! ([`assay_events::xid`]), with Xid 154's action read from its message.

pub use assay_events::xid::{Action, Severity, XidInfo, catalog, catalogued_codes};

use super::record::XidRecord;
use super::recovery::{RecoveryAction, recovery_change};

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

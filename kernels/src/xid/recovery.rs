//! Xid 154: "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)".
//!
//! The values are NVML's `nvmlDeviceGpuRecoveryAction_t`: 0 none, 1 GPU reset, 2 node
//! reboot, 3 drain peer-to-peer, 4 drain and reset.

use serde::{Deserialize, Serialize};

/// A GPU recovery action as the driver numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecoveryAction {
    /// 0: nothing to do.
    None,
    /// 1: reset the GPU.
    GpuReset,
    /// 2: reboot the node.
    NodeReboot,
    /// 3: drain peer-to-peer traffic.
    DrainP2p,
    /// 4: drain peer-to-peer traffic, then reset the GPU.
    DrainAndReset,
    /// A value this code does not know.
    Other(u32),
}

impl RecoveryAction {
    /// From the driver's number.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => RecoveryAction::None,
            1 => RecoveryAction::GpuReset,
            2 => RecoveryAction::NodeReboot,
            3 => RecoveryAction::DrainP2p,
            4 => RecoveryAction::DrainAndReset,
            other => RecoveryAction::Other(other),
        }
    }
}

/// The change an Xid 154 line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryChange {
    /// The action before.
    pub from: RecoveryAction,
    /// The action now required.
    pub to: RecoveryAction,
}

/// Reads "… changed from 0x<a> (…) to 0x<b> (…)" from an Xid 154 message.
pub fn recovery_change(message: &str) -> Option<RecoveryChange> {
    let (_, after_from) = message.split_once("from ")?;
    let (from_code, rest) = hex_number(after_from)?;
    let (_, after_to) = rest.split_once(" to ")?;
    let (to_code, _) = hex_number(after_to)?;
    Some(RecoveryChange {
        from: RecoveryAction::from_code(from_code),
        to: RecoveryAction::from_code(to_code),
    })
}

/// Reads a leading `0x…` number (at most 8 hex digits).
fn hex_number(text: &str) -> Option<(u32, &str)> {
    let digits = text.trim_start().strip_prefix("0x")?;
    let len = digits.bytes().take_while(u8::is_ascii_hexdigit).count();
    if len == 0 || len > 8 {
        return None;
    }
    let value = u32::from_str_radix(&digits[..len], 16).ok()?;
    Some((value, &digits[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_changes() {
        let change =
            recovery_change("GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)");
        assert_eq!(
            change,
            Some(RecoveryChange { from: RecoveryAction::None, to: RecoveryAction::NodeReboot })
        );
        let change =
            recovery_change("GPU recovery action changed from 0x3 (Drain P2P) to 0x4 (Drain and Reset)");
        assert_eq!(change.map(|c| c.to), Some(RecoveryAction::DrainAndReset));
        assert_eq!(recovery_change("from 0x9 to 0x1f").map(|c| c.to), Some(RecoveryAction::Other(31)));
    }

    #[test]
    fn rejects_partial_text() {
        assert_eq!(recovery_change("GPU recovery action changed from 0x0 (None) to"), None);
        assert_eq!(recovery_change("GPU recovery action changed from (None) to 0x1"), None);
        assert_eq!(recovery_change("from 0x123456789 to 0x1"), None);
        assert_eq!(recovery_change(""), None);
    }
}

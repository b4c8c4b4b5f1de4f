//! One Xid as the runner records it (`gpu.xid`): from a kernel-log line or an NVML event,
//! with severity and action from the catalog.

use serde_json::{Value, json};

use super::catalog::{Action, Severity, catalog, classify};
use super::dedup::XidSource;
use super::parse::parse_line;
use super::record::XidParse;
use super::source::kernel_time;

/// Longest message recorded (the schema allows 4096 characters).
const MESSAGE_MAX_CHARS: usize = 4000;
/// Longest process name recorded.
const PROCESS_MAX_CHARS: usize = 256;

/// The Xid a "GPU has fallen off the bus" line without a number stands for.
pub const FALLEN_OFF_THE_BUS: u32 = 79;

/// One Xid report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidReport {
    /// Short PCI address, `dddd:bb:dd`.
    pub pci: String,
    /// Xid number.
    pub code: u32,
    /// Blamed process id.
    pub pid: Option<u32>,
    /// Blamed process name.
    pub process: Option<String>,
    /// The driver's message.
    pub message: String,
    /// Where it came from.
    pub source: XidSource,
    /// The line's own timestamp as printed (kernel log only).
    pub kernel_time: Option<String>,
    /// Catalog class.
    pub severity: Severity,
    /// Catalog action (refined by the message for Xid 154).
    pub action: Action,
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_owned() } else { text.chars().take(max).collect() }
}

/// What one kernel-log line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineReport {
    /// Not an Xid line.
    None,
    /// An Xid (or a "fallen off the bus" line, reported as Xid 79).
    Xid(XidReport),
    /// An Xid line that cannot be read completely.
    Malformed(String),
}

impl XidReport {
    /// Reads a kernel-log line. A "GPU has fallen off the bus" line without an Xid number
    /// is reported as Xid 79, the catalog's code for that condition, with the driver's text
    /// as the message.
    pub fn from_line(line: &str) -> LineReport {
        match parse_line(line) {
            XidParse::Xid(record) => {
                let info = classify(&record);
                LineReport::Xid(XidReport {
                    pci: record.pci,
                    code: record.code,
                    pid: record.pid,
                    process: record.name.map(|n| clip(&n, PROCESS_MAX_CHARS)),
                    message: clip(&record.message, MESSAGE_MAX_CHARS),
                    source: XidSource::Kmsg,
                    kernel_time: kernel_time(line),
                    severity: info.severity,
                    action: info.action,
                })
            }
            XidParse::FallenOffBus { pci } => {
                let info = catalog(FALLEN_OFF_THE_BUS);
                let text = line.split_once("NVRM:").map_or(line, |(_, rest)| rest).trim();
                LineReport::Xid(XidReport {
                    pci,
                    code: FALLEN_OFF_THE_BUS,
                    pid: None,
                    process: None,
                    message: clip(text, MESSAGE_MAX_CHARS),
                    source: XidSource::Kmsg,
                    kernel_time: kernel_time(line),
                    severity: info.severity,
                    action: info.action,
                })
            }
            XidParse::Malformed { reason } => LineReport::Malformed(reason),
            _ => LineReport::None,
        }
    }

    /// An NVML critical-Xid event (NVML gives no message or process).
    pub fn from_nvml(pci: &str, code: u32) -> XidReport {
        let info = catalog(code);
        XidReport {
            pci: super::normalize_pci(pci).unwrap_or_else(|| pci.to_ascii_lowercase()),
            code,
            pid: None,
            process: None,
            message: format!("Xid {code} reported by NVML"),
            source: XidSource::Nvml,
            kernel_time: None,
            severity: info.severity,
            action: info.action,
        }
    }

    /// `gpu.xid` data (subject `gpu/<pci>`), with `action` given by name (see
    /// [`recorded_action`]).
    pub fn data(&self, action: &str) -> Value {
        let mut data = json!({
            "pci": self.pci,
            "code": self.code,
            "pid": self.pid,
            "process": self.process,
            "message": self.message,
            "source": self.source.as_str(),
            "severity": self.severity.as_str(),
            "action": action,
        });
        if let Some(time) = &self.kernel_time {
            data["kernel_time"] = Value::from(time.as_str());
        }
        data
    }
}

/// The action names `gpu.xid` accepts, read from its schema.
pub fn accepted_actions() -> Vec<String> {
    let schema: Value =
        serde_json::from_str(assay_events::EventType::GpuXid.schema_text()).unwrap_or_default();
    schema["properties"]["action"]["enum"]
        .as_array()
        .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The action name to record, given the names the event schema accepts: the catalog's own
/// name when accepted, else the nearest accepted one (`UPDATE_SOFTWARE` → `UPDATE_SW`,
/// `RESTART_VM` → `REBOOT`, `WORKFLOW_NVLINK` → `RESET_GPU` (the catalog's NVLink workflow
/// ends in a GPU reset or node reboot), `SEE_RECOVERY_ACTION` → `UNKNOWN`), else `UNKNOWN`.
pub fn recorded_action(action: Action, accepted: &[String]) -> String {
    let ok = |name: &str| accepted.iter().any(|a| a == name);
    if ok(action.as_str()) {
        return action.as_str().to_owned();
    }
    let fallback = match action {
        Action::UpdateSoftware => "UPDATE_SW",
        Action::RestartVm => "REBOOT",
        Action::WorkflowNvlink => "RESET_GPU",
        _ => "UNKNOWN",
    };
    if ok(fallback) { fallback.to_owned() } else { "UNKNOWN".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_reports() {
        let LineReport::Xid(r) = XidReport::from_line(
            "2026-09-08T01:00:02+0000 n1 kernel: NVRM: Xid (PCI:0000:01:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error.",
        ) else {
            panic!("an Xid")
        };
        assert_eq!((r.code, r.pid, r.process.as_deref()), (48, None, None));
        assert_eq!(r.severity, Severity::Hardware);
        let data = r.data("RESET_GPU");
        assert_eq!(data["kernel_time"], "2026-09-08T01:00:02+0000");
        assert_eq!(data["source"], "kmsg");
        assert!(data["pid"].is_null());

        let LineReport::Xid(bus) =
            XidReport::from_line("[ 5.1] NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.")
        else {
            panic!("fallen off the bus")
        };
        assert_eq!((bus.code, bus.pci.as_str()), (79, "0000:3b:00.0"));
        assert_eq!(bus.message, "GPU 0000:3b:00.0: GPU has fallen off the bus.");
        assert_eq!(bus.kernel_time.as_deref(), Some("5.1"));
        assert!(matches!(
            XidReport::from_line("NVRM: Xid (PCI:0000:01:00): 154 ("),
            LineReport::Malformed(_)
        ));
        assert_eq!(XidReport::from_line("usb 1-2: new device"), LineReport::None);
        let nvml = XidReport::from_nvml("00000000:3B:00.0", 79);
        assert_eq!(nvml.pci, "0000:3b:00.0");
        assert!(nvml.data("REBOOT").get("kernel_time").is_none());
    }

    #[test]
    fn actions_map_onto_what_the_schema_accepts() {
        let old: Vec<String> = [
            "NONE",
            "RESTART_APP",
            "RESET_GPU",
            "REBOOT",
            "DRAIN_AND_RESET",
            "DRAIN_P2P",
            "CHECK_MECHANICALS",
            "UPDATE_SW",
            "CONTACT_SUPPORT",
            "UNKNOWN",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(recorded_action(Action::ResetGpu, &old), "RESET_GPU");
        assert_eq!(recorded_action(Action::UpdateSoftware, &old), "UPDATE_SW");
        assert_eq!(recorded_action(Action::RestartVm, &old), "REBOOT");
        assert_eq!(recorded_action(Action::WorkflowNvlink, &old), "RESET_GPU");
        assert_eq!(recorded_action(Action::SeeRecoveryAction, &old), "UNKNOWN");
        let mut new = old.clone();
        new.extend(
            ["WORKFLOW_NVLINK", "SEE_RECOVERY_ACTION", "UPDATE_SOFTWARE", "RESTART_VM"].map(String::from),
        );
        for action in
            [Action::WorkflowNvlink, Action::SeeRecoveryAction, Action::UpdateSoftware, Action::RestartVm]
        {
            assert_eq!(recorded_action(action, &new), action.as_str());
        }
        assert_eq!(recorded_action(Action::ResetGpu, &[]), "UNKNOWN");
    }
}

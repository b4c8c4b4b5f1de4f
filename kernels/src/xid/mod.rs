//! GPU Xid reports: parsing kernel-log lines, NVIDIA's catalog, deduplication of the
//! kernel-log and NVML sources, the sources themselves, and the recorded form.

mod catalog;
mod dedup;
mod parse;
mod record;
mod recovery;
mod report;
mod source;

pub use catalog::{Action, Severity, XidInfo, catalog, catalogued_codes, classify};
pub use dedup::{Seen, XidDeduper, XidSource};
pub use parse::{MAX_LINE_BYTES, normalize_pci, parse_line, parse_lines, parse_log};
pub use record::{XidParse, XidRecord};
pub use recovery::{RecoveryAction, RecoveryChange, recovery_change};
pub use report::{FALLEN_OFF_THE_BUS, LineReport, XidReport, accepted_actions, recorded_action};
pub use source::{JournalReader, KernelLog, KmsgReader, kernel_time};

//! GPU Xid reports: parsing kernel-log lines, NVIDIA's catalog, and deduplication of the
//! kernel-log and NVML sources.

mod catalog;
mod dedup;
mod parse;
mod record;
mod recovery;

pub use catalog::{Action, Severity, XidInfo, catalog, catalogued_codes, classify};
pub use dedup::{Seen, XidDeduper, XidSource};
pub use parse::{MAX_LINE_BYTES, normalize_pci, parse_line, parse_lines, parse_log};
pub use record::{XidParse, XidRecord};
pub use recovery::{RecoveryAction, RecoveryChange, recovery_change};

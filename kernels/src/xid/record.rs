//! What one kernel-log line says about a GPU.

use serde::{Deserialize, Serialize};

/// One Xid report as the driver printed it.
///
/// `pci` is normalised to the driver's short form `dddd:bb:dd` (lower-case hex, no PCI
/// function), see [`normalize_pci`](super::normalize_pci). `pid` and `name` are `None` when
/// the line has none or says `<unknown>`; they are stripped from `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XidRecord {
    /// PCI address of the GPU, `dddd:bb:dd`.
    pub pci: String,
    /// The Xid number.
    pub code: u32,
    /// The process the driver blamed, when it named one.
    pub pid: Option<u32>,
    /// That process's name, when the driver knew it.
    pub name: Option<String>,
    /// The driver's text after the code (and after any `pid=…, name=…,` prefix).
    pub message: String,
}

/// What [`parse_line`](super::parse_line) found on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum XidParse {
    /// A complete Xid line.
    Xid(XidRecord),
    /// A line saying the GPU has fallen off the bus without an Xid number (drivers print
    /// this next to, or instead of, Xid 79). Kept apart so callers can record it without
    /// inventing a code.
    FallenOffBus {
        /// PCI address of the GPU, `dddd:bb:dd`.
        pci: String,
    },
    /// Not an Xid line (other kernel messages, other NVRM messages).
    NotXid,
    /// An Xid line that cannot be read completely (truncated, garbled); nothing is guessed.
    Malformed {
        /// Why the line was rejected.
        reason: String,
    },
}

impl XidParse {
    /// The record, if this is a complete Xid line.
    pub fn as_xid(&self) -> Option<&XidRecord> {
        match self {
            XidParse::Xid(record) => Some(record),
            _ => None,
        }
    }

    /// Whether the line is worth reporting (an Xid, a fall off the bus, or a malformed Xid).
    pub fn is_relevant(&self) -> bool {
        !matches!(self, XidParse::NotXid)
    }
}

//! PCI bus ids: one GPU, one name.
//!
//! Drivers print the same GPU as `0000:ca:00` (kernel log), `00000000:CA:00.0` (NVML),
//! `PCI:0000:ca:00` (older Xid lines) or `ca:00.0` (lspci). All name (domain, bus, device,
//! function), the function 0 when a form leaves it out. Assay's one form is
//! `dddd:bb:dd.f` in lowercase hex ([`canonical`], DESIGN §10): every event Assay's producers
//! write, every projection key, subject, page and export column uses it, and events recorded
//! in another form (older ledgers, including this project's own earlier `dddd:bb:dd`, and
//! other producers) are read as the same GPU through [`PciId`]; nothing recorded is rewritten.

use std::fmt;

/// (domain, bus, device, function) of a PCI bus id; a form without a function names function
/// 0 (a GPU's own function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciId {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciId {
    /// Parses `[PCI:][DOMAIN:]BUS:DEVICE[.FUNCTION]` in hex (domain 1–8 digits, taken as 0
    /// when absent; bus and device 1–2 digits; function 0–7), surrounding whitespace ignored.
    /// `None` for anything else.
    pub fn parse(text: &str) -> Option<PciId> {
        let text = text.trim();
        let text = text.strip_prefix("PCI:").unwrap_or(text);
        let (address, function) = match text.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (text, None),
        };
        let function = match function {
            None => 0,
            Some(f) if f.len() == 1 && matches!(f.as_bytes()[0], b'0'..=b'7') => f.as_bytes()[0] - b'0',
            Some(_) => return None,
        };
        let parts: Vec<&str> = address.splitn(4, ':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [domain, bus, device] => (hex_field(domain, 8)?, *bus, *device),
            [bus, device] => (0, *bus, *device),
            _ => return None,
        };
        let bus = u8::try_from(hex_field(bus, 2)?).ok()?;
        let device = u8::try_from(hex_field(device, 2)?).ok()?;
        Some(PciId { domain, bus, device, function })
    }

    /// How NVML prints it (`00000000:CA:00.0`): the form older ledgers may hold.
    pub fn nvml_form(&self) -> String {
        format!("{:08X}:{:02X}:{:02X}.{}", self.domain, self.bus, self.device, self.function)
    }

    /// The kernel log's form without a function (`0000:ca:00`), which this project's own
    /// producers wrote before the one form carried the function: older ledgers hold it.
    pub fn short_form(&self) -> String {
        format!("{:04x}:{:02x}:{:02x}", self.domain, self.bus, self.device)
    }
}

/// The canonical form: `dddd:bb:dd.f`, lowercase hex (the domain widens past 4 digits only
/// when it needs to).
impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{}", self.domain, self.bus, self.device, self.function)
    }
}

fn hex_field(s: &str, max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// The canonical form of a PCI id in any form [`PciId::parse`] reads, or `None` if `text` is
/// not one. The one function every boundary calls.
pub fn canonical(text: &str) -> Option<String> {
    PciId::parse(text).map(|p| p.to_string())
}

/// True iff both name the same (domain, bus, device, function).
pub fn same_gpu(a: &str, b: &str) -> bool {
    matches!((PciId::parse(a), PciId::parse(b)), (Some(x), Some(y)) if x == y)
}

/// The prefix of a GPU's subject, `gpu/<pci>`.
pub const GPU_SUBJECT_PREFIX: &str = "gpu/";

/// The subjects under which a ledger may hold one GPU's events: the canonical
/// `gpu/dddd:bb:dd.f` first, then the forms older producers wrote (for function 0: this
/// project's earlier `dddd:bb:dd`, and in uppercase; NVML's upper- and lowercase). A subject
/// that is not a GPU's comes back alone and unchanged. At most 5 forms.
pub fn subject_forms(subject: &str) -> Vec<String> {
    let Some(pci) = subject.strip_prefix(GPU_SUBJECT_PREFIX).and_then(PciId::parse) else {
        return vec![subject.to_owned()];
    };
    let nvml = pci.nvml_form();
    let mut forms = vec![
        format!("{GPU_SUBJECT_PREFIX}{pci}"),
        format!("{GPU_SUBJECT_PREFIX}{nvml}"),
        format!("{GPU_SUBJECT_PREFIX}{}", nvml.to_ascii_lowercase()),
    ];
    if pci.function == 0 {
        let short = pci.short_form();
        forms.push(format!("{GPU_SUBJECT_PREFIX}{}", short.to_ascii_uppercase()));
        forms.push(format!("{GPU_SUBJECT_PREFIX}{short}"));
    }
    let mut seen = std::collections::BTreeSet::new();
    forms.retain(|f| seen.insert(f.clone()));
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_driver_form_is_one_gpu() {
        for form in [
            "0000:ca:00",
            "00000000:CA:00.0",
            "PCI:0000:ca:00",
            "ca:00.0",
            " 0000:CA:00.0 ",
            "0:ca:0",
            "0000:ca:00.0",
        ] {
            assert_eq!(canonical(form).as_deref(), Some("0000:ca:00.0"), "{form:?}");
        }
        assert!(same_gpu("0000:3b:00", "00000000:3B:00.0"));
        assert!(same_gpu("0000:3b:00.0", "0000:3b:00"));
        assert!(!same_gpu("0000:3b:00", "0000:3c:00"));
        assert!(!same_gpu("0001:3b:00", "0000:3b:00"));
        assert!(!same_gpu("0000:3b:00.1", "0000:3b:00"), "another function is another device");
        assert_eq!(canonical("10000:01:00").as_deref(), Some("10000:01:00.0"));
        assert_eq!(canonical("0000:01:00.3").as_deref(), Some("0000:01:00.3"));
        assert_eq!(PciId::parse("0000:ca:00").map(|p| p.nvml_form()).as_deref(), Some("00000000:CA:00.0"));
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "01",
            "0000:01:00:00",
            "0000:01:00.8",
            "0000:01:00.",
            "0000:001:00",
            "zz:01:00",
            "0000:01:+0",
            "0000:3b:00.12",
            "000000000:01:00",
        ] {
            assert_eq!(PciId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn gpu_subjects_cover_the_old_forms() {
        assert_eq!(
            subject_forms("gpu/00000000:CA:00.0"),
            vec![
                "gpu/0000:ca:00.0",
                "gpu/00000000:CA:00.0",
                "gpu/00000000:ca:00.0",
                "gpu/0000:CA:00",
                "gpu/0000:ca:00"
            ]
        );
        assert_eq!(subject_forms("gpu/0000:ca:00")[0], "gpu/0000:ca:00.0", "the canonical form first");
        assert_eq!(subject_forms("gpu/0000:01:00").len(), 3, "digits only: upper and lower forms agree");
        assert_eq!(subject_forms("gpu/0000:01:00.1").len(), 2, "no short form names function 1");
        assert_eq!(subject_forms("run/r1"), vec!["run/r1"]);
        assert_eq!(subject_forms("gpu/not-a-pci"), vec!["gpu/not-a-pci"]);
    }
}

//! PCI bus ids. Drivers print the same GPU as `0000:01:00` (kernel log) or
//! `00000000:01:00.0` (NVML); both name (domain, bus, device), which is what we compare.

use std::fmt;

/// (domain, bus, device) of a PCI bus id; the function number is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciId {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
}

impl PciId {
    /// Parses `DOMAIN:BUS:DEVICE[.FUNCTION]` in hex (domain 1–8 digits, bus and device 1–2
    /// digits, function 0–7). `None` for anything else.
    pub fn parse(text: &str) -> Option<PciId> {
        let (address, function) = match text.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (text, None),
        };
        if let Some(f) = function
            && !(f.len() == 1 && matches!(f.as_bytes()[0], b'0'..=b'7'))
        {
            return None;
        }
        let mut parts = address.split(':');
        let domain = hex_field(parts.next()?, 8)?;
        let bus = hex_field(parts.next()?, 2)?;
        let device = hex_field(parts.next()?, 2)?;
        if parts.next().is_some() {
            return None;
        }
        Some(PciId { domain, bus: u8::try_from(bus).ok()?, device: u8::try_from(device).ok()? })
    }
}

/// The normal form: `dddd:bb:dd`, lowercase hex (the domain widens past 4 digits only when
/// it needs to).
impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}", self.domain, self.bus, self.device)
    }
}

fn hex_field(s: &str, max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// The normal form of a PCI id, or `None` if `text` is not one.
pub fn normalize(text: &str) -> Option<String> {
    PciId::parse(text).map(|p| p.to_string())
}

/// True iff both name the same (domain, bus, device).
pub fn same_gpu(a: &str, b: &str) -> bool {
    matches!((PciId::parse(a), PciId::parse(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_driver_forms_are_one_gpu() {
        assert_eq!(normalize("0000:01:00").as_deref(), Some("0000:01:00"));
        assert_eq!(normalize("00000000:01:00.0").as_deref(), Some("0000:01:00"));
        assert_eq!(normalize("00000000:3B:00.0").as_deref(), Some("0000:3b:00"));
        assert!(same_gpu("0000:3b:00", "00000000:3B:00.0"));
        assert!(!same_gpu("0000:3b:00", "0000:3c:00"));
        assert!(!same_gpu("0001:3b:00", "0000:3b:00"));
        assert_eq!(normalize("10000:01:00").as_deref(), Some("10000:01:00"));
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "01:00",
            "0000:01:00:00",
            "0000:01:00.8",
            "0000:01:00.",
            "0000:001:00",
            "zz:01:00",
            "0000:01:+0",
        ] {
            assert_eq!(PciId::parse(bad), None, "{bad:?}");
        }
    }
}

//! Reading NVIDIA driver (NVRM) kernel-log lines.
//!
//! Accepted shapes (any prefix before `NVRM:` is ignored, so dmesg `[ 1399.140323] `,
//! syslog `Sep  8 01:00:00 host kernel: [123.4] `, journal
//! `2026-09-08T01:00:00+0000 n1 kernel: ` and raw `/dev/kmsg` `4,1234,5678,-;` prefixes all work):
//!
//! - `NVRM: Xid (PCI:0000:01:00): 32, Channel ID 00000009 intr 00800000`
//! - `NVRM: Xid (0000:03:00): 14, Channel 00000001` (older drivers, no `PCI:`)
//! - `NVRM: Xid (PCI:0000:01:00): 31, pid=13705, name=UnrealEditor, channel …`
//! - `NVRM: Xid (PCI:0000:01:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable …`
//! - `NVRM: Xid (PCI:0000:10:1c): 63, pid=1896, Row Remapper: …` (pid without name)
//! - `NVRM: The NVIDIA GPU 0000:3b:00.0 (PCI ID: 10de:1db6) installed in this system has
//!   fallen off the bus and is not responding to commands.` and
//!   `NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.` → [`XidParse::FallenOffBus`]
//!
//! A line that starts an Xid but cannot be read to the end is [`XidParse::Malformed`]; no
//! field is ever guessed.

use super::record::{XidParse, XidRecord};

/// Lines longer than this are not parsed (the kernel's own limit is about 1 KiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Upper bound on the whitespace-separated tokens inspected when looking for a PCI address.
const MAX_TOKENS: usize = 64;

/// Longest reason excerpt copied from a line into a `Malformed` reason.
const MAX_EXCERPT_CHARS: usize = 48;

/// Normalises a PCI address to the one canonical form `dddd:bb:dd` (lower-case hex): the
/// same function every boundary of Assay calls ([`assay_events::pci::canonical`]). Accepts an
/// optional `PCI:` prefix, an optional `.f` function suffix, NVML's 8-digit domain
/// (`00000000:3B:00.0`) and a missing domain (`3b:00.0`, taken as domain 0).
pub use assay_events::pci::canonical as normalize_pci;

fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_EXCERPT_CHARS).collect();
    if s.chars().nth(MAX_EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

fn malformed(reason: impl Into<String>) -> XidParse {
    XidParse::Malformed { reason: reason.into() }
}

/// Parses one kernel-log line.
pub fn parse_line(line: &str) -> XidParse {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(at) = line.find("NVRM:") else {
        return XidParse::NotXid;
    };
    if line.len() > MAX_LINE_BYTES {
        return malformed(format!("NVRM line longer than {MAX_LINE_BYTES} bytes"));
    }
    let rest = line[at + "NVRM:".len()..].trim_start();
    if let Some(after) = rest.strip_prefix("Xid")
        && (after.is_empty() || after.starts_with('(') || after.starts_with(char::is_whitespace))
    {
        return parse_xid(after);
    }
    if rest.contains("fallen off the bus") {
        return parse_fallen_off_bus(rest);
    }
    XidParse::NotXid
}

/// Parses what follows `NVRM: Xid`.
fn parse_xid(after: &str) -> XidParse {
    let Some(after_paren) = after.trim_start().strip_prefix('(') else {
        return malformed("expected '(' after Xid");
    };
    let Some((address, after_address)) = after_paren.split_once(')') else {
        return malformed("unterminated PCI address after Xid");
    };
    let Some(pci) = normalize_pci(address) else {
        return malformed(format!("not a PCI address: {:?}", excerpt(address)));
    };
    let Some(after_colon) = after_address.strip_prefix(':') else {
        return malformed("expected ':' after the PCI address");
    };
    let after_colon = after_colon.trim_start();
    let digits_len = after_colon.bytes().take_while(|b| b.is_ascii_digit()).count();
    if digits_len == 0 {
        return malformed("missing Xid code");
    }
    let Ok(code) = after_colon[..digits_len].parse::<u32>() else {
        return malformed(format!("Xid code out of range: {}", excerpt(&after_colon[..digits_len])));
    };
    let after_code = after_colon[digits_len..].trim_start();
    if after_code.is_empty() {
        return malformed(format!("line ends after Xid code {code}"));
    }
    let Some(body) = after_code.strip_prefix(',') else {
        return malformed(format!("expected ',' after Xid code {code}, found {:?}", excerpt(after_code)));
    };
    let (pid, name, message) = match split_process(body.trim_start()) {
        Ok(parts) => parts,
        Err(reason) => return malformed(reason.to_string()),
    };
    let message = message.trim();
    if message.is_empty() {
        return malformed(format!("Xid {code} has no message"));
    }
    XidParse::Xid(XidRecord { pci, code, pid, name, message: message.to_owned() })
}

type ProcessParts<'a> = (Option<u32>, Option<String>, &'a str);

/// What is wrong with the `pid=…, name=…, ` prefix of an Xid message.
#[derive(Debug, thiserror::Error)]
enum ProcessFieldError {
    #[error("truncated pid field")]
    TruncatedPid,
    #[error("truncated name field")]
    TruncatedName,
    /// The pid text, shortened for the reason.
    #[error("not a pid: {0:?}")]
    NotAPid(String),
}

/// Splits an optional `pid=…, name=…, ` prefix off an Xid message.
fn split_process(body: &str) -> Result<ProcessParts<'_>, ProcessFieldError> {
    let Some(after_pid) = body.strip_prefix("pid=") else {
        return Ok((None, None, body));
    };
    let Some((pid_text, rest)) = after_pid.split_once(',') else {
        return Err(ProcessFieldError::TruncatedPid);
    };
    let pid = parse_pid(pid_text.trim())?;
    let rest = rest.trim_start();
    let Some(after_name) = rest.strip_prefix("name=") else {
        return Ok((pid, None, rest));
    };
    let Some((name_text, message)) = after_name.split_once(", ") else {
        return Err(ProcessFieldError::TruncatedName);
    };
    let name_text = name_text.trim();
    let name = if name_text.is_empty() || is_unknown(name_text) { None } else { Some(name_text.to_owned()) };
    Ok((pid, name, message))
}

fn is_unknown(value: &str) -> bool {
    value.trim_matches(['\'', '"']) == "<unknown>"
}

fn parse_pid(text: &str) -> Result<Option<u32>, ProcessFieldError> {
    if is_unknown(text) {
        return Ok(None);
    }
    let unquoted = text.trim_matches(['\'', '"']);
    unquoted.parse::<u32>().map(Some).map_err(|_| ProcessFieldError::NotAPid(excerpt(text)))
}

/// Reads the PCI address from a "fallen off the bus" line that has no Xid number.
fn parse_fallen_off_bus(rest: &str) -> XidParse {
    let found = rest
        .split_whitespace()
        .take(MAX_TOKENS)
        .map(|token| token.trim_end_matches([':', ',', ';']))
        .find_map(|token| {
            // A bare "bb:dd" could be a PCI vendor:device id ("10de:1db6"); ask for a domain
            // or a function so that only addresses match.
            let has_domain = token.trim_start_matches("PCI:").matches(':').count() == 2;
            let has_function = token.contains('.');
            if has_domain || has_function { normalize_pci(token) } else { None }
        });
    match found {
        Some(pci) => XidParse::FallenOffBus { pci },
        None => malformed("'fallen off the bus' line without a PCI address"),
    }
}

/// Parses every line of a log. Returns `(line number from 1, result)` for the lines that
/// are not [`XidParse::NotXid`], in order.
pub fn parse_log(text: &str) -> Vec<(u64, XidParse)> {
    parse_lines(text).collect()
}

/// Like [`parse_log`], lazily.
pub fn parse_lines(text: &str) -> impl Iterator<Item = (u64, XidParse)> + '_ {
    (1u64..)
        .zip(text.lines())
        .map(|(number, line)| (number, parse_line(line)))
        .filter(|(_, parsed)| parsed.is_relevant())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xid(line: &str) -> XidRecord {
        match parse_line(line) {
            XidParse::Xid(record) => record,
            other => panic!("expected an Xid from {line:?}, got {other:?}"),
        }
    }

    #[test]
    fn normalises_pci_forms() {
        assert_eq!(normalize_pci("PCI:0000:01:00").as_deref(), Some("0000:01:00.0"));
        assert_eq!(normalize_pci("0000:3B:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(normalize_pci("00000000:3B:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(normalize_pci("10000:01:00.0").as_deref(), Some("10000:01:00.0"));
        assert_eq!(normalize_pci("3b:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(normalize_pci("0000:3b:00.12"), None);
        assert_eq!(normalize_pci("0000:3b"), None);
        assert_eq!(normalize_pci("zz:00:00"), None);
        assert_eq!(normalize_pci(""), None);
        assert_eq!(normalize_pci("0000:0001:00"), None);
    }

    #[test]
    fn reads_plain_dmesg_line() {
        let record = xid("[ 1399.140323] NVRM: Xid (PCI:0000:01:00): 32, Channel ID 00000009 intr 00800000");
        assert_eq!(record.pci, "0000:01:00.0");
        assert_eq!(record.code, 32);
        assert_eq!(record.pid, None);
        assert_eq!(record.message, "Channel ID 00000009 intr 00800000");
    }

    #[test]
    fn reads_pid_without_name() {
        let record = xid(
            "NVRM: Xid (PCI:0000:10:1c): 63, pid=1896, Row Remapper: New row marked for remapping, reset gpu to activate.",
        );
        assert_eq!(record.pid, Some(1896));
        assert_eq!(record.name, None);
        assert_eq!(record.message, "Row Remapper: New row marked for remapping, reset gpu to activate.");
    }

    #[test]
    fn reads_raw_kmsg_record() {
        let record = xid(
            "4,2280,1399140323,-;NVRM: Xid (PCI:0000:01:00): 79, pid=2131, name=python3, GPU has fallen off the bus.",
        );
        assert_eq!(record.code, 79);
        assert_eq!(record.pid, Some(2131));
        assert_eq!(record.name.as_deref(), Some("python3"));
        assert_eq!(record.message, "GPU has fallen off the bus.");
    }

    #[test]
    fn truncations_are_malformed_not_guessed() {
        for line in [
            "NVRM: Xid (PCI:0000:01:00): 154 (",
            "NVRM: Xid (PCI:0000:01:00): 154",
            "NVRM: Xid (PCI:0000:01:00): 154,",
            "NVRM: Xid (PCI:0000:01:00): ",
            "NVRM: Xid (PCI:0000:01:00",
            "NVRM: Xid (PCI:0000:01",
            "NVRM: Xid (",
            "NVRM: Xid",
            "NVRM: Xid (PCI:0000:01:00) 13, x",
            "NVRM: Xid (PCI:0000:01:00): 13, pid=12",
            "NVRM: Xid (PCI:0000:01:00): 13, pid=12, name=pyth",
            "NVRM: Xid (PCI:0000:01:00): 13, pid=abc, name=x, y",
            "NVRM: Xid (PCI:0000:01:00): 99999999999, x",
            "NVRM: Xid (garbage): 13, x",
        ] {
            assert!(
                matches!(parse_line(line), XidParse::Malformed { .. }),
                "{line:?} -> {:?}",
                parse_line(line)
            );
        }
    }

    #[test]
    fn other_lines_are_not_xids() {
        for line in [
            "",
            "[ 1410.000001] usb 1-2: new high-speed USB device number 4 using xhci_hcd",
            "[ 1399.140318] NVRM: GPU at PCI:0000:01:00: GPU-34d7319c-5b19-1e75-186d-c187099e4fe5",
            "NVRM: GPU Board Serial Number: 1234567890",
            "NVRM: Xids are fun",
            "nvidia-modeset: Allocated GPU:0 (GPU-34d7319c) @ PCI:0000:01:00.0",
        ] {
            assert_eq!(parse_line(line), XidParse::NotXid, "{line:?}");
        }
    }

    #[test]
    fn fallen_off_the_bus_without_xid() {
        assert_eq!(
            parse_line(
                "[ 5.1] NVRM: The NVIDIA GPU 0000:3b:00.0 (PCI ID: 10de:1db6) installed in this system has fallen off the bus and is not responding to commands."
            ),
            XidParse::FallenOffBus { pci: "0000:3b:00.0".into() }
        );
        assert_eq!(
            parse_line("NVRM: GPU 0000:af:00.0: GPU has fallen off the bus."),
            XidParse::FallenOffBus { pci: "0000:af:00.0".into() }
        );
        assert!(matches!(parse_line("NVRM: A GPU has fallen off the bus."), XidParse::Malformed { .. }));
    }

    #[test]
    fn huge_and_odd_input_does_not_panic() {
        let long = format!("NVRM: Xid (PCI:0000:01:00): 13, {}", "é".repeat(20_000));
        assert!(matches!(parse_line(&long), XidParse::Malformed { .. }));
        let odd = "NVRM: Xid (PCI:é:ü:ö): 1, ü";
        assert!(matches!(parse_line(odd), XidParse::Malformed { .. }));
        let parsed = parse_line("NVRM: Xid (PCI:0000:01:00): 13, pid=1, name=é, ü");
        assert_eq!(parsed.as_xid().and_then(|r| r.name.as_deref()), Some("é"));
    }

    #[test]
    fn results_serialise_with_a_kind_tag() {
        let parsed = parse_line("NVRM: Xid (PCI:0000:01:00): 13, pid=7, name=a, b");
        let json = serde_json::to_value(&parsed).unwrap_or_default();
        assert_eq!(json["kind"], "xid");
        assert_eq!(json["pid"], 7);
        assert_eq!(json["message"], "b");
        let back: XidParse = serde_json::from_value(json).unwrap_or(XidParse::NotXid);
        assert_eq!(back, parsed);
        let fallen = serde_json::to_value(XidParse::FallenOffBus { pci: "0000:3b:00.0".into() });
        assert_eq!(fallen.unwrap_or_default()["kind"], "fallen_off_bus");
    }

    #[test]
    fn parse_log_numbers_lines_from_one() {
        let text = "a\nNVRM: Xid (PCI:0000:01:00): 13, x\r\nb\nNVRM: Xid (PCI:0000:01:00): 13\n";
        let found = parse_log(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, 2);
        assert_eq!(found[0].1.as_xid().map(|r| r.message.as_str()), Some("x"));
        assert_eq!(found[1].0, 4);
        assert!(matches!(found[1].1, XidParse::Malformed { .. }));
    }
}

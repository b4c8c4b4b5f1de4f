//! Canonical JSON: compact, object keys sorted bytewise at every depth, strings escaped as
//! serde_json escapes them, numbers as serde_json prints them.
//!
//! State digests hash this form, so anyone holding a projection's JSON (from `state_json`,
//! the CLI or HTTP) can recompute its digest, whatever key order their JSON tool keeps.
//! Open objects from payloads (`run.queued` spec, kernel variants) are also stored with
//! sorted keys, so their display order is stable too.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// `value` with every object's keys inserted in sorted order (so it serializes sorted even
/// when serde_json keeps insertion order).
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in sorted(map) {
                out.insert(k.clone(), canonical(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The canonical JSON text of `value`.
pub fn canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Appends the canonical JSON text of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// A JSON string literal, escaped exactly as serde_json does: `"` and `\` with a backslash,
/// \b \t \n \f \r by name, other control characters as \u00XX, everything else verbatim.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 0, "y": 1.5} ], "c": null}, "e": [true, "x"]});
        assert_eq!(canonical_string(&v), r#"{"a":{"c":null,"d":[{"y":1.5,"z":0}]},"b":1,"e":[true,"x"]}"#);
        assert_eq!(canonical(&v).to_string(), canonical_string(&v));
    }

    #[test]
    fn strings_escape_like_serde_json() {
        let tricky: String =
            (0u32..0x30).filter_map(char::from_u32).chain("\"\\/é\u{7f}\u{2028}😀".chars()).collect();
        let v = Value::String(tricky);
        assert_eq!(canonical_string(&v), serde_json::to_string(&v).unwrap());
        let n = json!([1, -2, 1.5, 1e300, 0.1, 18446744073709551615u64]);
        assert_eq!(canonical_string(&n), serde_json::to_string(&n).unwrap());
    }
}

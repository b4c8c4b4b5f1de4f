//! Canonical JSON values: object keys sorted bytewise at every depth.
//!
//! Open objects from payloads (`run.queued` spec, kernel variants) are stored in this form so
//! that state serializes to the same bytes whichever map type serde_json was built with
//! (with `preserve_order`, maps keep insertion order; we insert in sorted order).

use serde_json::{Map, Value};

/// `value` with every object's keys in sorted order.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(v) = map.get(k) {
                    out.insert(k.clone(), canonical(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Compact JSON text of [`canonical`]: equal values give equal strings.
pub fn canonical_string(value: &Value) -> String {
    canonical(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 0, "y": 1} ], "c": null}});
        assert_eq!(canonical_string(&v), r#"{"a":{"c":null,"d":[{"y":1,"z":0}]},"b":1}"#);
    }
}

//! What a command cell reports about itself: one `ASSAY_RESULT {json}` line on its output, or
//! the same JSON written to `$ASSAY_RESULT_FILE`.
//!
//! ```json
//! {"passed": true, "max_abs_err": 1.2e-6, "duration_us": 850, "tflops": 1.8, "metrics": {"gbps": 900}}
//! ```
//!
//! `passed`, `max_abs_err` and `duration_us` are known keys; every other top-level number, and
//! every entry of `metrics`, is a named metric. A NaN or an infinity (Python's `json.dumps`
//! writes `NaN`, `Infinity`) means the result held a non-finite value.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::sink::is_identifier;

/// Most named metrics kept from one result.
pub const METRICS_MAX: usize = 64;
/// Longest result accepted, bytes.
pub const RESULT_BYTES_MAX: usize = 64 * 1024;

/// A command's own report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellResult {
    /// Whether the command judged itself passed.
    pub passed: Option<bool>,
    /// Its largest absolute error against its reference.
    pub max_abs_err: Option<f64>,
    /// The time it measured for the work itself (not process start).
    pub duration_us: Option<u64>,
    /// Named metrics.
    pub metrics: BTreeMap<String, f64>,
}

/// Why a result was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResultError {
    /// It held NaN or an infinity.
    #[error("the result holds a non-finite value: {0}")]
    NonFinite(String),
    /// It was not the JSON object described above.
    #[error("the result is not valid: {0}")]
    Invalid(String),
}

fn invalid<T>(message: impl Into<String>) -> Result<T, ResultError> {
    Err(ResultError::Invalid(message.into()))
}

/// Parses a result's JSON text.
pub fn parse_result(text: &str) -> Result<CellResult, ResultError> {
    let shown: String = text.chars().take(200).collect();
    if text.len() > RESULT_BYTES_MAX {
        return invalid(format!("longer than {RESULT_BYTES_MAX} bytes"));
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            // JSON has no NaN; Python writes one anyway. Say so rather than "invalid".
            let bare = |token: &str| text.match_indices(token).any(|(at, _)| !text[..at].ends_with('"'));
            if ["NaN", "Infinity"].into_iter().any(bare) {
                return Err(ResultError::NonFinite(shown));
            }
            return invalid(format!("{e} in {shown}"));
        }
    };
    let Value::Object(map) = value else {
        return invalid(format!("expected a JSON object, got {shown}"));
    };
    let mut result = CellResult::default();
    let metric = |result: &mut CellResult, name: &str, value: &Value| -> Result<(), ResultError> {
        let Some(number) = value.as_f64() else {
            return invalid(format!("metric {name:?} is not a number: {value}"));
        };
        if !is_identifier(name) {
            return invalid(format!("metric name {name:?} is not an identifier"));
        }
        if result.metrics.len() >= METRICS_MAX {
            return invalid(format!("more than {METRICS_MAX} metrics"));
        }
        result.metrics.insert(name.to_owned(), number);
        Ok(())
    };
    for (key, value) in &map {
        match key.as_str() {
            "passed" => match value {
                Value::Bool(b) => result.passed = Some(*b),
                other => return invalid(format!("passed must be true or false, got {other}")),
            },
            "max_abs_err" => match value.as_f64() {
                Some(e) if e >= 0.0 => result.max_abs_err = Some(e),
                _ if value.is_null() => return Err(ResultError::NonFinite(shown)),
                _ => return invalid(format!("max_abs_err must be a number >= 0, got {value}")),
            },
            "duration_us" => match value.as_f64() {
                Some(d) if (0.0..9.2e18).contains(&d) => result.duration_us = Some(d.round() as u64),
                _ => return invalid(format!("duration_us must be a number >= 0, got {value}")),
            },
            "metrics" => {
                let Value::Object(metrics) = value else {
                    return invalid(format!("metrics must be an object, got {value}"));
                };
                for (name, value) in metrics {
                    metric(&mut result, name, value)?;
                }
            }
            name => {
                // Strings, flags and nested objects are the command's own notes: not metrics.
                if value.is_number() {
                    metric(&mut result, name, value)?;
                }
            }
        }
    }
    Ok(result)
}

/// The metrics as a JSON object.
pub fn metrics_value(metrics: &BTreeMap<String, f64>) -> Value {
    Value::Object(metrics.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect::<Map<_, _>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_and_metrics() {
        let r = parse_result(r#"{"passed": true, "max_abs_err": 1e-6, "duration_us": 850.4, "tflops": 1.5, "note": "x", "metrics": {"gbps": 900}}"#)
            .expect("parses");
        assert_eq!(r.passed, Some(true));
        assert_eq!(r.max_abs_err, Some(1e-6));
        assert_eq!(r.duration_us, Some(850));
        assert_eq!(r.metrics.len(), 2);
        assert_eq!(r.metrics["tflops"], 1.5);
        assert_eq!(r.metrics["gbps"], 900.0);
    }

    #[test]
    fn non_finite_values_are_named() {
        for text in
            [r#"{"max_abs_err": NaN}"#, r#"{"passed": true, "x": Infinity}"#, r#"{"max_abs_err": null}"#]
        {
            assert!(matches!(parse_result(text), Err(ResultError::NonFinite(_))), "{text}");
        }
        assert!(parse_result(r#"{"note": "NaN"}"#).is_ok());
    }

    #[test]
    fn mistakes_are_invalid_with_the_reason() {
        for (text, want) in [
            ("[1]", "JSON object"),
            ("{\"passed\": 1}", "passed"),
            ("{\"max_abs_err\": -1}", "max_abs_err"),
            ("{\"duration_us\": \"1\"}", "duration_us"),
            ("{\"metrics\": {\"a b\": 1}}", "identifier"),
            ("{\"metrics\": {\"a\": \"1\"}}", "not a number"),
            ("{", "EOF"),
        ] {
            let error = parse_result(text).expect_err(text);
            assert!(matches!(&error, ResultError::Invalid(m) if m.contains(want)), "{text}: {error}");
        }
    }
}

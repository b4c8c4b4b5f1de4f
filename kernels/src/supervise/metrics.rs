//! Following a metrics JSONL file as a run appends to it: one `{"name","step","value","unit"?}`
//! object per line, each becoming a `metric.recorded` event.

use std::io;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::follow::{FileFollower, FollowEvent};
use crate::sink::is_identifier;

/// One metric line.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Metric name (an identifier, e.g. `val/loss`).
    pub name: String,
    /// Step, from 0.
    pub step: u64,
    /// The value (finite).
    pub value: f64,
    /// Unit, 1–32 characters.
    pub unit: Option<String>,
}

impl Metric {
    /// `metric.recorded` data for `run`.
    pub fn data(&self, run: &str) -> Value {
        let mut data = json!({"run": run, "name": self.name, "step": self.step, "value": self.value});
        if let Some(unit) = &self.unit {
            data["unit"] = Value::from(unit.as_str());
        }
        data
    }
}

/// What is wrong with one metrics line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricLineError {
    /// The line is not JSON (serde_json's message).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The line is JSON but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A required key is absent.
    #[error("no {0}")]
    Missing(&'static str),
    /// `name` is not an identifier (the value as found).
    #[error("name must be an identifier ([A-Za-z0-9][A-Za-z0-9._:/-]*), got {0}")]
    BadName(Value),
    /// `step` is not a non-negative integer (the value as found).
    #[error("step must be a non-negative integer, got {0}")]
    BadStep(Value),
    /// `value` is a number that is not finite.
    #[error("value {0} is not finite")]
    NotFinite(serde_json::Number),
    /// `value` is not a number (the value as found).
    #[error("value must be a number, got {0}")]
    BadValue(Value),
    /// `unit` is not a string of 1 to 32 characters (the value as found).
    #[error("unit must be a string of 1 to 32 characters, got {0}")]
    BadUnit(Value),
    /// The file follower did not keep the line (its reason, e.g. too long).
    #[error("{0}")]
    Skipped(String),
}

/// Parses one metrics line; the error says what is wrong. Other keys are ignored.
pub fn parse_metric(line: &str) -> Result<Metric, MetricLineError> {
    let value: Value = serde_json::from_str(line).map_err(|e| MetricLineError::NotJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(MetricLineError::NotObject);
    };
    let name = match object.get("name") {
        Some(Value::String(name)) if is_identifier(name) => name.clone(),
        Some(other) => return Err(MetricLineError::BadName(other.clone())),
        None => return Err(MetricLineError::Missing("name")),
    };
    let step = match object.get("step") {
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(step), _) => step,
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 9.0e15 => f as u64,
            _ => return Err(MetricLineError::BadStep(Value::Number(n.clone()))),
        },
        Some(other) => return Err(MetricLineError::BadStep(other.clone())),
        None => return Err(MetricLineError::Missing("step")),
    };
    let value = match object.get("value") {
        Some(Value::Number(n)) => {
            n.as_f64().filter(|v| v.is_finite()).ok_or_else(|| MetricLineError::NotFinite(n.clone()))?
        }
        Some(other) => return Err(MetricLineError::BadValue(other.clone())),
        None => return Err(MetricLineError::Missing("value")),
    };
    let unit = match object.get("unit") {
        None | Some(Value::Null) => None,
        Some(Value::String(unit)) if !unit.is_empty() && unit.chars().count() <= 32 => Some(unit.clone()),
        Some(other) => return Err(MetricLineError::BadUnit(other.clone())),
    };
    Ok(Metric { name, step, value, unit })
}

/// A metrics file being appended to.
#[derive(Debug)]
pub struct MetricsTail {
    follower: FileFollower,
}

/// One line read from the metrics file: its number and what it held.
pub type MetricLine = (u64, Result<Metric, MetricLineError>);

impl MetricsTail {
    /// Follows `path` from its beginning (it need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        MetricsTail { follower: FileFollower::from_start(path) }
    }

    /// The lines completed since the last call. With `finish`, a last line without a
    /// newline counts too.
    pub fn poll(&mut self, finish: bool) -> io::Result<Vec<MetricLine>> {
        let mut out = Vec::new();
        for event in self.follower.poll(finish)? {
            match event {
                FollowEvent::Line { number, text } => {
                    if text.trim().is_empty() {
                        continue;
                    }
                    out.push((number, parse_metric(text.trim())));
                }
                FollowEvent::Truncated => {}
                FollowEvent::Skipped { number, reason } => {
                    out.push((number, Err(MetricLineError::Skipped(reason))))
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_good_lines_and_explains_bad_ones() {
        let m =
            parse_metric(r#"{"name":"val/loss","step":3,"value":1.5,"unit":"nats","extra":1}"#).expect("ok");
        assert_eq!(m, Metric { name: "val/loss".into(), step: 3, value: 1.5, unit: Some("nats".into()) });
        assert_eq!(
            m.data("r-1"),
            json!({"run": "r-1", "name": "val/loss", "step": 3, "value": 1.5, "unit": "nats"})
        );
        assert_eq!(parse_metric(r#"{"name":"a","step":2.0,"value":1}"#).map(|m| m.step), Ok(2));
        assert!(
            parse_metric(r#"{"name":"a","step":1,"value":1,"unit":null}"#).is_ok_and(|m| m.unit.is_none())
        );
        for (line, want) in [
            ("nope", "not JSON"),
            ("[1]", "object"),
            (r#"{"step":1,"value":1}"#, "no name"),
            (r#"{"name":"-x","step":1,"value":1}"#, "identifier"),
            (r#"{"name":"a","step":-1,"value":1}"#, "step"),
            (r#"{"name":"a","step":1.5,"value":1}"#, "step"),
            (r#"{"name":"a","value":1}"#, "no step"),
            (r#"{"name":"a","step":1,"value":"1"}"#, "number"),
            (r#"{"name":"a","step":1}"#, "no value"),
            (r#"{"name":"a","step":1,"value":1,"unit":""}"#, "unit"),
        ] {
            let error = parse_metric(line).expect_err(line).to_string();
            assert!(error.contains(want), "{line}: {error}");
        }
    }

    #[test]
    fn follows_appends_and_partial_lines() {
        let dir = tempfile_dir();
        let path = dir.join("metrics.jsonl");
        let mut tail = MetricsTail::new(path.clone());
        assert!(tail.poll(false).expect("poll").is_empty(), "no file yet");
        let mut file = std::fs::File::create(&path).expect("create");
        write!(file, "{{\"name\":\"a\",\"step\":0,\"value\":1}}\n{{\"name\":\"a\",\"st").expect("write");
        let lines = tail.poll(false).expect("poll");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, 1);
        write!(file, "ep\":1,\"value\":2}}\nbad\n{{\"name\":\"b\",\"step\":0,\"value\":3}}").expect("write");
        let lines = tail.poll(false).expect("poll");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1.as_ref().map(|m| m.value), Ok(2.0));
        assert_eq!(lines[1].0, 3);
        assert!(lines[1].1.is_err());
        let last = tail.poll(true).expect("finish");
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].1.as_ref().map(|m| m.name.as_str()), Ok("b"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assay-metrics-{}-{}", std::process::id(), line!()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}

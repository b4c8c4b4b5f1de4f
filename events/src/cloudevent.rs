//! The CloudEvents 1.0 structured-JSON payload.

use serde_json::{Map, Value};

use crate::Hash32;

/// A parsed CloudEvent. The payload bytes it came from are kept by the caller verbatim;
/// this is a view of them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// RFC 3339 as the producer wrote it.
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// The only `specversion` accepted.
pub const SPEC_VERSION: &str = "1.0";
/// The only `datacontenttype` accepted when present.
pub const DATA_CONTENT_TYPE: &str = "application/json";

impl CloudEvent {
    /// Parses payload bytes. Requires a JSON object with `specversion` == "1.0", non-empty
    /// `id`, `source`, `type`, and `time` in RFC 3339; `datacontenttype`, when present, must
    /// be `application/json`. Errors name the field.
    pub fn parse(payload: &[u8]) -> Result<CloudEvent, CloudEventError> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| CloudEventError::Json(e.to_string()))?;
        let Value::Object(mut obj) = value else {
            return Err(CloudEventError::Json(format!("top level is {}", kind(&value))));
        };

        let specversion = required(&obj, "specversion")?;
        if specversion != SPEC_VERSION {
            return Err(invalid("specversion", format!("must be \"1.0\", got {specversion:?}")));
        }
        let id = required(&obj, "id")?;
        let source = required(&obj, "source")?;
        let ty = required(&obj, "type")?;
        let subject = optional(&obj, "subject")?;
        let time = required(&obj, "time")?;
        chrono::DateTime::parse_from_rfc3339(&time)
            .map_err(|e| invalid("time", format!("not RFC 3339 ({e}): {time:?}")))?;
        let datacontenttype = optional(&obj, "datacontenttype")?;
        if let Some(ct) = &datacontenttype
            && ct != DATA_CONTENT_TYPE
        {
            return Err(invalid("datacontenttype", format!("must be {DATA_CONTENT_TYPE:?}, got {ct:?}")));
        }
        let data = obj.remove("data").unwrap_or(Value::Null);

        Ok(CloudEvent { specversion, id, source, ty, subject, time, datacontenttype, data })
    }

    /// `time` as nanoseconds since the Unix epoch.
    pub fn time_ns(&self) -> Result<i64, CloudEventError> {
        let t = chrono::DateTime::parse_from_rfc3339(&self.time)
            .map_err(|e| invalid("time", format!("not RFC 3339 ({e}): {:?}", self.time)))?;
        // i64 nanoseconds cover 1677-09-21 to 2262-04-11.
        t.timestamp_nanos_opt()
            .ok_or_else(|| invalid("time", format!("{:?} is outside the i64 nanosecond range", self.time)))
    }

    /// Compact JSON bytes (for producers building a payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Only strings and a serde_json::Value: serialization has no failure case.
        serde_json::to_vec(self).expect("a CloudEvent always serializes")
    }
}

/// The event digest: blake3 of the payload bytes.
pub fn event_digest(payload: &[u8]) -> Hash32 {
    Hash32::blake3(payload)
}

fn invalid(field: &'static str, reason: String) -> CloudEventError {
    CloudEventError::Invalid { field, reason }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required, non-empty string attribute. JSON null counts as absent, as the CloudEvents
/// JSON format says.
fn required(obj: &Map<String, Value>, field: &'static str) -> Result<String, CloudEventError> {
    optional(obj, field)?.ok_or(CloudEventError::Missing(field))
}

/// An optional string attribute; when present it must be a non-empty string.
fn optional(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, CloudEventError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(invalid(field, "must not be empty".into())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(field, format!("must be a string, got {}", kind(other)))),
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloudEventError {
    #[error("payload is not a JSON object: {0}")]
    Json(String),
    #[error("missing required attribute `{0}`")]
    Missing(&'static str),
    #[error("attribute `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

//! The CloudEvents 1.0 structured-JSON payload.

use chrono::Datelike;
use serde_json::Value;

use crate::Hash32;
use crate::schemas::EventType;
use crate::text::{
    ID_CHARS_MAX, SOURCE_CHARS_MAX, SUBJECT_CHARS_MAX, TIME_CHARS_MAX, TYPE_CHARS_MAX, check_text,
};

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
    /// The `$id` of the schema `data` follows ([`EventType::schema_id`]). Optional: events
    /// signed before producers wrote it have none, and it cannot be added to a signed payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// The only `specversion` accepted.
pub const SPEC_VERSION: &str = "1.0";
/// The only `datacontenttype` accepted when present.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The earliest year (UTC) of a new event's `time`.
pub const TIME_YEAR_MIN: i32 = 1970;
/// The latest year (UTC) of a new event's `time`: every time up to the end of it has an i64
/// nanosecond value ([`CloudEvent::time_ns`] covers 1677-09-21 to 2262-04-11).
pub const TIME_YEAR_MAX: i32 = 2261;

impl CloudEvent {
    /// The event's `type` as a v1 [`EventType`]; `None` for a type outside v1 (a later
    /// version's), which projections ignore and the ledger still stores and verifies.
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.ty).ok()
    }

    /// Parses payload bytes. Requires a JSON object with `specversion` == "1.0", non-empty
    /// `id`, `source`, `type`, and `time` in RFC 3339; `datacontenttype`, when present, must
    /// be `application/json`. Errors name the field.
    pub fn parse(payload: &[u8]) -> Result<CloudEvent, CloudEventError> {
        // One pass straight into the attributes (no map of the whole object, no copies of
        // its strings). It accepts exactly the objects a `Value` parse accepts; anything else
        // is parsed again as a `Value` only to say what is wrong.
        let fields = match crate::json::from_text::<Attributes>(payload) {
            Some(fields) => fields,
            None => {
                // The error as the byte parser words it.
                let e = match serde_json::from_slice::<Attributes>(payload) {
                    Ok(fields) => return CloudEvent::from_attributes(fields),
                    Err(e) => e,
                };
                let value: Value =
                    serde_json::from_slice(payload).map_err(|e| CloudEventError::Json(e.to_string()))?;
                return Err(CloudEventError::Json(match value {
                    Value::Object(_) => e.to_string(),
                    other => format!("top level is {}", kind(&other)),
                }));
            }
        };
        CloudEvent::from_attributes(fields)
    }

    /// The attribute rules of [`CloudEvent::parse`], on the members it read.
    fn from_attributes(fields: Attributes) -> Result<CloudEvent, CloudEventError> {
        let specversion = required(fields.specversion, "specversion")?;
        if specversion != SPEC_VERSION {
            return Err(invalid("specversion", format!("must be \"1.0\", got {specversion:?}")));
        }
        let id = required(fields.id, "id")?;
        let source = required(fields.source, "source")?;
        let ty = required(fields.ty, "type")?;
        let subject = optional(fields.subject, "subject")?;
        let time = required(fields.time, "time")?;
        chrono::DateTime::parse_from_rfc3339(&time)
            .map_err(|e| invalid("time", format!("not RFC 3339 ({e}): {time:?}")))?;
        let datacontenttype = optional(fields.datacontenttype, "datacontenttype")?;
        if let Some(ct) = &datacontenttype
            && ct != DATA_CONTENT_TYPE
        {
            return Err(invalid("datacontenttype", format!("must be {DATA_CONTENT_TYPE:?}, got {ct:?}")));
        }
        let dataschema = optional(fields.dataschema, "dataschema")?;
        let data = fields.data.unwrap_or(Value::Null);

        Ok(CloudEvent { specversion, id, source, ty, subject, time, datacontenttype, dataschema, data })
    }

    /// Parses the payload of an envelope offered for appending: [`CloudEvent::parse`], plus the
    /// rules for new events — no object in the payload holds a key twice (at any depth), and
    /// [`CloudEvent::check_submitted`]. Stored records are read with [`CloudEvent::parse`], so
    /// a ledger written before a rule existed still opens.
    ///
    /// A payload is parsed once: into the attributes, with every object's keys checked for
    /// duplicates as it is built. Only where that finds anything wrong is it parsed again, by
    /// [`CloudEvent::parse`] and then the duplicate-key pass, so that each refused payload gets
    /// the same error, in the same order of precedence, as from those two alone.
    pub fn parse_submitted(payload: &[u8]) -> Result<CloudEvent, CloudEventError> {
        let event = match CloudEvent::parse_strict(payload) {
            Some(event) => event,
            None => {
                let event = CloudEvent::parse(payload)?;
                crate::json::check_unique_keys(payload)
                    .map_err(|e| CloudEventError::DuplicateKey(e.to_string()))?;
                event
            }
        };
        event.check_submitted()?;
        Ok(event)
    }

    /// [`CloudEvent::parse`] in the same one pass, refusing a key held twice by any object
    /// (the payload's own members, extension attributes included, and every object in their
    /// values). `None` for any payload it does not accept, whatever the reason: the caller
    /// finds the reason.
    fn parse_strict(payload: &[u8]) -> Option<CloudEvent> {
        let fields = crate::json::from_text::<StrictAttributes>(payload)?;
        CloudEvent::from_attributes(fields.0).ok()
    }

    /// The rules for the attributes of a new event: `id`, `source`, `type` and `subject` hold
    /// no control character and are at most [`ID_CHARS_MAX`], [`SOURCE_CHARS_MAX`],
    /// [`TYPE_CHARS_MAX`] and [`SUBJECT_CHARS_MAX`] characters ([`crate::text`]); `time` is at
    /// most [`TIME_CHARS_MAX`] characters and falls in the years [`TIME_YEAR_MIN`] to
    /// [`TIME_YEAR_MAX`] (UTC); `dataschema`, when present on an event of a v1 type, is that
    /// type's schema `$id` (a producer may leave it out; it may not name another schema).
    pub fn check_submitted(&self) -> Result<(), CloudEventError> {
        if let (Some(schema), Some(ty)) = (&self.dataschema, self.event_type())
            && *schema != ty.schema_id()
        {
            return Err(invalid(
                "dataschema",
                format!("{schema:?} is not the schema of {}: {:?}", ty.as_str(), ty.schema_id()),
            ));
        }
        let fields = [
            ("id", Some(&self.id), ID_CHARS_MAX),
            ("source", Some(&self.source), SOURCE_CHARS_MAX),
            ("type", Some(&self.ty), TYPE_CHARS_MAX),
            ("subject", self.subject.as_ref(), SUBJECT_CHARS_MAX),
            ("time", Some(&self.time), TIME_CHARS_MAX),
        ];
        for (field, value, max) in fields {
            if let Some(value) = value {
                check_text(value, max).map_err(|e| invalid(field, e.to_string()))?;
            }
        }
        let t = chrono::DateTime::parse_from_rfc3339(&self.time)
            .map_err(|e| invalid("time", format!("not RFC 3339 ({e}): {:?}", self.time)))?;
        let year = t.naive_utc().year();
        if !(TIME_YEAR_MIN..=TIME_YEAR_MAX).contains(&year) {
            return Err(invalid(
                "time",
                format!(
                    "{:?} is in the year {year}; the ledger takes {TIME_YEAR_MIN} to {TIME_YEAR_MAX}",
                    self.time
                ),
            ));
        }
        Ok(())
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
fn required(value: Option<Value>, field: &'static str) -> Result<String, CloudEventError> {
    optional(value, field)?.ok_or(CloudEventError::Missing(field))
}

/// An optional string attribute; when present it must be a non-empty string.
fn optional(value: Option<Value>, field: &'static str) -> Result<Option<String>, CloudEventError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(invalid(field, "must not be empty".into())),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(field, format!("must be a string, got {}", kind(&other)))),
    }
}

/// The members of a payload object that [`CloudEvent::parse`] reads, each as the JSON value
/// it holds (the last one where a name repeats, as in a map of the object). Other members are
/// parsed as values too and dropped, so the object is accepted exactly when a `Value` parse
/// accepts it.
#[derive(Default)]
struct Attributes {
    specversion: Option<Value>,
    id: Option<Value>,
    source: Option<Value>,
    ty: Option<Value>,
    subject: Option<Value>,
    time: Option<Value>,
    datacontenttype: Option<Value>,
    dataschema: Option<Value>,
    data: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Attributes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
                let mut a = Attributes::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let Some(slot) = a.slot(name) else {
                        map.next_value::<Value>()?;
                        continue;
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(a)
            }
        }
        d.deserialize_map(Visit)
    }
}

impl Attributes {
    /// Where the value of the member `name` goes; `None` for a member not read.
    fn slot(&mut self, name: Name) -> Option<&mut Option<Value>> {
        Some(match name {
            Name::SpecVersion => &mut self.specversion,
            Name::Id => &mut self.id,
            Name::Source => &mut self.source,
            Name::Type => &mut self.ty,
            Name::Subject => &mut self.subject,
            Name::Time => &mut self.time,
            Name::DataContentType => &mut self.datacontenttype,
            Name::DataSchema => &mut self.dataschema,
            Name::Data => &mut self.data,
            Name::Other => return None,
        })
    }
}

/// [`Attributes`] read by the strict rule: it fails where the payload object holds a member
/// name twice (a read attribute or any other, escaped or not) or any object in a member's
/// value holds a key twice ([`crate::json::StrictValue`]). Where it succeeds, the attributes
/// are those [`Attributes`] reads from the same bytes.
struct StrictAttributes(Attributes);

impl<'de> serde::Deserialize<'de> for StrictAttributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StrictAttributes, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = StrictAttributes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictAttributes, A::Error> {
                use serde::de::Error as _;
                let mut a = Attributes::default();
                // Extension attributes, by name (unescaped); most events have none.
                let mut others = std::collections::BTreeSet::new();
                while let Some(StrictName(name, other)) = map.next_key()? {
                    let value = map.next_value_seed(crate::json::StrictValue)?;
                    let first = match a.slot(name) {
                        Some(slot) => slot.replace(value).is_none(),
                        None => others.insert(other),
                    };
                    if !first {
                        return Err(A::Error::custom("duplicate key"));
                    }
                }
                Ok(StrictAttributes(a))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A member name of a payload object, read without copying it.
enum Name {
    SpecVersion,
    Id,
    Source,
    Type,
    Subject,
    Time,
    DataContentType,
    DataSchema,
    Data,
    Other,
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Name;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Name, E> {
                Ok(Name::of(name))
            }
        }
        d.deserialize_identifier(Visit)
    }
}

impl Name {
    fn of(name: &str) -> Name {
        match name {
            "specversion" => Name::SpecVersion,
            "id" => Name::Id,
            "source" => Name::Source,
            "type" => Name::Type,
            "subject" => Name::Subject,
            "time" => Name::Time,
            "datacontenttype" => Name::DataContentType,
            "dataschema" => Name::DataSchema,
            "data" => Name::Data,
            _ => Name::Other,
        }
    }
}

/// A member name of a payload object, with the name itself (unescaped) where it is
/// [`Name::Other`] (empty otherwise), so that a repeated extension attribute is noticed.
struct StrictName(Name, String);

impl<'de> serde::Deserialize<'de> for StrictName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StrictName, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = StrictName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<StrictName, E> {
                Ok(match Name::of(name) {
                    Name::Other => StrictName(Name::Other, name.to_owned()),
                    known => StrictName(known, String::new()),
                })
            }
        }
        d.deserialize_identifier(Visit)
    }
}

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloudEventError {
    #[error("payload is not a JSON object: {0}")]
    Json(String),
    #[error("missing required attribute `{0}`")]
    Missing(&'static str),
    #[error("attribute `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("payload JSON holds a key twice: {0}")]
    DuplicateKey(String),
}

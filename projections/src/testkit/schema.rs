//! Checks test events' `data` against `schemas/events/<type>.json`, so fixtures cannot drift
//! from the contract.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use assay_events::schemas::SCHEMA_TEXTS as SCHEMAS;

fn validators() -> &'static BTreeMap<&'static str, jsonschema::Validator> {
    static V: OnceLock<BTreeMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(ty, text)| {
                let schema: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("schema {ty}: {e}"));
                let v = jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("schema {ty}: {e}"));
                (*ty, v)
            })
            .collect()
    })
}

/// Why a test event's `data` does not meet its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureSchemaError {
    /// No schema is listed for this event type.
    #[error("no schema for event type {0:?}")]
    UnknownType(String),
    /// The first failing field (a JSON pointer below `data`) and the validator's message.
    #[error("{ty}: data{path}: {message}")]
    Invalid { ty: String, path: String, message: String },
}

/// `Err` naming the first failing field, or the unknown type.
pub fn validate(ty: &str, data: &Value) -> Result<(), FixtureSchemaError> {
    let v = validators().get(ty).ok_or_else(|| FixtureSchemaError::UnknownType(ty.to_owned()))?;
    match v.iter_errors(data).next() {
        None => Ok(()),
        Some(e) => Err(FixtureSchemaError::Invalid {
            ty: ty.to_owned(),
            path: e.instance_path.to_string(),
            message: e.to_string(),
        }),
    }
}

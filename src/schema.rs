//! Event `data` validation against `schemas/events/<type>.json` (JSON Schema 2020-12).
//!
//! The schemas are compiled into the binary, so validation needs no files at run time.

use std::collections::HashMap;
use std::sync::OnceLock;

pub use assay_events::schemas::SCHEMA_TEXTS;

/// Why `data` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{ty}: data{path}: {message}")]
    Invalid { ty: String, path: String, message: String },
}

struct Schemas {
    validators: HashMap<&'static str, jsonschema::Validator>,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let validators = SCHEMA_TEXTS
            .iter()
            .map(|(ty, text)| {
                // The schemas ship inside the binary and are checked by tests; a broken one
                // is a build defect, not bad input.
                let schema: serde_json::Value =
                    serde_json::from_str(text).unwrap_or_else(|e| panic!("schema {ty} is not JSON: {e}"));
                let validator = jsonschema::draft202012::new(&schema)
                    .unwrap_or_else(|e| panic!("schema {ty} does not compile: {e}"));
                (*ty, validator)
            })
            .collect();
        Schemas { validators }
    })
}

/// Validates `data` of an event of type `ty`. The error names the first failing field.
pub fn validate(ty: &str, data: &serde_json::Value) -> Result<(), SchemaError> {
    let validator = schemas().validators.get(ty).ok_or_else(|| SchemaError::UnknownType(ty.to_owned()))?;
    match validator.iter_errors(data).next() {
        None => Ok(()),
        Some(e) => Err(SchemaError::Invalid {
            ty: ty.to_owned(),
            path: e.instance_path.to_string(),
            message: e.to_string(),
        }),
    }
}

/// True iff `ty` is a v1 event type.
pub fn known(ty: &str) -> bool {
    schemas().validators.contains_key(ty)
}

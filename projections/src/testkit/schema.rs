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

/// `Err` naming the first failing field, or the unknown type.
pub fn validate(ty: &str, data: &Value) -> Result<(), String> {
    let v = validators().get(ty).ok_or_else(|| format!("no schema for event type {ty:?}"))?;
    match v.iter_errors(data).next() {
        None => Ok(()),
        Some(e) => Err(format!("{ty}: data{}: {e}", e.instance_path)),
    }
}

//! Event `data` validation against `schemas/events/<type>.json` (JSON Schema 2020-12).
//!
//! The schemas are compiled into the binary, so validation needs no files at run time.
//!
//! **Integers.** JSON Schema's `"type": "integer"` takes any number whose fraction is zero:
//! `100.0`, `1e2`, `1e30` and `18446744073709551616` all pass it, and none of them fits the
//! 64-bit column it is exported to. Assay's rule is stricter, and this module is where it
//! lives: wherever a schema says `integer`, `data` must hold a JSON integer — digits only, no
//! fraction, no exponent, not `-0` — within the schema's `minimum`/`maximum`, which state the
//! width of the field (the range of its Parquet column, see `schemas/events/README.md`). The
//! rule is a keyword ([`INTEGER_KEYWORD`]) added to every integer schema when it is compiled,
//! so it holds inside `oneOf`, `$ref`, array items and open objects alike.
//!
//! [`validate`] applies every rule; it is what the ledger accepts new events with.
//! [`validate_recorded`] is for events already in a log (`assay verify`, `verify-export`,
//! `verify-bundle`): a ledger written before the integer rule may hold `100.0` or `1e30` in an
//! integer field, accepted then under plain JSON Schema, and verification must not refuse
//! what ingest accepted. It applies the same schemas without the integer rule: an integer is
//! any number with a zero fraction, as JSON Schema defines it, and the bounds that only state
//! a width ([`WIDTH_LIMITS`]) do not apply.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::{LazyLocation, Location};
use jsonschema::{Keyword, ValidationError};
use serde_json::{Map, Value};

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

/// The keyword compiled into every integer schema (never written in the schema files).
pub const INTEGER_KEYWORD: &str = "x-assay-integer";

/// Bounds that state an integer field's width rather than its meaning: the limits of i64,
/// u64 and u32. [`validate_recorded`] does not apply them.
pub const WIDTH_LIMITS: [i128; 4] = [i64::MIN as i128, i64::MAX as i128, u64::MAX as i128, u32::MAX as i128];

/// The widest integers JSON `data` may hold: those serde_json reads as i64 or u64.
const ANY_MIN: i128 = i64::MIN as i128;
const ANY_MAX: i128 = u64::MAX as i128;

/// Which rules a validator applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// New events: every rule.
    New,
    /// Events already in a log: the schemas without the integer rule.
    Recorded,
}

/// Each type's validator, compiled when first used: a compiled validator holds the automata
/// of its patterns (most of a one-shot `append`'s memory when every type was compiled at
/// once), and an input usually holds a few types.
struct Schemas {
    validators: HashMap<&'static str, (&'static str, OnceLock<jsonschema::Validator>)>,
}

fn compile(rules: Rules, ty: &str, text: &str) -> jsonschema::Validator {
    // The schemas ship inside the binary and are checked by tests; a broken one is a build
    // defect, not bad input.
    let mut schema: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("schema {ty} is not JSON: {e}"));
    match rules {
        Rules::New => {
            mark_integers(&mut schema);
            jsonschema::draft202012::options().with_keyword(INTEGER_KEYWORD, integer_rule).build(&schema)
        }
        Rules::Recorded => {
            relax_integers(&mut schema);
            jsonschema::draft202012::new(&schema)
        }
    }
    .unwrap_or_else(|e| panic!("schema {ty} does not compile: {e}"))
}

fn schemas(rules: Rules) -> &'static Schemas {
    static NEW: OnceLock<Schemas> = OnceLock::new();
    static RECORDED: OnceLock<Schemas> = OnceLock::new();
    let all = || Schemas {
        validators: SCHEMA_TEXTS.iter().map(|(ty, text)| (*ty, (*text, OnceLock::new()))).collect(),
    };
    match rules {
        Rules::New => NEW.get_or_init(all),
        Rules::Recorded => RECORDED.get_or_init(all),
    }
}

fn validator(rules: Rules, ty: &str) -> Result<&'static jsonschema::Validator, SchemaError> {
    let (text, cell) =
        schemas(rules).validators.get(ty).ok_or_else(|| SchemaError::UnknownType(ty.to_owned()))?;
    Ok(cell.get_or_init(|| compile(rules, ty, text)))
}

/// Validates `data` of a new event of type `ty`: every rule, the integer rule included. The
/// error names the first failing field and why.
pub fn validate(ty: &str, data: &Value) -> Result<(), SchemaError> {
    check(Rules::New, ty, data)
}

/// Validates `data` of an event already in a log: the schemas without the integer rule (see
/// the module documentation).
pub fn validate_recorded(ty: &str, data: &Value) -> Result<(), SchemaError> {
    check(Rules::Recorded, ty, data)
}

fn check(rules: Rules, ty: &str, data: &Value) -> Result<(), SchemaError> {
    let validator = validator(rules, ty)?;
    // Valid data, the usual case, is told apart without building errors; only invalid data
    // walks the errors to find the one to report.
    if validator.is_valid(data) {
        return Ok(());
    }
    // The integer rule's message says everything the built-in `minimum`/`maximum`/`type`
    // messages about the same value say, and why: it goes first.
    let mut first = None;
    for e in validator.iter_errors(data) {
        let ours = matches!(e.kind, ValidationErrorKind::Custom { .. });
        if ours || first.is_none() {
            let (path, message) = match chosen_branch_error(&e) {
                Some(inner) => (inner.instance_path.to_string(), inner.to_string()),
                None => (e.instance_path.to_string(), e.to_string()),
            };
            first = Some(SchemaError::Invalid { ty: ty.to_owned(), path, message });
        }
        if ours {
            break;
        }
    }
    first.map_or(Ok(()), Err)
}

/// For a `oneOf` of objects told apart by a `kind` constant (`claim.asserted` `check`): the
/// first error of the one branch whose `kind` matched, so the refusal names the field that is
/// wrong (`data/check/claimed/lo: "3.o" does not match …`) rather than only that no branch
/// matched. `None` when no branch, or more than one, took the `kind`.
fn chosen_branch_error<'a>(e: &'a ValidationError<'_>) -> Option<&'a ValidationError<'static>> {
    let ValidationErrorKind::OneOfNotValid { context } = &e.kind else { return None };
    let kind_path = format!("{}/kind", e.instance_path);
    let mut took_kind = context.iter().filter(|errors| {
        !errors.iter().any(|x| {
            x.instance_path.to_string() == kind_path && matches!(x.kind, ValidationErrorKind::Constant { .. })
        })
    });
    let branch = took_kind.next()?;
    if took_kind.next().is_some() {
        return None;
    }
    let first = branch.first()?;
    Some(chosen_branch_error(first).unwrap_or(first))
}

/// True iff `ty` is a v1 event type.
pub fn known(ty: &str) -> bool {
    SCHEMA_TEXTS.iter().any(|(t, _)| *t == ty)
}

/// True iff the schema object `o` declares an integer (and not also any number).
fn declares_integer(o: &Map<String, Value>) -> bool {
    match o.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer") && !ts.iter().any(|t| t == "number"),
        _ => false,
    }
}

/// Visits every object of a schema document, depth first.
fn each_object(v: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    match v {
        Value::Object(o) => {
            f(o);
            for child in o.values_mut() {
                each_object(child, f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| each_object(i, f)),
        _ => {}
    }
}

fn mark_integers(schema: &mut Value) {
    each_object(schema, &mut |o| {
        if declares_integer(o) {
            o.insert(INTEGER_KEYWORD.to_owned(), Value::Bool(true));
        }
    });
}

/// The schema as plain JSON Schema reads it, without the integer rule: an integer is any
/// number whose fraction is zero, of any size. (jsonschema takes `100.0` for `"type":
/// "integer"` but not for `"type": ["integer", "null"]`; `number` with `multipleOf: 1` is
/// the specification's `integer` in both forms.)
fn relax_integers(schema: &mut Value) {
    each_object(schema, &mut |o| {
        if !declares_integer(o) {
            return;
        }
        for bound in ["minimum", "maximum"] {
            if o.get(bound).and_then(as_int).is_some_and(|b| WIDTH_LIMITS.contains(&b)) {
                o.remove(bound);
            }
        }
        match o.get_mut("type") {
            Some(Value::Array(ts)) => {
                ts.iter_mut().filter(|t| *t == "integer").for_each(|t| *t = "number".into())
            }
            Some(t) => *t = "number".into(),
            None => {}
        }
        o.insert("multipleOf".to_owned(), Value::from(1));
    });
}

/// A JSON integer (an i64 or u64 literal) as i128; None for anything else.
fn as_int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n.as_u64().map(i128::from).or_else(|| n.as_i64().map(i128::from)),
        _ => None,
    }
}

/// The factory jsonschema calls for each [`INTEGER_KEYWORD`] (the signature, and so the size
/// of its error type, is jsonschema's).
#[allow(clippy::result_large_err)]
fn integer_rule<'a>(
    parent: &'a Map<String, Value>,
    _value: &'a Value,
    _at: Location,
) -> Result<Box<dyn Keyword>, ValidationError<'a>> {
    Ok(Box::new(IntegerRule::of(parent)))
}

/// The integer rule of one integer schema, with its bounds.
struct IntegerRule {
    min: i128,
    max: i128,
}

impl IntegerRule {
    fn of(parent: &Map<String, Value>) -> IntegerRule {
        let bound = |k: &str, default: i128| parent.get(k).and_then(as_int).unwrap_or(default);
        IntegerRule {
            min: bound("minimum", ANY_MIN).max(ANY_MIN),
            max: bound("maximum", ANY_MAX).min(ANY_MAX),
        }
    }
}

impl Keyword for IntegerRule {
    fn validate<'i>(&self, instance: &'i Value, location: &LazyLocation) -> Result<(), ValidationError<'i>> {
        if self.is_valid(instance) {
            return Ok(());
        }
        Err(ValidationError::custom(
            Location::new(),
            location.into(),
            instance,
            format!(
                "{instance} is not an integer from {} to {}: an integer field takes a JSON integer \
                 written with digits only (no fraction, no exponent, not -0) within that range",
                self.min, self.max
            ),
        ))
    }

    fn is_valid(&self, instance: &Value) -> bool {
        match instance {
            // Anything not a number is the `type` keyword's to refuse.
            Value::Number(_) => as_int(instance).is_some_and(|i| (self.min..=self.max).contains(&i)),
            _ => true,
        }
    }
}

//! Reading event `data`. The ledger validated every payload against its schema; a field that
//! is missing or of the wrong type here makes the projection ignore the event (or the field).

use assay_events::record::Record;
use serde_json::Value;

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str()
}

pub(crate) fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key)?.as_u64()
}

pub(crate) fn i64_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key)?.as_i64()
}

/// A finite number (JSON numbers always are; the check keeps state digestible regardless).
pub(crate) fn f64_of(v: &Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64().filter(|x| x.is_finite())
}

pub(crate) fn bool_of(v: &Value, key: &str) -> Option<bool> {
    v.get(key)?.as_bool()
}

/// The strings of an array field (non-strings skipped).
pub(crate) fn strs_of<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

pub(crate) fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// The producer's `time` in Unix nanoseconds; the ledger's `received_at_ns` if it does not
/// parse (it always does: the ledger checked it).
pub(crate) fn event_time_ns(record: &Record) -> i64 {
    record.event.time_ns().unwrap_or(record.received_at_ns)
}

/// The key name in `source` = `assay:key/<name>`.
pub(crate) fn source_key_name(record: &Record) -> Option<&str> {
    assay_events::source::source_key_name(&record.event.source)
}

/// The keyid of the signature made by the `source` key (`<name>+<hexid>`), else the first.
pub(crate) fn producer_keyid(record: &Record) -> Option<&str> {
    record.source_signature().or(record.signatures.first()).map(|s| s.keyid.as_str())
}

/// `code` of a reason string `code` or `code:detail`.
pub fn reason_code(reason: &str) -> &str {
    reason.split_once(':').map_or(reason, |(code, _)| code)
}

//! Where the runner's events go. The runner builds each event's `type`, `subject` and `data`;
//! a sink signs and records them (a local ledger, a server, or memory in tests).
//!
//! `emit` may buffer; `submit` hands what is buffered on to be recorded without waiting (so
//! a sampling loop is never held up by commits); `flush` returns once everything emitted so
//! far is recorded (for a ledger: committed and covered by a signed checkpoint), or with the
//! first error.

use std::path::PathBuf;

use serde_json::Value;

/// A sink could not record an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        SinkError(message.into())
    }
}

/// Records events.
pub trait EventSink {
    /// Records (or queues) one event of type `ty` about `subject` (e.g. `run/r-1`).
    fn emit(&mut self, ty: &str, subject: &str, data: Value) -> Result<(), SinkError>;

    /// Starts recording what is buffered without waiting for it; reports an earlier
    /// failure if there was one. By default the same as [`EventSink::flush`].
    fn submit(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    /// Waits until every event emitted so far is recorded.
    fn flush(&mut self) -> Result<(), SinkError>;

    /// Keeps a copy of each evidence file in `paths` where the events go (their evidence
    /// store), before an `evidence.captured` that cites them is emitted, so that a recorded
    /// digest always has its blob. Returns, in the order of `paths`, the blake3 (hex) and size
    /// of the bytes kept, or why a file was not kept; `None` for a sink that keeps no evidence
    /// (the default). A sink may keep several files at once.
    fn keep_evidence(&mut self, paths: &[PathBuf]) -> Vec<Result<Option<(String, u64)>, SinkError>> {
        paths.iter().map(|_| Ok(None)).collect()
    }

    /// Whether [`EventSink::keep_evidence`] keeps files (a campaign then spools its command
    /// cells' output to keep it). False by default.
    fn keeps_evidence(&self) -> bool {
        false
    }
}

impl<S: EventSink + ?Sized> EventSink for &mut S {
    fn emit(&mut self, ty: &str, subject: &str, data: Value) -> Result<(), SinkError> {
        (**self).emit(ty, subject, data)
    }

    fn keep_evidence(&mut self, paths: &[PathBuf]) -> Vec<Result<Option<(String, u64)>, SinkError>> {
        (**self).keep_evidence(paths)
    }

    fn keeps_evidence(&self) -> bool {
        (**self).keeps_evidence()
    }

    fn submit(&mut self) -> Result<(), SinkError> {
        (**self).submit()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn emit(&mut self, ty: &str, subject: &str, data: Value) -> Result<(), SinkError> {
        (**self).emit(ty, subject, data)
    }

    fn keep_evidence(&mut self, paths: &[PathBuf]) -> Vec<Result<Option<(String, u64)>, SinkError>> {
        (**self).keep_evidence(paths)
    }

    fn keeps_evidence(&self) -> bool {
        (**self).keeps_evidence()
    }

    fn submit(&mut self) -> Result<(), SinkError> {
        (**self).submit()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
}

/// One event as a sink received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    /// The event type.
    pub ty: String,
    /// The CloudEvents subject.
    pub subject: String,
    /// The event's `data`.
    pub data: Value,
}

/// Keeps events in memory (tests, dry runs).
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    /// Everything emitted, in order.
    pub events: Vec<Emitted>,
    /// Number of `flush` calls.
    pub flushes: u64,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// The events of type `ty`, in order.
    pub fn of_type(&self, ty: &str) -> Vec<&Emitted> {
        self.events.iter().filter(|e| e.ty == ty).collect()
    }
}

impl EventSink for MemorySink {
    fn emit(&mut self, ty: &str, subject: &str, data: Value) -> Result<(), SinkError> {
        self.events.push(Emitted { ty: ty.to_owned(), subject: subject.to_owned(), data });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.flushes += 1;
        Ok(())
    }
}

/// Whether `text` is an identifier as the event schemas define it (run, worker, kernel and
/// metric names): 1–128 characters, an ASCII letter or digit first, then letters, digits and
/// `._:/-`.
pub fn is_identifier(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_schema_pattern() {
        for ok in ["r-1", "a", "val/loss", "smoke-20260908T010000Z", "x.y_z:w"] {
            assert!(is_identifier(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in ["", "-r", "/a", "a b", "é", long.as_str(), "a\n"] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn memory_sink_keeps_order() {
        let mut sink = MemorySink::new();
        let by_ref: &mut dyn EventSink = &mut sink;
        by_ref.emit("a", "run/x", serde_json::json!({})).expect("emit");
        by_ref.emit("b", "run/x", serde_json::json!({"k": 1})).expect("emit");
        by_ref.flush().expect("flush");
        assert_eq!(sink.events.len(), 2);
        assert_eq!(sink.of_type("b")[0].data["k"], 1);
        assert_eq!(sink.flushes, 1);
    }
}

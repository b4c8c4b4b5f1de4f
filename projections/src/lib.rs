//! Assay's projections: pure state machines over records.
//!
//! Every projection folds records in seq order with `apply(&Record)`, is deterministic, and
//! has a `digest()`: blake3 of its canonical serialization. Projections never do I/O, never
//! read a clock and never write events; the sequencer consults them to decide gates.

pub mod digest;
pub mod keys;

pub use keys::KeyRegistry;

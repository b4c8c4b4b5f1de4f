//! The `events` integration tests: one binary, one module per file.

mod architecture;
mod cloudevent;
mod dsse;
mod notes;
mod proof_plan;
mod record;
mod repo_only;
mod rfc6962_vectors;

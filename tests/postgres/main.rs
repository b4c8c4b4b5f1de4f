//! The `postgres` integration tests: one binary, one module per file.

#[path = "../support/mod.rs"]
mod support;

mod blackhole;
mod blobs;
mod copies;
mod servers;

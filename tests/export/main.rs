//! The `export` integration tests: one binary, one module per file.

#[path = "../support/mod.rs"]
mod support;

mod bundle;
mod evidence;
mod numbers;
mod parquet;
mod python;
mod server;
mod tamper;
mod witness_policy;

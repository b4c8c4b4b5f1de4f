//! The `projections` integration tests: one binary, one module per file.

mod audit;
mod audit_groups;
mod corpus;
mod determinism;
mod gates;
mod gpus;
mod kernels;
mod queue;

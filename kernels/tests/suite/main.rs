//! The `kernels` integration tests: one binary, one module per file.

mod cpu_kernels;
mod cuda_backend;
mod cuda_libs;
mod doctor;
mod taxonomy;
mod xid_fixtures;

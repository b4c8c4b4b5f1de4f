//! Assay's kernel runner, library side: CPU reference kernels and the FP4 formats, the
//! CUDA backend (loaded at run time), NVML telemetry, and Xid parsing.

pub mod backend;
pub mod cpu;
pub mod cuda;
pub mod digest;
mod error;
pub mod nvml;
pub mod xid;

pub use backend::{Backend, BackendRequest};
pub use error::KernelError;

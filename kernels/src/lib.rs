//! Assay's kernel runner, library side: CPU reference kernels and the FP4 formats, the
//! CUDA backend (loaded at run time), NVML telemetry, Xid parsing, campaigns, process
//! supervision, and the sink trait every event leaves through.

pub mod backend;
pub mod campaign;
pub mod cpu;
pub mod cuda;
pub mod digest;
pub mod doctor;
mod error;
pub mod follow;
pub mod nvml;
pub mod preflight;
pub mod sink;
pub mod supervise;
pub mod xid;

pub use backend::{Backend, BackendRequest};
pub use error::KernelError;
pub use sink::{EventSink, SinkError};

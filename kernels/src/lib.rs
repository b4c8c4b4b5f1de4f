//! Assay's kernel runner, library side: CPU reference kernels and the FP4 formats, the
//! CUDA backend (loaded at run time), NVML telemetry, and Xid parsing.

pub mod xid;

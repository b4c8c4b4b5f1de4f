//! The CUDA backend: NVRTC-compiled kernels launched through the driver API (cudarc, with
//! the libraries loaded at run time, so this builds and runs on machines without CUDA).
//!
//! Call [`probe_cuda`] first; it checks for the libraries before any other cudarc call and
//! reports [`CudaProbe::Unavailable`] with a reason instead of failing.

mod dims;
mod error;
mod fault;
pub mod libs;
pub mod nvrtc;
mod own;
mod probe;
mod runner;
pub mod sources;

pub use dims::{ELEMENTWISE_BLOCK, FP4_BLOCK_EDGE, LaunchDims, launch_dims};
pub use error::CudaError;
pub use fault::{CudaFault, STICKY_CODES, code_of, is_sticky, is_sticky_name};
pub use own::{CudaProgram, gpu_architecture, nvrtc_options};
pub use probe::{
    CudaDevice, CudaProbe, driver_library_present, nvrtc_library_present, probe_cuda, probe_driver,
    process_nvrtc,
};
pub use runner::{CudaLaunch, CudaRunner};

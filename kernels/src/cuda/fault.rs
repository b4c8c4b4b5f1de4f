//! CUDA driver errors as the ledger records them.

use serde::{Deserialize, Serialize};

/// CUresult codes after which the context is unusable: ILLEGAL_ADDRESS (700),
/// ILLEGAL_INSTRUCTION (715), MISALIGNED_ADDRESS (716), LAUNCH_FAILED (719).
pub const STICKY_CODES: [u32; 4] = [700, 715, 716, 719];

/// Whether a CUresult code poisons the context.
pub fn is_sticky(code: u32) -> bool {
    STICKY_CODES.contains(&code)
}

/// A CUDA driver error: its CUresult number, its name (e.g. `CUDA_ERROR_ILLEGAL_ADDRESS`)
/// and whether it is sticky.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CudaFault {
    /// The CUresult number.
    pub code: u32,
    /// The CUresult name.
    pub name: String,
    /// Whether the context is unusable afterwards.
    pub sticky: bool,
}

impl CudaFault {
    /// From the driver's error. Reads the name from the enum itself, never from the driver
    /// library (which may be absent, in which case asking it would panic).
    pub fn from_driver(error: &cudarc::driver::DriverError) -> Self {
        let code = error.0 as u32;
        CudaFault { code, name: format!("{:?}", error.0), sticky: is_sticky(code) }
    }
}

impl std::fmt::Display for CudaFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.code)?;
        if self.sticky {
            f.write_str(", sticky")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cudarc::driver::DriverError;
    use cudarc::driver::sys::CUresult;

    #[test]
    fn names_and_stickiness_without_a_driver() {
        let fault = CudaFault::from_driver(&DriverError(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS));
        assert_eq!(fault.name, "CUDA_ERROR_ILLEGAL_ADDRESS");
        assert_eq!(fault.code, 700);
        assert!(fault.sticky);
        for (result, code) in [
            (CUresult::CUDA_ERROR_ILLEGAL_INSTRUCTION, 715),
            (CUresult::CUDA_ERROR_MISALIGNED_ADDRESS, 716),
            (CUresult::CUDA_ERROR_LAUNCH_FAILED, 719),
        ] {
            let fault = CudaFault::from_driver(&DriverError(result));
            assert_eq!(fault.code, code);
            assert!(fault.sticky, "{}", fault.name);
        }
        let oom = CudaFault::from_driver(&DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY));
        assert_eq!(oom.name, "CUDA_ERROR_OUT_OF_MEMORY");
        assert!(!oom.sticky);
        assert_eq!(oom.to_string(), "CUDA_ERROR_OUT_OF_MEMORY (2)");
    }
}

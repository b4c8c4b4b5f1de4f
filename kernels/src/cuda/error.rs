//! Errors of the CUDA backend.

use super::fault::CudaFault;
use crate::error::KernelError;

/// Why a CUDA launch did not produce an output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// No usable driver, NVRTC or device.
    #[error("CUDA unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// NVRTC rejected a source.
    #[error("NVRTC failed on {file}: {message}")]
    Compile {
        /// The `.cu` file.
        file: String,
        /// NVRTC's result and log.
        message: String,
    },
    /// NVRTC does not know the device's architecture (an NVRTC older than the GPU).
    #[error("{message}")]
    ArchUnsupported {
        /// Both versions and the fix.
        message: String,
    },
    /// The driver returned an error (a kernel fault surfaces at the next synchronizing call).
    #[error("CUDA driver error: {0}")]
    Driver(CudaFault),
    /// The kernel has no CUDA source (CPU only).
    #[error("{kernel} has no CUDA kernel")]
    Unsupported {
        /// The kernel's name.
        kernel: &'static str,
    },
    /// The variant or inputs were refused.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// The CUDA library panicked (e.g. a symbol missing from an old driver).
    #[error("CUDA library panicked during {during}: {message}")]
    Panicked {
        /// The step that panicked.
        during: &'static str,
        /// The panic message.
        message: String,
    },
}

impl CudaError {
    /// The driver fault, if this is one.
    pub fn fault(&self) -> Option<&CudaFault> {
        match self {
            CudaError::Driver(fault) => Some(fault),
            _ => None,
        }
    }

    /// Whether the context can no longer be used.
    pub fn is_sticky(&self) -> bool {
        self.fault().is_some_and(|fault| fault.sticky)
    }
}

impl From<cudarc::driver::DriverError> for CudaError {
    fn from(error: cudarc::driver::DriverError) -> Self {
        CudaError::Driver(CudaFault::from_driver(&error))
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

//! Which backend runs a kernel.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cuda::{CudaError, CudaProbe};

/// A backend that runs kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Backend {
    /// The Rust reference implementations; always available.
    Cpu,
    /// CUDA through NVRTC and the driver API.
    Cuda,
}

impl Backend {
    /// The lowercase name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user asked for (`--backend auto|cpu|cuda`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendRequest {
    /// CUDA when the probe says it is available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA, or an error.
    Cuda,
}

/// An unknown backend name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?} (expected auto, cpu or cuda)")]
pub struct UnknownBackend(pub String);

impl FromStr for BackendRequest {
    type Err = UnknownBackend;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(BackendRequest::Auto),
            "cpu" => Ok(BackendRequest::Cpu),
            "cuda" => Ok(BackendRequest::Cuda),
            other => Err(UnknownBackend(other.to_owned())),
        }
    }
}

impl BackendRequest {
    /// The backend to use given the probe; `Err` carries the probe's reason when CUDA was
    /// required but is unavailable.
    pub fn resolve(self, probe: &CudaProbe) -> Result<Backend, CudaError> {
        match (self, probe.unavailable_reason()) {
            (BackendRequest::Cpu, _) | (BackendRequest::Auto, Some(_)) => Ok(Backend::Cpu),
            (BackendRequest::Auto, None) | (BackendRequest::Cuda, None) => Ok(Backend::Cuda),
            (BackendRequest::Cuda, Some(reason)) => Err(CudaError::Unavailable { reason: reason.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_against_the_probe() {
        let absent = CudaProbe::Unavailable { reason: "no driver".into() };
        let present = CudaProbe::Available { driver_version: 12080, devices: Vec::new() };
        assert_eq!(BackendRequest::Auto.resolve(&absent), Ok(Backend::Cpu));
        assert_eq!(BackendRequest::Auto.resolve(&present), Ok(Backend::Cuda));
        assert_eq!(BackendRequest::Cpu.resolve(&present), Ok(Backend::Cpu));
        assert_eq!(
            BackendRequest::Cuda.resolve(&absent),
            Err(CudaError::Unavailable { reason: "no driver".into() })
        );
        assert_eq!("cuda".parse::<BackendRequest>(), Ok(BackendRequest::Cuda));
        assert!("gpu".parse::<BackendRequest>().is_err());
        assert_eq!(serde_json::to_string(&Backend::Cuda).ok().as_deref(), Some("\"cuda\""));
    }
}

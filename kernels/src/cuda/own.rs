//! The lab's own CUDA sources (`[[cuda]]` campaign cells) on the same context, compiler and
//! timing as the built-in kernels.
//!
//! The kernel ABI is fixed so that a campaign needs no argument list: an `extern "C"
//! __global__` entry point taking each input buffer, then the output buffer, then the output's
//! length:
//!
//! ```cuda
//! extern "C" __global__ void my_kernel(const float* in0, /* … inK, */ float* out, unsigned int n);
//! ```
//!
//! Every buffer is `f32`. Sizes and constants beyond `n` reach the kernel as `-D` defines.
//!
//! Compiling and launching is `CudaRunner::run_program` in `runner.rs`, beside the built-in kernels'
//! launches (the one file of this backend that launches, and so holds `unsafe`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One entry point of a lab's own `.cu` file with the NVRTC options it is compiled with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CudaProgram {
    /// The file's name as the campaign gave it (for messages and NVRTC's log).
    pub file: String,
    /// The source text, read once when the campaign was loaded (so every cell of a run
    /// compiles the same text even if the file changes meanwhile).
    #[serde(with = "shared_text")]
    pub source: Arc<str>,
    /// The `extern "C" __global__` function to launch.
    pub entry: String,
    /// NVRTC options (the campaign's `nvrtc`, then one `-DNAME=value` per define).
    pub options: Vec<String>,
}

/// Serde for the shared source text (serde's own `Arc` support needs its `rc` feature).
mod shared_text {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(text: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
        Ok(Arc::from(String::deserialize(deserializer)?))
    }
}

/// Whether `options` already choose an architecture.
fn names_arch(options: &[String]) -> bool {
    options.iter().any(|o| o.starts_with("-arch") || o.starts_with("--gpu-architecture"))
}

/// The options NVRTC is given: `options`, plus the device's virtual architecture
/// (`--gpu-architecture=compute_XY` from its compute capability) unless one is named. A
/// virtual architecture, not `sm_XY`: the module is loaded as PTX, which the driver compiles
/// for the device it runs on.
pub fn nvrtc_options(options: &[String], compute_capability: (i32, i32)) -> Vec<String> {
    let mut all = options.to_vec();
    if !names_arch(options) {
        all.push(gpu_architecture(compute_capability));
    }
    all
}

/// The NVRTC option for a device of `compute_capability`: `(12, 1)` (GB10) is
/// `--gpu-architecture=compute_121`.
pub fn gpu_architecture(compute_capability: (i32, i32)) -> String {
    let (major, minor) = compute_capability;
    format!("--gpu-architecture=compute_{major}{minor}")
}

impl CudaProgram {
    /// What identifies a compiled module: blake3 of the file name, source and options.
    pub(super) fn key(&self, options: &[String]) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [self.file.as_str(), &self.source].into_iter().chain(options.iter().map(String::as_str)) {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_architecture_comes_from_the_device_unless_named() {
        let given = vec!["-O3".to_owned()];
        assert_eq!(nvrtc_options(&given, (12, 1)), vec!["-O3", "--gpu-architecture=compute_121"]);
        for named in ["-arch=sm_90a", "--gpu-architecture=compute_80"] {
            let options = vec![named.to_owned(), "-DX=1".to_owned()];
            assert_eq!(nvrtc_options(&options, (9, 0)), options);
        }
    }

    #[test]
    fn each_compute_capability_has_its_architecture() {
        for (capability, arch) in [
            ((7, 5), "compute_75"),
            ((8, 0), "compute_80"),
            ((8, 6), "compute_86"),
            ((8, 9), "compute_89"),
            ((9, 0), "compute_90"),
            ((10, 0), "compute_100"),
            ((10, 3), "compute_103"),
            ((12, 0), "compute_120"),
            ((12, 1), "compute_121"),
        ] {
            assert_eq!(gpu_architecture(capability), format!("--gpu-architecture={arch}"), "{capability:?}");
        }
    }

    #[test]
    fn programs_round_trip_and_key_on_what_nvrtc_sees() {
        let program = CudaProgram {
            file: "k.cu".into(),
            source: Arc::from("extern \"C\" __global__ void k() {}"),
            entry: "k".into(),
            options: vec!["-DTILE=8".into()],
        };
        let wire = serde_json::to_string(&program).expect("json");
        assert_eq!(serde_json::from_str::<CudaProgram>(&wire).expect("back"), program);
        let a = program.key(&["-DTILE=8".into()]);
        assert_ne!(a, program.key(&["-DTILE=16".into()]));
        assert_eq!(a, program.key(&["-DTILE=8".into()]));
    }
}

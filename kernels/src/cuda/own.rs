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

// One of the files ARCHITECTURE.md names as holding `unsafe`: kernel launches through cudarc are
// `unsafe` by nature; every block says why it is sound.
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaModule, CudaSlice, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use serde::{Deserialize, Serialize};

use super::dims::LaunchDims;
use super::error::CudaError;
use super::runner::{CudaLaunch, CudaRunner, cfg, compile_message, guarded};

/// Programs one context keeps compiled; the cache is emptied when it is full.
const PROGRAMS_MAX: usize = 64;

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
        let (major, minor) = compute_capability;
        all.push(format!("--gpu-architecture=compute_{major}{minor}"));
    }
    all
}

impl CudaProgram {
    /// What identifies a compiled module: blake3 of the file name, source and options.
    fn key(&self, options: &[String]) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [self.file.as_str(), &self.source].into_iter().chain(options.iter().map(String::as_str)) {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    }
}

impl CudaRunner {
    fn program_module(&mut self, program: &CudaProgram) -> Result<Arc<CudaModule>, CudaError> {
        let capability = self.ctx.compute_capability()?;
        let options = nvrtc_options(&program.options, capability);
        let key = program.key(&options);
        if let Some(module) = self.programs.get(&key) {
            return Ok(module.clone());
        }
        let compile = CompileOptions { name: Some(program.file.clone()), options, ..Default::default() };
        let ptx = compile_ptx_with_opts(&*program.source, compile).map_err(|error| CudaError::Compile {
            file: program.file.clone(),
            message: compile_message(&error),
        })?;
        let module = self.ctx.load_module(ptx)?;
        if self.programs.len() >= PROGRAMS_MAX {
            self.programs.clear();
        }
        self.programs.insert(key, module.clone());
        Ok(module)
    }

    /// Compiles (once per source and options), launches and times `program` on `inputs`
    /// with the ABI of the module docs, and copies `output_len` values back.
    pub fn run_program(
        &mut self,
        program: &CudaProgram,
        dims: LaunchDims,
        inputs: &[Vec<f32>],
        output_len: u32,
    ) -> Result<CudaLaunch, CudaError> {
        if let Some(fault) = &self.poisoned {
            return Err(CudaError::Driver(fault.clone()));
        }
        let result = guarded("kernel launch", || self.launch_program(program, dims, inputs, output_len));
        if let Err(CudaError::Driver(fault)) = &result
            && fault.sticky
        {
            self.poisoned = Some(fault.clone());
        }
        result
    }

    fn launch_program(
        &mut self,
        program: &CudaProgram,
        dims: LaunchDims,
        inputs: &[Vec<f32>],
        output_len: u32,
    ) -> Result<CudaLaunch, CudaError> {
        let module = self.program_module(program)?;
        let function = module.load_function(&program.entry)?;
        let stream = self.stream.clone();
        let start = self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let end = self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let buffers: Vec<CudaSlice<f32>> =
            inputs.iter().map(|input| stream.clone_htod(input)).collect::<Result<_, _>>()?;
        let mut out = stream.alloc_zeros::<f32>(output_len as usize)?;
        let mut launch = stream.launch_builder(&function);
        for buffer in &buffers {
            launch.arg(buffer);
        }
        launch.arg(&mut out).arg(&output_len);
        start.record(&stream)?;
        // SAFETY: the arguments follow the documented ABI (the campaign's inputs in order, the
        // output, its length); the kernel is the lab's own and may still read or write out of
        // bounds, which surfaces as a driver fault at the synchronize below, in a child process.
        unsafe { launch.launch(cfg(dims)) }?;
        end.record(&stream)?;
        stream.synchronize()?;
        let output = stream.clone_dtoh(&out)?;
        let elapsed_ms = start.elapsed_ms(&end)?;
        let duration_us = (f64::from(elapsed_ms) * 1000.0).round().max(0.0) as u64;
        Ok(CudaLaunch { output, duration_us, dims, device: self.device().to_owned() })
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

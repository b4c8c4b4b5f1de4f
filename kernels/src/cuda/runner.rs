//! Running kernels on a CUDA device, the built-in ones and the lab's own programs (`own.rs`):
//! NVRTC compilation, launch, event timing, copy back.

// One of the files ARCHITECTURE.md names as holding `unsafe`: kernel launches through cudarc are
// `unsafe` by nature; every block says why it is sound.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaContext, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;
use serde::{Deserialize, Serialize};

use super::dims::{LaunchDims, launch_dims};
use super::error::{CudaError, panic_message};
use super::fault::CudaFault;
use super::nvrtc::NvrtcError;
use super::own::{CudaProgram, nvrtc_options};
use super::probe::missing_library;
use super::probe::process_nvrtc;
use super::sources::{CudaSource, source_for};
use crate::cpu::{Inputs, KernelSpec, sum_partials};

/// The lab's own programs one context keeps compiled; the cache is emptied when it is full.
const PROGRAMS_MAX: usize = 64;

/// One CUDA launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CudaLaunch {
    /// The kernel's output, copied back.
    pub output: Vec<f32>,
    /// Kernel time between two CUDA events (created with `CU_EVENT_DEFAULT`), microseconds.
    pub duration_us: u64,
    /// The launch configuration.
    pub dims: LaunchDims,
    /// The device's name.
    pub device: String,
}

/// A CUDA context on one device, with the kernels compiled so far.
///
/// After a sticky fault (see [`CudaFault::sticky`]) the context is unusable and every later
/// [`run`](Self::run) returns that fault again; run cells that may fault in a child process.
pub struct CudaRunner {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    device: String,
    uuid: String,
    modules: HashMap<&'static str, Arc<CudaModule>>,
    /// The lab's own programs compiled so far, by the digest of what NVRTC saw.
    programs: HashMap<String, Arc<CudaModule>>,
    poisoned: Option<CudaFault>,
}

impl std::fmt::Debug for CudaRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaRunner")
            .field("device", &self.device)
            .field("modules", &self.modules.keys().collect::<Vec<_>>())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn guarded<T>(during: &'static str, body: impl FnOnce() -> Result<T, CudaError>) -> Result<T, CudaError> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(CudaError::Panicked { during, message: panic_message(payload.as_ref()) })
    })
}

/// Compiles `source` with this process's NVRTC for the device's architecture, checking
/// first that NVRTC knows it (an old NVRTC on a new GPU is a recorded fault, not a crash).
fn compile(file: &str, source: &str, options: &[String], capability: (i32, i32)) -> Result<Ptx, CudaError> {
    let nvrtc = process_nvrtc().map_err(|error| CudaError::Unavailable { reason: error.to_string() })?;
    let all = nvrtc_options(options, capability);
    if all.len() > options.len() {
        nvrtc.check_arch(capability).map_err(|error| nvrtc_error(file, error))?;
    }
    let ptx = nvrtc.compile_ptx(source, file, &all).map_err(|error| nvrtc_error(file, error))?;
    Ok(Ptx::from_src(ptx))
}

fn nvrtc_error(file: &str, error: NvrtcError) -> CudaError {
    match error {
        NvrtcError::ArchUnsupported { .. } => CudaError::ArchUnsupported { message: error.to_string() },
        NvrtcError::NotLoaded(reason) => CudaError::Unavailable { reason },
        other => CudaError::Compile { file: file.to_owned(), message: other.to_string() },
    }
}

fn cfg(dims: LaunchDims) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (dims.grid[0], dims.grid[1], dims.grid[2]),
        block_dim: (dims.block[0], dims.block[1], dims.block[2]),
        shared_mem_bytes: dims.shared_mem_bytes,
    }
}

/// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` from the driver's 16 UUID bytes.
pub(crate) fn format_uuid(bytes: &[std::ffi::c_char; 16]) -> String {
    // `c_char` is i8 on x86-64 and u8 on aarch64: the byte itself, whichever it is, with no
    // cast (one that is needed on one target is an unnecessary one on the other).
    let hex: Vec<String> =
        bytes.iter().map(|&b| format!("{:02x}", u8::from_ne_bytes(b.to_ne_bytes()))).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

impl CudaRunner {
    /// Opens a context on device `ordinal`. Checks for the libraries first.
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        if let Some(reason) = missing_library() {
            return Err(CudaError::Unavailable { reason });
        }
        guarded("context creation", || {
            let ctx = CudaContext::new(ordinal)?;
            let device = ctx.name()?;
            // The UUID identifies the GPU in launch events; the name is the fallback.
            let uuid = ctx.uuid().map(|uuid| format_uuid(&uuid.bytes)).unwrap_or_else(|_| device.clone());
            let stream = ctx.default_stream();
            Ok(CudaRunner {
                ctx,
                stream,
                device,
                uuid,
                modules: HashMap::new(),
                programs: HashMap::new(),
                poisoned: None,
            })
        })
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The device's UUID as NVML prints it (`GPU-…`), or its name if the driver did not say.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The sticky fault that ended this context, if any.
    pub fn poisoned(&self) -> Option<&CudaFault> {
        self.poisoned.as_ref()
    }

    fn module(&mut self, source: CudaSource) -> Result<Arc<CudaModule>, CudaError> {
        if let Some(module) = self.modules.get(source.file) {
            return Ok(module.clone());
        }
        let capability = self.ctx.compute_capability()?;
        let ptx = compile(source.file, source.source, &[], capability)?;
        let module = self.ctx.load_module(ptx)?;
        self.modules.insert(source.file, module.clone());
        Ok(module)
    }

    /// Compiles (once), launches and times `spec` on `inputs`, and copies the output back.
    pub fn run(&mut self, spec: &KernelSpec, inputs: &Inputs) -> Result<CudaLaunch, CudaError> {
        self.unless_poisoned(|runner| {
            spec.check_inputs(inputs)?;
            let (Some((source, entry)), Some(dims)) = (source_for(spec), launch_dims(spec)) else {
                return Err(CudaError::Unsupported { kernel: spec.name() });
            };
            guarded("kernel launch", || runner.launch(spec, inputs, source, entry, dims))
        })
    }

    /// Runs `launch` unless an earlier sticky fault poisoned the context (then that fault is
    /// the answer), and remembers a sticky fault it returns: every later launch gets it.
    fn unless_poisoned(
        &mut self,
        launch: impl FnOnce(&mut Self) -> Result<CudaLaunch, CudaError>,
    ) -> Result<CudaLaunch, CudaError> {
        if let Some(fault) = &self.poisoned {
            return Err(CudaError::Driver(fault.clone()));
        }
        let result = launch(self);
        if let Err(CudaError::Driver(fault)) = &result
            && fault.sticky
        {
            self.poisoned = Some(fault.clone());
        }
        result
    }

    fn launch(
        &mut self,
        spec: &KernelSpec,
        inputs: &Inputs,
        source: CudaSource,
        entry: &'static str,
        dims: LaunchDims,
    ) -> Result<CudaLaunch, CudaError> {
        let module = self.module(source)?;
        let function = module.load_function(entry)?;
        let stream = self.stream.clone();
        let start = self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let end = self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let config = cfg(dims);
        let output = match (*spec, inputs) {
            (KernelSpec::Saxpy { n, alpha }, Inputs::Saxpy { x, y }) => {
                let x = stream.clone_htod(x)?;
                let y = stream.clone_htod(y)?;
                let mut out = stream.alloc_zeros::<f32>(n as usize)?;
                let mut launch = stream.launch_builder(&function);
                launch.arg(&x).arg(&y).arg(&mut out).arg(&alpha).arg(&n);
                start.record(&stream)?;
                // SAFETY: the arguments match saxpy.cu's signature; the grid covers n.
                unsafe { launch.launch(config) }?;
                end.record(&stream)?;
                stream.synchronize()?;
                stream.clone_dtoh(&out)?
            }
            (KernelSpec::ReduceSum { n, .. }, Inputs::ReduceSum { x }) => {
                let x = stream.clone_htod(x)?;
                let mut partials = stream.alloc_zeros::<f64>(dims.grid[0] as usize)?;
                let mut launch = stream.launch_builder(&function);
                launch.arg(&x).arg(&mut partials).arg(&n);
                start.record(&stream)?;
                // SAFETY: the arguments match reduce_sum.cu; one partial per block.
                unsafe { launch.launch(config) }?;
                end.record(&stream)?;
                stream.synchronize()?;
                vec![sum_partials(&stream.clone_dtoh(&partials)?)]
            }
            (KernelSpec::MatmulTiled { m, n, k, tile }, Inputs::Matmul { a, b }) => {
                let a = stream.clone_htod(a)?;
                let b = stream.clone_htod(b)?;
                let mut c = stream.alloc_zeros::<f32>(m as usize * n as usize)?;
                let mut launch = stream.launch_builder(&function);
                launch.arg(&a).arg(&b).arg(&mut c).arg(&m).arg(&n).arg(&k).arg(&tile);
                start.record(&stream)?;
                // SAFETY: the arguments match matmul_tiled.cu; shared memory holds two tiles.
                unsafe { launch.launch(config) }?;
                end.record(&stream)?;
                stream.synchronize()?;
                stream.clone_dtoh(&c)?
            }
            (KernelSpec::SoftmaxRows { rows, cols }, Inputs::SoftmaxRows { x }) => {
                let x = stream.clone_htod(x)?;
                let mut y = stream.alloc_zeros::<f32>(rows as usize * cols as usize)?;
                let mut launch = stream.launch_builder(&function);
                launch.arg(&x).arg(&mut y).arg(&rows).arg(&cols);
                start.record(&stream)?;
                // SAFETY: the arguments match softmax_rows.cu; one block per row.
                unsafe { launch.launch(config) }?;
                end.record(&stream)?;
                stream.synchronize()?;
                stream.clone_dtoh(&y)?
            }
            (KernelSpec::Fp4DequantMatmul { m, n, k, .. }, Inputs::Fp4Matmul { a, w }) => {
                let a = stream.clone_htod(a)?;
                let codes = stream.clone_htod(&w.codes)?;
                let scales = stream.clone_htod(&w.scales)?;
                let mut c = stream.alloc_zeros::<f32>(m as usize * n as usize)?;
                let tensor_scale = w.tensor_scale;
                let mut launch = stream.launch_builder(&function);
                launch.arg(&a).arg(&codes).arg(&scales).arg(&mut c).arg(&m).arg(&n).arg(&k);
                if entry.ends_with("nvfp4") {
                    launch.arg(&tensor_scale);
                }
                start.record(&stream)?;
                // SAFETY: the arguments match fp4_dequant_matmul.cu; `check_inputs` verified
                // the code and scale buffer sizes against the shape.
                unsafe { launch.launch(config) }?;
                end.record(&stream)?;
                stream.synchronize()?;
                stream.clone_dtoh(&c)?
            }
            _ => {
                return Err(CudaError::Unsupported { kernel: spec.name() });
            }
        };
        let elapsed_ms = start.elapsed_ms(&end)?;
        let duration_us = (f64::from(elapsed_ms) * 1000.0).round().max(0.0) as u64;
        Ok(CudaLaunch { output, duration_us, dims, device: self.device.clone() })
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
        let ptx = compile(&program.file, &program.source, &program.options, capability)?;
        let module = self.ctx.load_module(ptx)?;
        if self.programs.len() >= PROGRAMS_MAX {
            self.programs.clear();
        }
        self.programs.insert(key, module.clone());
        Ok(module)
    }

    /// Compiles (once per source and options), launches and times `program` on `inputs`
    /// with the ABI [`CudaProgram`] documents, and copies `output_len` values back. Beside
    /// the built-in launches so that `unsafe` stays in this one file of the backend.
    pub fn run_program(
        &mut self,
        program: &CudaProgram,
        dims: LaunchDims,
        inputs: &[Vec<f32>],
        output_len: u32,
    ) -> Result<CudaLaunch, CudaError> {
        self.unless_poisoned(|runner| {
            guarded("kernel launch", || runner.launch_program(program, dims, inputs, output_len))
        })
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
    #[test]
    fn uuids_print_as_nvml_does() {
        let bytes: [std::ffi::c_char; 16] =
            std::array::from_fn(|i| std::ffi::c_char::from_ne_bytes([i as u8 * 17]));
        assert_eq!(super::format_uuid(&bytes), "GPU-00112233-4455-6677-8899-aabbccddeeff");
    }
}

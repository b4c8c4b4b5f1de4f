//! Is CUDA usable here? Checks for the driver and NVRTC libraries before any other cudarc
//! call (cudarc panics when asked to use a library that is not there).

// One of the files ARCHITECTURE.md names as holding `unsafe`: the CUDA driver's C API through
// cudarc; every block says why it is sound.
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use cudarc::driver::{result, sys};
use serde::{Deserialize, Serialize};

use super::error::panic_message;
use super::fault::CudaFault;
use super::libs::{CudaLibrary, SearchEnv, search};
use super::nvrtc::{self, Nvrtc, NvrtcError};

/// One CUDA device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CudaDevice {
    /// The CUDA ordinal.
    pub ordinal: u32,
    /// The device name.
    pub name: String,
    /// (major, minor).
    pub compute_capability: (i32, i32),
    /// Device memory.
    pub total_mem_bytes: u64,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CudaProbe {
    /// CUDA can run kernels.
    Available {
        /// `cuDriverGetVersion`, e.g. 12080.
        driver_version: i32,
        /// The devices.
        devices: Vec<CudaDevice>,
    },
    /// CUDA cannot run kernels here.
    Unavailable {
        /// Why, for `gpu.preflight`.
        reason: String,
    },
}

impl CudaProbe {
    /// Whether kernels can run.
    pub fn is_available(&self) -> bool {
        matches!(self, CudaProbe::Available { .. })
    }

    /// The reason CUDA is unavailable, if it is.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match self {
            CudaProbe::Unavailable { reason } => Some(reason),
            _ => None,
        }
    }
}

/// Why CUDA is unusable when the driver library cannot be opened.
const DRIVER_MISSING: &str = "the CUDA driver library (libcuda.so.1) was not found";

/// Most devices the probe lists.
const MAX_DEVICES: i32 = 64;

/// Opens the driver at the path the search found and keeps it open, so that cudarc's later
/// open of the bare soname `libcuda.so.1` gets this one (the dynamic linker matches an
/// already-loaded library by its soname). Without a found path, cudarc's own search decides.
fn preload_driver() {
    static DRIVER: OnceLock<Option<libloading::Library>> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let found = search(CudaLibrary::Driver, &SearchEnv::from_process());
        let path = found.found()?.path.clone();
        // SAFETY: opening the driver library runs only its own initialisers.
        unsafe { libloading::Library::new(path) }.ok()
    });
}

/// Whether the driver library can be loaded. Must be checked before any other cudarc call.
pub fn driver_library_present() -> bool {
    preload_driver();
    // SAFETY: only tries to open the library under its usual names and closes it again.
    unsafe { sys::is_culib_present() }
}

/// This process's NVRTC, opened once: found as `libs.rs` searches, chosen to suit the driver's
/// CUDA version where a driver is present.
pub fn process_nvrtc() -> Result<&'static Nvrtc, NvrtcError> {
    static NVRTC: OnceLock<Result<Nvrtc, NvrtcError>> = OnceLock::new();
    NVRTC
        .get_or_init(|| nvrtc::open_found(&SearchEnv::from_process(), driver_cuda_major()))
        .as_ref()
        .map_err(Clone::clone)
}

/// The CUDA major version the driver supports, without initialising it; `None` without one.
fn driver_cuda_major() -> Option<u32> {
    if !driver_library_present() {
        return None;
    }
    let mut version = 0i32;
    // SAFETY: the library is present; cuDriverGetVersion may be called before cuInit and
    // writes one i32 through a pointer to a live one.
    let called = catch_unwind(AssertUnwindSafe(|| unsafe { sys::cuDriverGetVersion(&mut version) }));
    match called {
        Ok(sys::CUresult::CUDA_SUCCESS) if version > 0 => u32::try_from(version / 1000).ok(),
        _ => None,
    }
}

/// Whether the NVRTC library can be loaded (found as `libs.rs` searches, opened by path).
pub fn nvrtc_library_present() -> bool {
    process_nvrtc().is_ok()
}

/// The reason CUDA cannot be used, checking only the libraries (no driver calls).
pub(crate) fn missing_library() -> Option<String> {
    if !driver_library_present() {
        return Some(DRIVER_MISSING.to_owned());
    }
    if let Err(error) = process_nvrtc() {
        return Some(format!("the NVRTC library, needed to compile the kernels, was not found ({error})"));
    }
    None
}

/// Probes for CUDA. Never panics: library absence, driver errors and panics inside the
/// library all become [`CudaProbe::Unavailable`].
pub fn probe_cuda() -> CudaProbe {
    if let Some(reason) = missing_library() {
        return CudaProbe::Unavailable { reason };
    }
    probe_driver()
}

/// Asks the driver for its version and devices, whether or not NVRTC is there (the doctor
/// reports both). Never panics.
pub fn probe_driver() -> CudaProbe {
    if !driver_library_present() {
        return CudaProbe::Unavailable { reason: DRIVER_MISSING.to_owned() };
    }
    match catch_unwind(AssertUnwindSafe(probe_devices)) {
        Ok(Ok(probe)) => probe,
        Ok(Err((step, fault))) => CudaProbe::Unavailable { reason: format!("{step} failed: {fault}") },
        Err(payload) => CudaProbe::Unavailable {
            reason: format!("the CUDA library panicked: {}", panic_message(payload.as_ref())),
        },
    }
}

type StepError = (&'static str, CudaFault);

fn step<T>(name: &'static str, value: Result<T, cudarc::driver::DriverError>) -> Result<T, StepError> {
    value.map_err(|error| (name, CudaFault::from_driver(&error)))
}

fn probe_devices() -> Result<CudaProbe, StepError> {
    step("cuInit", result::init())?;
    let mut driver_version = 0i32;
    // SAFETY: the library is loaded and initialised; the pointer is to a live i32.
    step("cuDriverGetVersion", unsafe { sys::cuDriverGetVersion(&mut driver_version).result() })?;
    let count = step("cuDeviceGetCount", result::device::get_count())?;
    if count <= 0 {
        return Ok(CudaProbe::Unavailable {
            reason: format!("the CUDA driver {driver_version} reports no devices"),
        });
    }
    let mut devices = Vec::new();
    for ordinal in 0..count.min(MAX_DEVICES) {
        let device = step("cuDeviceGet", result::device::get(ordinal))?;
        let name = step("cuDeviceGetName", result::device::get_name(device))?;
        // SAFETY: `device` came from cuDeviceGet.
        let total_mem_bytes = step("cuDeviceTotalMem", unsafe { result::device::total_mem(device) })?;
        let attribute = |attribute| {
            // SAFETY: `device` came from cuDeviceGet.
            step("cuDeviceGetAttribute", unsafe { result::device::get_attribute(device, attribute) })
        };
        let major = attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        devices.push(CudaDevice {
            ordinal: ordinal as u32,
            name,
            compute_capability: (major, minor),
            total_mem_bytes: total_mem_bytes as u64,
        });
    }
    Ok(CudaProbe::Available { driver_version, devices })
}

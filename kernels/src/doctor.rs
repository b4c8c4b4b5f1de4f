//! `assay gpu doctor`: what the CUDA path looked for and where, what it found, and for each
//! missing piece the one step that fixes it.

use serde::{Deserialize, Serialize};

use crate::cuda::libs::{CudaLibrary, LibrarySearch, SearchEnv, search, soname_major};
use crate::cuda::nvrtc::{NvrtcError, check_arch};
use crate::cuda::{CudaProbe, gpu_architecture, probe_driver, process_nvrtc};
use crate::nvml::probe_nvml;

/// The kernel log Xids are read from.
const KMSG: &str = "/dev/kmsg";

/// One device as the driver lists it, with whether this NVRTC can compile for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorDevice {
    /// CUDA ordinal.
    pub ordinal: u32,
    /// Product name.
    pub name: String,
    /// `major.minor`, e.g. `12.1`.
    pub compute_capability: String,
    /// The NVRTC option kernels are compiled with.
    pub nvrtc_arch: String,
    /// Whether the NVRTC found lists this architecture (`None` without NVRTC).
    pub nvrtc_supports: Option<bool>,
}

/// A missing or mismatched piece and the one step that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doctor {
    /// Whether CUDA kernels can run here.
    pub can_run_kernels: bool,
    /// The paths looked at, per library, in order.
    pub searched: Vec<LibrarySearch>,
    /// `cuDriverGetVersion`'s CUDA version, e.g. `13.0` (`None` without a driver).
    pub driver_cuda_version: Option<String>,
    /// The driver's own version from NVML, e.g. `580.95.05`.
    pub driver_version: Option<String>,
    /// The NVRTC opened and its version.
    pub nvrtc_path: Option<String>,
    /// NVRTC's `major.minor`.
    pub nvrtc_version: Option<String>,
    /// Whether NVML loaded and initialised.
    pub nvml: bool,
    /// The devices the driver lists.
    pub devices: Vec<DoctorDevice>,
    /// Whether `/dev/kmsg` can be read (Xid capture).
    pub kmsg_readable: bool,
    /// Whether NVML lets this process see other processes' GPU use (`None` without NVML).
    pub other_processes_readable: Option<bool>,
    /// What is missing, each with its fix.
    pub problems: Vec<Problem>,
}

fn problem(problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem { problem: problem.into(), fix: fix.into() }
}

/// `12080` → `12.8`.
pub fn cuda_version_text(version: i32) -> String {
    format!("{}.{}", version / 1000, (version % 1000) / 10)
}

/// What the doctor looks at, gathered from this machine or laid out by a test.
#[derive(Debug, Clone)]
pub struct Findings {
    /// The driver, NVRTC and NVML searches.
    pub searched: Vec<LibrarySearch>,
    /// The driver's version and devices, or why not.
    pub driver: CudaProbe,
    /// The NVRTC loaded: path, `(major, minor)` and the architectures it lists.
    pub nvrtc: Result<NvrtcFacts, NvrtcError>,
    /// NVML: the driver's version and whether other processes' GPU use is readable, or why
    /// NVML is unusable.
    pub nvml: Result<(Option<String>, Option<bool>), String>,
    /// Whether `/dev/kmsg` can be read.
    pub kmsg_readable: bool,
}

/// The NVRTC loaded, as the doctor needs it.
#[derive(Debug, Clone)]
pub struct NvrtcFacts {
    /// The file opened.
    pub path: String,
    /// `(major, minor)`.
    pub version: (i32, i32),
    /// The real architectures it lists (`[75, 80, …]`), or why they could not be read.
    pub archs: Result<Vec<i32>, NvrtcError>,
}

impl Findings {
    /// Looks at this machine. Never panics without a driver.
    pub fn gather() -> Findings {
        let env = SearchEnv::from_process();
        let searched = [CudaLibrary::Driver, CudaLibrary::Nvrtc, CudaLibrary::Nvml]
            .into_iter()
            .map(|library| search(library, &env))
            .collect();
        let nvrtc = process_nvrtc().map(|n| NvrtcFacts {
            path: n.path().display().to_string(),
            version: n.version(),
            archs: n.supported_archs(),
        });
        let nvml = probe_nvml()
            .map(|handle| (handle.driver_version().ok(), handle.processes_readable().ok()))
            .map_err(|failure| failure.to_string());
        Findings {
            searched,
            driver: probe_driver(),
            nvrtc,
            nvml,
            kmsg_readable: std::fs::File::open(KMSG).is_ok(),
        }
    }
}

impl Doctor {
    /// Looks at this machine. Never panics without a driver.
    pub fn gather() -> Doctor {
        Doctor::assess(Findings::gather())
    }

    /// What the findings mean: the problems, each with its fix, and whether kernels can run.
    pub fn assess(found: Findings) -> Doctor {
        let Findings { searched, driver, nvrtc, nvml, kmsg_readable } = found;
        let mut problems = Vec::new();
        let driver_found = searched.iter().any(|s| s.library == CudaLibrary::Driver && s.found().is_some());
        let (driver_version, devices) = match driver {
            CudaProbe::Available { driver_version, devices } => (Some(driver_version), devices),
            CudaProbe::Unavailable { reason } => {
                problems.push(driver_problem(&reason, driver_found));
                (None, Vec::new())
            }
        };
        // PTX from an NVRTC newer than the driver cannot be loaded, so kernels cannot run.
        let mut nvrtc_too_new = false;
        match &nvrtc {
            Ok(facts) => {
                let major = facts.version.0;
                if let Some(driver) = driver_version.filter(|v| v / 1000 < major) {
                    nvrtc_too_new = true;
                    problems.push(problem(
                        format!(
                            "NVRTC {}.{} makes PTX the CUDA {} driver cannot load",
                            facts.version.0,
                            facts.version.1,
                            cuda_version_text(driver)
                        ),
                        format!(
                            "update the driver to one for CUDA {major}, or set ASSAY_NVRTC to an NVRTC {}.x",
                            driver / 1000
                        ),
                    ));
                }
            }
            Err(error) => {
                let nvrtc_search = searched.iter().find(|s| s.library == CudaLibrary::Nvrtc);
                problems.push(nvrtc_problem(error, nvrtc_search));
            }
        }
        let devices: Vec<DoctorDevice> = devices
            .iter()
            .map(|device| {
                let (major, minor) = device.compute_capability;
                let check = nvrtc.as_ref().ok().map(|facts| {
                    let version = format!("{}.{}", facts.version.0, facts.version.1);
                    facts.archs.clone().and_then(|archs| check_arch(&archs, &version, device.compute_capability))
                });
                if let Some(Err(error)) = &check {
                    problems.push(problem(
                        error.to_string(),
                        "install an NVRTC as new as the GPU (pip install nvidia-cuda-nvrtc, or a newer toolkit) and set ASSAY_NVRTC to it",
                    ));
                }
                DoctorDevice {
                    ordinal: device.ordinal,
                    name: device.name.clone(),
                    compute_capability: format!("{major}.{minor}"),
                    nvrtc_arch: gpu_architecture(device.compute_capability),
                    nvrtc_supports: check.map(|result| result.is_ok()),
                }
            })
            .collect();
        if driver_version.is_some() && devices.is_empty() {
            problems.push(problem(
                "the driver lists no devices",
                "check `nvidia-smi`; in a container, pass the GPU in (--gpus all)",
            ));
        }
        let (nvml_ok, nvml_driver, other_processes_readable) = match nvml {
            Ok((driver, readable)) => (true, driver, readable),
            Err(failure) => {
                problems.push(problem(
                    format!("NVML is unusable: {failure}"),
                    "install the NVIDIA driver's NVML (libnvidia-ml.so.1 comes with the driver); telemetry and NVML Xids need it",
                ));
                (false, None, None)
            }
        };
        if other_processes_readable == Some(false) {
            problems.push(problem(
                "NVML does not let this process see other processes' GPU use",
                "run as a user NVML lets list compute processes (root, or the GPU's owning group)",
            ));
        }
        if !kmsg_readable {
            problems.push(problem(
                "/dev/kmsg is not readable, so Xids are captured only through NVML",
                "run with CAP_SYSLOG, or set kernel.dmesg_restrict=0 (sysctl)",
            ));
        }
        let can_run_kernels =
            nvrtc.is_ok() && !nvrtc_too_new && devices.iter().any(|d| d.nvrtc_supports == Some(true));
        Doctor {
            can_run_kernels,
            searched,
            driver_cuda_version: driver_version.map(cuda_version_text),
            driver_version: nvml_driver,
            nvrtc_path: nvrtc.as_ref().ok().map(|facts| facts.path.clone()),
            nvrtc_version: nvrtc
                .as_ref()
                .ok()
                .map(|facts| format!("{}.{}", facts.version.0, facts.version.1)),
            nvml: nvml_ok,
            devices,
            kmsg_readable,
            other_processes_readable,
            problems,
        }
    }
}

fn driver_problem(reason: &str, file_found: bool) -> Problem {
    let fix = if file_found {
        "the driver library is there but did not start: check `nvidia-smi` and that the kernel module is loaded"
    } else {
        "install the NVIDIA driver (it provides libcuda.so.1); in a container, run with the NVIDIA container toolkit (--gpus all)"
    };
    problem(format!("CUDA driver: {reason}"), fix)
}

fn nvrtc_problem(error: &NvrtcError, searched: Option<&LibrarySearch>) -> Problem {
    let candidates = searched.map(|s| s.candidates.as_slice()).unwrap_or_default();
    if let Some(named) = candidates.iter().find(|c| c.origin == crate::cuda::libs::NVRTC_OVERRIDE) {
        return problem(
            format!(
                "ASSAY_NVRTC names {}, which {}",
                named.path.display(),
                if named.exists { "did not load" } else { "does not exist" }
            ),
            "point ASSAY_NVRTC at a libnvrtc.so.12 or libnvrtc.so.13 file, or unset it",
        );
    }
    let found_major = searched.and_then(LibrarySearch::found).and_then(|c| soname_major(&c.path));
    let detail = match found_major {
        Some(major) => format!("NVRTC {major} was found but did not load: {error}"),
        None => format!("NVRTC was not found ({} places looked at): {error}", candidates.len()),
    };
    problem(
        detail,
        "pip install nvidia-cuda-nvrtc (in a Python environment on PATH), install the toolkit's NVRTC (cuda-nvrtc-13-0 or cuda-nvrtc-12-8), or set ASSAY_NVRTC to the file",
    )
}

//! NVML: device inventory, telemetry and critical-Xid events, when the NVIDIA driver is
//! present. Every NVML failure becomes an [`NvmlFailure`] that says which call failed;
//! nothing here panics without a driver.

use std::panic::catch_unwind;

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::event::EventSet;
use serde::{Deserialize, Serialize};

use crate::cuda::libs::{CudaLibrary, SearchEnv, search};
use crate::xid::normalize_pci;

/// Most devices listed or watched.
pub const MAX_DEVICES: u32 = 64;

/// An initialised NVML library.
pub struct NvmlHandle {
    nvml: Nvml,
}

impl std::fmt::Debug for NvmlHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlHandle").finish_non_exhaustive()
    }
}

/// Why NVML could not answer. Clone and comparable, so a probe's finding can be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NvmlFailure {
    /// An NVML call failed: what was asked, and NVML's message.
    #[error("{what}: {detail}")]
    Call {
        /// What was asked (e.g. `device count`).
        what: String,
        /// NVML's error message.
        detail: String,
    },
    /// Loading NVML panicked (the panic's message).
    #[error("NVML initialisation panicked: {0}")]
    InitPanicked(String),
    /// A device refused the registration for Xid events.
    #[error("registering Xid events on device {index}: {detail}")]
    XidRegistration {
        /// NVML index of the device.
        index: u32,
        /// NVML's error message.
        detail: String,
    },
    /// NVML is not used here, for the reason given (e.g. the GPUs are simulated).
    #[error("{0}")]
    Unavailable(String),
}

impl From<&str> for NvmlFailure {
    /// [`NvmlFailure::Unavailable`] with `reason`.
    fn from(reason: &str) -> NvmlFailure {
        NvmlFailure::Unavailable(reason.to_owned())
    }
}

fn reason(what: &str, error: &NvmlError) -> NvmlFailure {
    NvmlFailure::Call { what: what.to_owned(), detail: error.to_string() }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Loads and initialises NVML. Without the driver this is `Err` with the reason (e.g. the
/// library could not be loaded, or the driver is not running).
pub fn probe_nvml() -> Result<NvmlHandle, NvmlFailure> {
    // The path the search found, else NVML's own open of the bare soname.
    let found = search(CudaLibrary::Nvml, &SearchEnv::from_process()).found().map(|c| c.path.clone());
    let init = || match &found {
        Some(path) => Nvml::builder().lib_path(path.as_os_str()).init(),
        None => Nvml::init(),
    };
    match catch_unwind(init) {
        Ok(Ok(nvml)) => Ok(NvmlHandle { nvml }),
        Ok(Err(error)) => Err(reason("NVML initialisation failed", &error)),
        Err(payload) => Err(NvmlFailure::InitPanicked(panic_text(payload.as_ref()))),
    }
}

/// One GPU as NVML lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// NVML index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// NVML's PCI bus id, e.g. `00000000:3B:00.0`.
    pub pci_bus_id: String,
    /// The short form used in Xid lines, e.g. `0000:3b:00`.
    pub pci: String,
    /// Product name.
    pub name: String,
    /// Total device memory.
    pub memory_total_bytes: u64,
    /// Driver version.
    pub driver_version: String,
}

/// Clock speeds, where supported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clocks {
    /// Graphics clock.
    pub graphics_mhz: Option<u32>,
    /// SM clock.
    pub sm_mhz: Option<u32>,
    /// Memory clock.
    pub memory_mhz: Option<u32>,
}

/// One telemetry sample; each value is `None` where the device does not support it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuTelemetry {
    /// `GPU-…` UUID.
    pub uuid: String,
    /// Short PCI address.
    pub pci: String,
    /// GPU die temperature.
    pub temp_c: Option<u32>,
    /// Power draw.
    pub power_mw: Option<u32>,
    /// GPU utilisation over the last sample period.
    pub util_gpu_pct: Option<u32>,
    /// Memory-controller utilisation.
    pub util_mem_pct: Option<u32>,
    /// Device memory in use.
    pub mem_used_bytes: Option<u64>,
    /// Clock speeds.
    pub clocks: Clocks,
    /// Active clock throttle reasons (NVML's names, e.g. `SW_POWER_CAP`).
    pub throttle: Option<Vec<String>>,
}

/// A critical Xid reported by NVML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmlXid {
    /// Short PCI address of the GPU.
    pub pci: String,
    /// The Xid, or `None` when NVML reports it as unknown.
    pub code: Option<u64>,
}

impl NvmlHandle {
    /// The driver version.
    pub fn driver_version(&self) -> Result<String, NvmlFailure> {
        self.nvml.sys_driver_version().map_err(|e| reason("driver version", &e))
    }

    /// The newest CUDA version the driver supports, as `cuDriverGetVersion` gives it (12080).
    pub fn cuda_driver_version(&self) -> Result<i32, NvmlFailure> {
        self.nvml.sys_cuda_driver_version().map_err(|e| reason("CUDA driver version", &e))
    }

    /// Whether this process may list the compute processes on the first device (other users'
    /// GPU use, which the quiet window waits on): `Ok(false)` when NVML refuses for lack of
    /// permission.
    pub fn processes_readable(&self) -> Result<bool, NvmlFailure> {
        let device = self.nvml.device_by_index(0).map_err(|e| reason("device 0", &e))?;
        match device.running_compute_processes() {
            Ok(_) => Ok(true),
            Err(NvmlError::NoPermission) => Ok(false),
            Err(error) => Err(reason("running compute processes", &error)),
        }
    }

    /// Number of devices (at most [`MAX_DEVICES`]).
    pub fn device_count(&self) -> Result<u32, NvmlFailure> {
        self.nvml.device_count().map(|count| count.min(MAX_DEVICES)).map_err(|e| reason("device count", &e))
    }

    /// Every device with its identity, memory and the driver version.
    pub fn devices(&self) -> Result<Vec<GpuDevice>, NvmlFailure> {
        let driver_version = self.driver_version()?;
        let mut devices = Vec::new();
        for index in 0..self.device_count()? {
            let device =
                self.nvml.device_by_index(index).map_err(|e| reason(&format!("device {index}"), &e))?;
            let uuid = device.uuid().map_err(|e| reason("uuid", &e))?;
            let pci_bus_id = device.pci_info().map_err(|e| reason("pci info", &e))?.bus_id;
            let name = device.name().map_err(|e| reason("name", &e))?;
            let memory = device.memory_info().map_err(|e| reason("memory info", &e))?;
            devices.push(GpuDevice {
                index,
                uuid,
                pci: normalize_pci(&pci_bus_id).unwrap_or_else(|| pci_bus_id.to_ascii_lowercase()),
                pci_bus_id,
                name,
                memory_total_bytes: memory.total,
                driver_version: driver_version.clone(),
            });
        }
        Ok(devices)
    }

    /// One telemetry sample of device `index`. Unsupported values are `None`; only a
    /// missing device or identity is an error.
    pub fn telemetry(&self, index: u32) -> Result<GpuTelemetry, NvmlFailure> {
        let device = self.nvml.device_by_index(index).map_err(|e| reason(&format!("device {index}"), &e))?;
        let uuid = device.uuid().map_err(|e| reason("uuid", &e))?;
        let pci_bus_id = device.pci_info().map_err(|e| reason("pci info", &e))?.bus_id;
        let utilization = device.utilization_rates().ok();
        Ok(GpuTelemetry {
            uuid,
            pci: normalize_pci(&pci_bus_id).unwrap_or_else(|| pci_bus_id.to_ascii_lowercase()),
            temp_c: device.temperature(TemperatureSensor::Gpu).ok(),
            power_mw: device.power_usage().ok(),
            util_gpu_pct: utilization.as_ref().map(|u| u.gpu),
            util_mem_pct: utilization.as_ref().map(|u| u.memory),
            mem_used_bytes: device.memory_info().ok().map(|m| m.used),
            clocks: Clocks {
                graphics_mhz: device.clock_info(Clock::Graphics).ok(),
                sm_mhz: device.clock_info(Clock::SM).ok(),
                memory_mhz: device.clock_info(Clock::Memory).ok(),
            },
            throttle: device
                .current_throttle_reasons()
                .ok()
                .map(|reasons| reasons.iter_names().map(|(name, _)| name.to_owned()).collect()),
        })
    }

    /// The highest GPU utilisation, percent, among every device, or of the device at `pci`
    /// (any form [`normalize_pci`] accepts). `None` when no device could be read.
    pub fn utilization_max(&self, pci: Option<&str>) -> Option<f64> {
        let want = pci.and_then(normalize_pci);
        let mut best: Option<f64> = None;
        for index in 0..self.device_count().ok()? {
            let Ok(device) = self.nvml.device_by_index(index) else { continue };
            if let Some(want) = &want {
                let bus_id = device.pci_info().ok().map(|info| info.bus_id);
                if bus_id.as_deref().and_then(normalize_pci).as_ref() != Some(want) {
                    continue;
                }
            }
            if let Ok(rates) = device.utilization_rates() {
                let util = f64::from(rates.gpu);
                best = Some(best.map_or(util, |b| b.max(util)));
            }
        }
        best
    }

    /// Registers for critical-Xid events on every device.
    pub fn xid_events(&self) -> Result<XidEvents<'_>, NvmlFailure> {
        let mut set = self.nvml.create_event_set().map_err(|e| reason("event set", &e))?;
        for index in 0..self.device_count()? {
            let device =
                self.nvml.device_by_index(index).map_err(|e| reason(&format!("device {index}"), &e))?;
            set = device
                .register_events(EventTypes::CRITICAL_XID_ERROR, set)
                .map_err(|e| NvmlFailure::XidRegistration { index, detail: e.error.to_string() })?;
        }
        Ok(XidEvents { set })
    }
}

/// GPU utilisation for supervised runs: the busiest device, or the one at a PCI address.
#[derive(Debug)]
pub struct NvmlUtilization {
    /// The library.
    pub handle: NvmlHandle,
    /// The run's GPU, if it has one.
    pub pci: Option<String>,
}

impl crate::supervise::GpuUtilization for NvmlUtilization {
    fn utilization_pct(&mut self) -> Option<f64> {
        self.handle.utilization_max(self.pci.as_deref())
    }
}

/// A subscription to NVML's critical-Xid events.
pub struct XidEvents<'nvml> {
    set: EventSet<'nvml>,
}

impl std::fmt::Debug for XidEvents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XidEvents").finish_non_exhaustive()
    }
}

impl XidEvents<'_> {
    /// Waits up to `timeout_ms` for the next Xid; `Ok(None)` on timeout.
    pub fn next(&self, timeout_ms: u32) -> Result<Option<NvmlXid>, NvmlFailure> {
        match self.set.wait(timeout_ms) {
            Ok(event) => {
                let Some(xid) = event.event_data else {
                    return Ok(None);
                };
                let bus_id =
                    event.device.pci_info().map_err(|e| reason("pci info of the Xid's device", &e))?.bus_id;
                Ok(Some(NvmlXid {
                    pci: normalize_pci(&bus_id).unwrap_or_else(|| bus_id.to_ascii_lowercase()),
                    code: match xid {
                        XidError::Value(code) => Some(code),
                        XidError::Unknown => None,
                    },
                }))
            }
            Err(NvmlError::Timeout) => Ok(None),
            Err(error) => Err(reason("waiting for Xid events", &error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_the_probe_gives_a_reason() {
        let driver_loaded = std::path::Path::new("/proc/driver/nvidia/version").exists();
        match probe_nvml() {
            Err(reason) => {
                assert!(!reason.to_string().trim().is_empty());
                if !driver_loaded {
                    eprintln!("NVML unavailable, as expected without a driver: {reason}");
                }
            }
            Ok(handle) => {
                assert!(driver_loaded, "NVML initialised without a loaded driver");
                let devices = handle.devices().expect("devices");
                for device in devices {
                    assert!(!device.uuid.is_empty());
                }
            }
        }
    }
}

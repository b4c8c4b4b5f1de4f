//! What this machine offers: CUDA (driver, NVRTC, devices) and NVML, as the `gpu.preflight`
//! and `worker.preflight` events record it.

use serde_json::{Value, json};

use crate::campaign::CellOutcome;
use crate::campaign::{Cell, run_cell_cpu};
use crate::cpu::{InputRange, KernelSpec};
use crate::cuda::{CudaProbe, probe_cuda};
use crate::doctor::{Doctor, cuda_version_text};
use crate::nvml::{GpuDevice, NvmlFailure, probe_nvml};

/// Longest reason recorded (the schema allows 1024 characters).
const REASON_MAX_CHARS: usize = 1000;

/// The probes' findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    /// CUDA: devices, or why it is unusable.
    pub cuda: CudaProbe,
    /// NVML: devices, or why it is unusable.
    pub nvml: Result<Vec<GpuDevice>, NvmlFailure>,
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_owned() } else { text.chars().take(max).collect() }
}

impl Preflight {
    /// Probes CUDA and NVML. Never panics without a driver.
    pub fn gather() -> Preflight {
        let cuda = probe_cuda();
        let nvml = probe_nvml().and_then(|handle| handle.devices());
        Preflight { cuda, nvml }
    }

    /// Whether CUDA can run kernels on at least one identified device.
    pub fn available(&self) -> bool {
        self.cuda.is_available() && !self.devices().is_empty()
    }

    /// Why CUDA kernels cannot run here, if they cannot.
    pub fn unavailable_reason(&self) -> Option<String> {
        let reason = match (&self.cuda, &self.nvml) {
            (CudaProbe::Unavailable { reason }, Ok(_)) => reason.clone(),
            (CudaProbe::Unavailable { reason }, Err(nvml)) => format!("{reason}; {nvml}"),
            (_, _) if self.devices().is_empty() => {
                "CUDA is loaded but no device could be identified (NVML lists none)".to_owned()
            }
            _ => return None,
        };
        Some(clip(&reason, REASON_MAX_CHARS))
    }

    fn cuda_version(&self) -> Option<String> {
        match &self.cuda {
            CudaProbe::Available { driver_version, .. } => Some(cuda_version_text(*driver_version)),
            _ => None,
        }
    }

    /// The devices as `gpu.preflight` lists them (from NVML, which knows UUIDs and PCI ids).
    pub fn devices(&self) -> Vec<Value> {
        let cuda = self.cuda_version();
        let Ok(devices) = &self.nvml else { return Vec::new() };
        devices
            .iter()
            .filter(|d| d.uuid.starts_with("GPU-") || d.uuid.starts_with("MIG-"))
            .map(|d| {
                let mut device = json!({
                    "index": d.index,
                    "uuid": d.uuid,
                    "pci": d.pci,
                    "name": if d.name.is_empty() { "unknown" } else { d.name.as_str() },
                    "memory_bytes": d.memory_total_bytes,
                });
                if !d.driver_version.is_empty() {
                    device["driver"] = Value::from(clip(&d.driver_version, 64));
                }
                if let Some(cuda) = &cuda {
                    device["cuda"] = Value::from(cuda.as_str());
                }
                device
            })
            .collect()
    }

    /// The NVML device with CUDA ordinal `ordinal` (NVML and CUDA agree on order when
    /// `CUDA_DEVICE_ORDER=PCI_BUS_ID`, which the runner's children are given).
    pub fn device(&self, ordinal: u32) -> Option<&GpuDevice> {
        self.nvml.as_ref().ok()?.iter().find(|d| d.index == ordinal)
    }

    /// The UUID of device `ordinal`, when NVML knows it.
    pub fn device_uuid(&self, ordinal: u32) -> Option<String> {
        self.device(ordinal).map(|d| d.uuid.clone())
    }

    /// `gpu.preflight` data; the subject is `worker/<host>`.
    pub fn gpu_preflight(&self, host: &str) -> Value {
        let available = self.available();
        json!({
            "host": host,
            "available": available,
            "devices": self.devices(),
            "unavailable_reason": if available { None } else { self.unavailable_reason() },
        })
    }

    /// `worker.preflight` data; the subject is `worker/<worker>`. Healthy when the CPU
    /// kernels pass their self-test, `/proc` can be read (process supervision), and no GPU
    /// that NVML sees is unusable by CUDA. A machine without GPUs is a healthy CPU worker
    /// offering no GPU lanes.
    pub fn worker_preflight(&self, worker: &str) -> Value {
        let mut checks = Vec::new();
        let cpu = cpu_self_test();
        checks.push(check("cpu_kernels", cpu.is_ok(), cpu.unwrap_or_else(|e| e.to_string())));
        let proc_ok = crate::supervise::read_stat(std::process::id()).is_ok();
        checks.push(check(
            "proc",
            proc_ok,
            if proc_ok {
                "process accounting readable".into()
            } else {
                "/proc/<pid>/stat is not readable".into()
            },
        ));
        let cuda_detail = match &self.cuda {
            CudaProbe::Available { driver_version, devices } => {
                format!("driver API {driver_version}, {} device(s)", devices.len())
            }
            CudaProbe::Unavailable { reason } => reason.clone(),
        };
        // CUDA counts only where NVML sees a GPU: a machine without GPUs is a CPU worker.
        let nvml_devices = self.nvml.as_ref().map(Vec::len).unwrap_or(0);
        checks.push(check_required("cuda", self.cuda.is_available(), cuda_detail, nvml_devices > 0));
        let (nvml_ok, nvml_detail) = match &self.nvml {
            Ok(devices) => (true, format!("{} device(s)", devices.len())),
            Err(reason) => (false, reason.to_string()),
        };
        checks.push(check_required("nvml", nvml_ok, nvml_detail, false));
        // One rule: healthy iff every check that counts passed.
        let healthy = checks.iter().all(|c| c["ok"] == true || c["required"] == false);
        let gpus: Vec<String> = if self.available() {
            self.nvml.as_ref().map(|ds| ds.iter().map(|d| d.pci.clone()).collect()).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut unique = gpus;
        unique.sort();
        unique.dedup();
        json!({"worker": worker, "healthy": healthy, "checks": checks, "gpus": unique})
    }
}

/// The doctor's findings as `worker.preflight` checks that do not count toward `healthy`
/// (the `cuda` check already does): which NVRTC, whether `/dev/kmsg` and other processes' GPU
/// use can be read. The `gpu.preflight` schema allows no more fields, so they go here.
pub fn doctor_checks(doctor: &Doctor) -> Vec<Value> {
    let nvrtc = match (&doctor.nvrtc_version, &doctor.nvrtc_path) {
        (Some(version), Some(path)) => format!("NVRTC {version} at {path}"),
        _ => doctor
            .problems
            .iter()
            .find(|p| p.problem.contains("NVRTC"))
            .map_or_else(|| "NVRTC not loaded".to_owned(), |p| format!("{} (fix: {})", p.problem, p.fix)),
    };
    let kmsg = if doctor.kmsg_readable { "/dev/kmsg readable" } else { "/dev/kmsg not readable" };
    let processes = match doctor.other_processes_readable {
        Some(true) => "NVML lists other processes' GPU use",
        Some(false) => "NVML refuses to list other processes' GPU use",
        None => "unknown without NVML",
    };
    vec![
        check_required("nvrtc", doctor.nvrtc_path.is_some(), nvrtc, false),
        check_required("kmsg", doctor.kmsg_readable, kmsg.to_owned(), false),
        check_required(
            "gpu_processes",
            doctor.other_processes_readable == Some(true),
            processes.to_owned(),
            false,
        ),
    ]
}

fn check(name: &str, ok: bool, detail: String) -> Value {
    check_required(name, ok, detail, true)
}

/// A check; one that does not count toward `healthy` says so with `"required": false`.
fn check_required(name: &str, ok: bool, detail: String, required: bool) -> Value {
    let detail = clip(detail.trim(), 4000);
    let mut value = json!({"name": name, "ok": ok});
    if !detail.is_empty() {
        value["detail"] = Value::from(detail);
    }
    if !required {
        value["required"] = Value::from(false);
    }
    value
}

/// Why a `worker.preflight` check with `"required": false` does not count toward `healthy`.
pub fn why_not_required(check_name: &str) -> &'static str {
    match check_name {
        "cuda" => "no GPU is visible to NVML, so this worker offers CPU lanes only",
        "nvml" => "NVML only lists GPUs; without it this worker offers CPU lanes only",
        "nvrtc" => "the cuda check already counts NVRTC; this one says which NVRTC",
        "kmsg" => "Xids are still captured through NVML where it runs",
        "gpu_processes" => "the quiet window then sees only this user's GPU use",
        _ => "this check is informational",
    }
}

/// A reference kernel that failed the worker's self-test, with what it produced.
#[derive(Debug, thiserror::Error)]
#[error("{kernel} failed its self-test: {outcome:?}")]
struct SelfTestFailure {
    kernel: &'static str,
    outcome: Box<CellOutcome>,
}

/// Runs a few tiny CPU cells and checks they pass.
fn cpu_self_test() -> Result<String, SelfTestFailure> {
    let cells = [
        KernelSpec::Saxpy { n: 64, alpha: 1.5 },
        KernelSpec::MatmulTiled { m: 9, n: 7, k: 13, tile: 4 },
        KernelSpec::SoftmaxRows { rows: 3, cols: 17 },
    ];
    for spec in cells {
        let cell = Cell { spec, seed: 1, range: InputRange::default(), tolerance: 1e-4 };
        let outcome = run_cell_cpu(&cell);
        if !outcome.passed() {
            return Err(SelfTestFailure { kernel: spec.name(), outcome: Box::new(outcome) });
        }
    }
    Ok(format!("{} reference kernels pass", cells.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_preflight_says_why() {
        let preflight = Preflight::gather();
        if preflight.cuda.is_available() {
            return;
        }
        let gpu = preflight.gpu_preflight("node-1");
        assert_eq!(gpu["available"], false);
        assert_eq!(gpu["host"], "node-1");
        let reason = gpu["unavailable_reason"].as_str().expect("a reason");
        assert!(reason.contains("libcuda") || reason.contains("CUDA"), "{reason}");
        let worker = preflight.worker_preflight("node-1");
        assert_eq!(worker["healthy"], true, "{worker}");
        assert_eq!(worker["gpus"], json!([]));
        assert_eq!(worker["checks"][2]["name"], "cuda");
        assert_eq!(worker["checks"][2]["ok"], false);
        // The failed check says it does not count, so "healthy" is not a contradiction.
        assert_eq!(worker["checks"][2]["required"], false, "{worker}");
    }

    #[test]
    fn available_devices_are_listed_with_versions() {
        let preflight = Preflight {
            cuda: CudaProbe::Available { driver_version: 12080, devices: Vec::new() },
            nvml: Ok(vec![GpuDevice {
                index: 0,
                uuid: "GPU-34d7319c-5b19-1e75-186d-c187099e4fe5".into(),
                pci_bus_id: "00000000:01:00.0".into(),
                pci: "0000:01:00.0".into(),
                name: "NVIDIA B200".into(),
                memory_total_bytes: 1 << 30,
                driver_version: "570.133.20".into(),
            }]),
        };
        let gpu = preflight.gpu_preflight("n");
        assert_eq!(gpu["available"], true);
        assert!(gpu["unavailable_reason"].is_null());
        assert_eq!(gpu["devices"][0]["cuda"], "12.8");
        assert_eq!(gpu["devices"][0]["pci"], "0000:01:00.0");
        let worker = preflight.worker_preflight("n");
        assert_eq!(worker["gpus"], json!(["0000:01:00.0"]));
        assert_eq!(worker["healthy"], true);
        // With a GPU visible, CUDA counts.
        assert!(worker["checks"][2].get("required").is_none(), "{worker}");

        let broken =
            Preflight { cuda: CudaProbe::Unavailable { reason: "NVRTC missing".into() }, ..preflight };
        assert_eq!(broken.worker_preflight("n")["healthy"], false);
        assert_eq!(broken.gpu_preflight("n")["unavailable_reason"], "NVRTC missing");
    }
}

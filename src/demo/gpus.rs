//! GPU-side events: NVML-style telemetry samples, runner GPU preflights, and Xid faults.
//!
//! Xids are written as the kernel log prints them (dmesg `[uptime]` lines, journal and
//! syslog prefixes, raw `/dev/kmsg` records: the shapes of the real logs under
//! `fixtures/xid`), read back with [`assay_kernels::xid::parse_line`] and classified with the
//! catalog, so the events carry exactly what the runner's `xid watch` would record.

use assay_kernels::xid::{self, XidParse};
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::lab::{CUDA, Gpu, SEC, Worker};

/// One telemetry sample of a GPU of `worker` at a utilisation level (percent; 0 when idle).
pub fn telemetry(worker: &Worker, gpu: &Gpu, util: f64, mem_fraction: f64, rng: &mut StdRng) -> Value {
    let model = &worker.model;
    let busy = util / 100.0;
    let power = model.idle_power_mw as f64
        + (model.power_limit_mw - model.idle_power_mw) as f64 * busy * rng.gen_range(0.82..0.98);
    let temp = 31.0 + 52.0 * busy + rng.gen_range(-2.5..3.5);
    let hot = temp > 82.0;
    let capped = busy > 0.5 && power > model.power_limit_mw as f64 * 0.95;
    let mut throttle: Vec<&str> = Vec::new();
    if capped {
        throttle.push("sw_power_cap");
    }
    if hot {
        throttle.push("hw_thermal_slowdown");
    }
    let sm = if busy < 0.05 {
        210 + rng.gen_range(0..30)
    } else if hot || capped {
        model.sm_mhz - rng.gen_range(120..260)
    } else {
        model.sm_mhz - rng.gen_range(0..45)
    };
    let mem_used = if busy < 0.05 {
        rng.gen_range(400u64..700) << 20
    } else {
        (model.memory_bytes as f64 * mem_fraction * rng.gen_range(0.97..1.0)) as u64
    };
    json!({
        "host": worker.name,
        "uuid": gpu.uuid,
        "pci": gpu.pci,
        "temp_c": temp.round() as i64,
        "power_mw": power.round() as u64,
        "util_gpu_pct": util.round(),
        "mem_used_bytes": mem_used,
        "clocks": {"sm_mhz": sm, "mem_mhz": model.mem_mhz},
        "throttle": throttle,
    })
}

/// A runner's `gpu.preflight` for a worker whose devices all work.
pub fn preflight(worker: &Worker, driver: &str) -> Value {
    let devices: Vec<Value> = worker
        .gpus
        .iter()
        .map(|g| {
            json!({
                "index": g.index, "uuid": g.uuid, "pci": g.pci, "name": worker.model.name,
                "memory_bytes": worker.model.memory_bytes, "driver": driver, "cuda": CUDA,
            })
        })
        .collect();
    json!({"host": worker.name, "available": true, "devices": devices, "unavailable_reason": null})
}

/// How a kernel-log line is prefixed.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `[ 1399.140323] NVRM: …` (dmesg).
    Dmesg,
    /// `2026-09-08T01:00:00+0000 host kernel: NVRM: …` (journalctl -o short-iso).
    Journal,
    /// `Mar  2 10:15:02 host kernel: [ 8123.456789] NVRM: …` (syslog).
    Syslog,
    /// `4,2280,1399140323,-;NVRM: …` (raw /dev/kmsg record).
    Kmsg,
}

/// What a parsed Xid line becomes: the `gpu.xid` data.
#[derive(Debug, Clone)]
pub struct XidEvent {
    pub code: u32,
    pub data: Value,
    /// Whether the catalog says it taints runs on that GPU.
    pub taints: bool,
}

/// What the driver says after `Xid (PCI:…): <code>, ` for each code the demo uses, with
/// the process it blames (pid, name) when the driver names one.
pub fn driver_text(code: u32, process: Option<(u64, &str)>, rng: &mut StdRng) -> String {
    let proc = |p: Option<(u64, &str)>| match p {
        Some((pid, name)) => format!("pid={pid}, name={name}, "),
        None => "pid='<unknown>', name=<unknown>, ".to_owned(),
    };
    match code {
        13 => format!(
            "{}Graphics SM Warp Exception on (GPC {}, TPC {}, SM {}): Illegal Instruction Encoding",
            proc(process),
            rng.gen_range(0..8),
            rng.gen_range(0..9),
            rng.gen_range(0..2)
        ),
        31 => format!(
            "{}channel 0x{:08x}, intr 00000000. MMU Fault: ENGINE GRAPHICS GPC{} GPCCLIENT_T1_{} faulted @ 0x7f{:02x}_{:08x}. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
            proc(process),
            rng.gen_range(8..64),
            rng.gen_range(0..8),
            rng.gen_range(0..16),
            rng.gen_range(0..256),
            rng.gen_range(0u32..u32::MAX) & 0xffff_f000
        ),
        43 => format!("{}Ch {:08x}", proc(process), rng.gen_range(8..64)),
        45 => format!("{}Ch {:08x}", proc(process), rng.gen_range(8..64)),
        48 => format!(
            "{}An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition {}, subpartition {}.",
            proc(None),
            rng.gen_range(0..16),
            rng.gen_range(0..2)
        ),
        63 => format!(
            "pid={}, Row Remapper: New row marked for remapping, reset gpu to activate.",
            rng.gen_range(900..4000)
        ),
        79 => format!("{}GPU has fallen off the bus.", proc(None)),
        94 => format!("{}Contained ECC error", proc(process)),
        119 => format!(
            "{}Timeout after 6s of waiting for RPC response from GPU{} GSP! Expected function 76 (GSP_RM_CONTROL) (0x20800a4c 0x4).",
            proc(None),
            rng.gen_range(0..8)
        ),
        145 => format!(
            "RLW_RXPIPE Nonfatal XC0 i0 Link {} (0x0409a0c2 0x00000008 0x00000001 0x00000000 0x00100000 0x00000004)",
            rng.gen_range(0..18)
        ),
        154 => "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)".to_owned(),
        _ => format!("{}Xid {code}", proc(process)),
    }
}

/// Writes an Xid as a kernel-log line of a random shape, parses it back and classifies it.
pub fn xid_event(
    worker: &Worker,
    gpu: &Gpu,
    code: u32,
    process: Option<(u64, &str)>,
    time_ns: i64,
    rng: &mut StdRng,
) -> Result<XidEvent, String> {
    // The kernel log prints the id without its function, as real drivers do.
    let log_pci = gpu.pci.strip_suffix(".0").unwrap_or(&gpu.pci);
    let body = format!("NVRM: Xid (PCI:{log_pci}): {code}, {}", driver_text(code, process, rng));
    let at = DateTime::<Utc>::from_timestamp_nanos(time_ns);
    let uptime_ns = (time_ns - worker.booted_ns).max(SEC);
    let uptime = format!("{}.{:06}", uptime_ns / SEC, (uptime_ns % SEC) / 1000);
    let shape = match rng.gen_range(0..4) {
        0 => Shape::Dmesg,
        1 => Shape::Journal,
        2 => Shape::Syslog,
        _ => Shape::Kmsg,
    };
    let (line, kernel_time) = match shape {
        Shape::Dmesg => (format!("[{uptime:>13}] {body}"), uptime.clone()),
        Shape::Journal => {
            let stamp = at.format("%Y-%m-%dT%H:%M:%S%z").to_string();
            (format!("{stamp} {} kernel: {body}", worker.name), stamp)
        }
        Shape::Syslog => {
            let stamp = at.format("%b %e %H:%M:%S").to_string();
            (format!("{stamp} {} kernel: [{uptime:>13}] {body}", worker.name), uptime.clone())
        }
        Shape::Kmsg => {
            let usec = uptime_ns / 1000;
            (format!("3,{},{usec},-;{body}", rng.gen_range(1000..90_000)), usec.to_string())
        }
    };
    let record = match xid::parse_line(&line) {
        XidParse::Xid(record) => record,
        other => return Err(format!("the demo's Xid line did not parse ({other:?}): {line}")),
    };
    let info = xid::classify(&record);
    Ok(XidEvent {
        code: record.code,
        taints: info.taints_hardware,
        // The node's name, as its `xid watch` records it: nodes share PCI bus ids.
        data: json!({
            "host": worker.name,
            "pci": record.pci,
            "code": record.code,
            "pid": record.pid,
            "process": record.name,
            "message": record.message,
            "source": "kmsg",
            "severity": info.severity.as_str(),
            "action": info.action.as_str(),
            "kernel_time": kernel_time,
        }),
    })
}

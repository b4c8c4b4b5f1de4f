//! GPU health per device (normalized PCI id): what the runner's preflight found, the last
//! telemetry sample, the Xid history and whether the device needs a reset.
//!
//! `needs_reset` is set by any Xid whose catalog action is RESET_GPU, REBOOT or
//! DRAIN_AND_RESET, and cleared by a later (in seq order) `gpu.preflight` with
//! `available: true` that lists the device: the runner found it working again.

use std::collections::{BTreeMap, VecDeque};

use assay_events::Hash32;
use assay_events::record::Record;
use serde::Serialize;
use serde_json::Value;

use crate::data::{bool_of, f64_of, i64_of, owned, source_key_name, str_of, strs_of, u64_of};
use crate::pci;
use crate::xid_class::{XidClass, action_needs_reset, classify};

/// How many Xid events each device keeps in `recent`.
pub const RECENT_XIDS: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Telemetry {
    pub seq: u64,
    pub time: String,
    pub uuid: Option<String>,
    pub temp_c: Option<i64>,
    pub power_mw: Option<u64>,
    pub util_gpu_pct: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    pub clocks: BTreeMap<String, u64>,
    pub throttle: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XidEvent {
    pub seq: u64,
    pub time: String,
    pub code: u32,
    /// The event's own `severity`.
    pub severity: String,
    /// Our class (catalog table first, then `severity`).
    pub class: XidClass,
    pub action: String,
    pub pid: Option<u64>,
    pub process: Option<String>,
    pub message: String,
    pub source: String,
    pub kernel_time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct XidHistory {
    pub total: u64,
    pub by_code: BTreeMap<u32, u64>,
    /// Counts by class (see [`crate::xid_class::classify`]).
    pub by_severity: BTreeMap<XidClass, u64>,
    /// The latest [`RECENT_XIDS`], oldest first.
    pub recent: VecDeque<XidEvent>,
}

/// The Xid that set `needs_reset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetCause {
    pub seq: u64,
    pub code: u32,
    pub action: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Device {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub host: Option<String>,
    pub index: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub last_preflight_seq: Option<u64>,
    pub telemetry: Option<Telemetry>,
    pub xids: XidHistory,
    pub needs_reset: bool,
    pub reset_cause: Option<ResetCause>,
}

/// A host's latest `gpu.preflight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPreflight {
    pub seq: u64,
    pub available: bool,
    pub unavailable_reason: Option<String>,
    /// Normalized PCI ids of the devices listed.
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Gpus {
    /// normalized PCI id → device.
    devices: BTreeMap<String, Device>,
    hosts: BTreeMap<String, HostPreflight>,
}

impl Gpus {
    pub fn new() -> Gpus {
        Gpus::default()
    }

    pub fn apply(&mut self, record: &Record) {
        match record.event.ty.as_str() {
            "gpu.preflight" => self.apply_preflight(record),
            "gpu.telemetry" => self.apply_telemetry(record),
            "gpu.xid" => self.apply_xid(record),
            _ => {}
        }
    }

    fn apply_preflight(&mut self, record: &Record) {
        let data = &record.event.data;
        let Some(available) = bool_of(data, "available") else { return };
        let host = str_of(data, "host").or_else(|| source_key_name(record));
        let mut listed = Vec::new();
        for d in data.get("devices").and_then(Value::as_array).into_iter().flatten() {
            let Some(pci) = str_of(d, "pci").and_then(pci::normalize) else { continue };
            let device = self.devices.entry(pci.clone()).or_default();
            device.uuid = owned(str_of(d, "uuid")).or(device.uuid.take());
            device.name = owned(str_of(d, "name")).or(device.name.take());
            device.host = owned(host).or(device.host.take());
            device.index = u64_of(d, "index").or(device.index);
            device.memory_bytes = u64_of(d, "memory_bytes").or(device.memory_bytes);
            device.driver = owned(str_of(d, "driver")).or(device.driver.take());
            device.cuda = owned(str_of(d, "cuda")).or(device.cuda.take());
            device.last_preflight_seq = Some(record.seq);
            if available {
                device.needs_reset = false;
                device.reset_cause = None;
            }
            listed.push(pci);
        }
        if let Some(host) = host {
            self.hosts.insert(
                host.to_owned(),
                HostPreflight {
                    seq: record.seq,
                    available,
                    unavailable_reason: owned(str_of(data, "unavailable_reason")),
                    devices: listed,
                },
            );
        }
    }

    fn apply_telemetry(&mut self, record: &Record) {
        let data = &record.event.data;
        let Some(pci) = str_of(data, "pci").and_then(pci::normalize) else { return };
        let clocks = data
            .get("clocks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
            .collect();
        let device = self.devices.entry(pci).or_default();
        let uuid = owned(str_of(data, "uuid"));
        if uuid.is_some() {
            device.uuid.clone_from(&uuid);
        }
        device.telemetry = Some(Telemetry {
            seq: record.seq,
            time: record.event.time.clone(),
            uuid,
            temp_c: i64_of(data, "temp_c"),
            power_mw: u64_of(data, "power_mw"),
            util_gpu_pct: f64_of(data, "util_gpu_pct"),
            mem_used_bytes: u64_of(data, "mem_used_bytes"),
            clocks,
            throttle: strs_of(data, "throttle").map(str::to_owned).collect(),
        });
    }

    fn apply_xid(&mut self, record: &Record) {
        let data = &record.event.data;
        let Some(pci) = str_of(data, "pci").and_then(pci::normalize) else { return };
        let Some(code) = u64_of(data, "code").and_then(|c| u32::try_from(c).ok()) else { return };
        let severity = str_of(data, "severity").unwrap_or("unknown");
        let action = str_of(data, "action").unwrap_or("UNKNOWN");
        let class = classify(code, severity);
        let device = self.devices.entry(pci).or_default();
        let xids = &mut device.xids;
        xids.total += 1;
        *xids.by_code.entry(code).or_default() += 1;
        *xids.by_severity.entry(class).or_default() += 1;
        if xids.recent.len() == RECENT_XIDS {
            xids.recent.pop_front();
        }
        xids.recent.push_back(XidEvent {
            seq: record.seq,
            time: record.event.time.clone(),
            code,
            severity: severity.to_owned(),
            class,
            action: action.to_owned(),
            pid: u64_of(data, "pid"),
            process: owned(str_of(data, "process")),
            message: str_of(data, "message").unwrap_or_default().to_owned(),
            source: str_of(data, "source").unwrap_or_default().to_owned(),
            kernel_time: owned(str_of(data, "kernel_time")),
        });
        if action_needs_reset(action) {
            device.needs_reset = true;
            device.reset_cause = Some(ResetCause { seq: record.seq, code, action: action.to_owned() });
        }
    }

    /// normalized PCI id → device.
    pub fn devices(&self) -> &BTreeMap<String, Device> {
        &self.devices
    }

    /// The device with this PCI id (either form).
    pub fn device(&self, pci_id: &str) -> Option<&Device> {
        self.devices.get(&pci::normalize(pci_id)?)
    }

    pub fn hosts(&self) -> &BTreeMap<String, HostPreflight> {
        &self.hosts
    }

    /// Devices that need a reset, by normalized PCI id.
    pub fn needing_reset(&self) -> impl Iterator<Item = (&str, &Device)> {
        self.devices.iter().filter(|(_, d)| d.needs_reset).map(|(p, d)| (p.as_str(), d))
    }

    pub fn digest(&self) -> Hash32 {
        crate::digest::state_digest(self)
    }
}

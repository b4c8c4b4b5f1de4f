//! GPU health per device: what the runner's preflight found, the last telemetry sample, the
//! Xid history and whether the device needs a reset.
//!
//! A device is a (host, normalized PCI id) pair, a [`GpuKey`]: nodes of one model have the
//! same PCI bus ids, so the bus id alone does not name a GPU in a lab. The host is the event's
//! `host` (`gpu.preflight` without one: the signing key's name, as for its subject); it is the
//! name dispatch uses as `worker`.
//!
//! Events written before `gpu.xid` and `gpu.telemetry` carried a host have none; they are kept
//! under a host-less key (`host: None`), and read conservatively: a host-less Xid may have
//! happened on that PCI id on any host. So [`Gpus::needs_reset`] for (host, pci) also answers
//! yes for a host-less reset on that pci, and a host-less reset also marks that pci on every
//! host already known.
//!
//! `needs_reset` is set by any Xid whose catalog action is RESET_GPU, REBOOT or
//! DRAIN_AND_RESET, and cleared by a later (in seq order) `gpu.preflight` with
//! `available: true` that lists the device: the runner found it working again. Such a
//! preflight of host H clears (H, pci), and the host-less entry of that pci too, since
//! before hosts were recorded that is what cleared it; a host-less reset already copied to
//! another known host stays there until that host's own preflight lists the device.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use assay_events::record::Record;
use assay_events::{EventType, Hash32};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::data::{bool_of, f64_of, i64_of, owned, source_key_name, str_of, strs_of, u64_of};
use crate::pci;
use crate::xid_class::{XidClass, action_needs_reset, classify};

/// How many Xid events each device keeps in `recent`.
pub const RECENT_XIDS: usize = 32;

/// A GPU: the host that reported it (`None` for events from before hosts were recorded) and
/// its normalized PCI id. Serialized (as a map key in JSON) as `<host>/<pci>`, or `<pci>`
/// without a host; a PCI id has no `/`, so the last `/` splits the two.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GpuKey {
    pub host: Option<String>,
    pub pci: String,
}

impl GpuKey {
    /// The key of `pci` (either form) on `host`; `None` if `pci` is not a PCI id.
    pub fn new(host: Option<&str>, pci_id: &str) -> Option<GpuKey> {
        Some(GpuKey { host: host.map(str::to_owned), pci: pci::canonical(pci_id)? })
    }
}

impl fmt::Display for GpuKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{host}/{}", self.pci),
            None => f.write_str(&self.pci),
        }
    }
}

impl Serialize for GpuKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

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
    /// The host of its key.
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
    /// (host, normalized PCI id) → device.
    devices: BTreeMap<GpuKey, Device>,
    hosts: BTreeMap<String, HostPreflight>,
}

impl Gpus {
    pub fn new() -> Gpus {
        Gpus::default()
    }

    pub fn apply(&mut self, record: &Record) {
        let Some(ty) = record.event_type() else { return };
        match ty {
            EventType::GpuPreflight => self.apply_preflight(record),
            EventType::GpuTelemetry => self.apply_telemetry(record),
            EventType::GpuXid => self.apply_xid(record),
            _ => {}
        }
    }

    fn apply_preflight(&mut self, record: &Record) {
        let data = &record.event.data;
        let Some(available) = bool_of(data, "available") else { return };
        let host = str_of(data, "host").or_else(|| source_key_name(record));
        let mut listed = Vec::new();
        for d in data.get("devices").and_then(Value::as_array).into_iter().flatten() {
            let Some(key) = str_of(d, "pci").and_then(|p| GpuKey::new(host, p)) else { continue };
            let pci = key.pci.clone();
            if available && key.host.is_some() {
                // Host-less resets are cleared by whichever host's preflight lists the
                // device, as they were before hosts were recorded.
                if let Some(hostless) = self.devices.get_mut(&GpuKey { host: None, pci: pci.clone() }) {
                    hostless.needs_reset = false;
                    hostless.reset_cause = None;
                }
            }
            let device = self.devices.entry(key).or_default();
            device.uuid = owned(str_of(d, "uuid")).or(device.uuid.take());
            device.name = owned(str_of(d, "name")).or(device.name.take());
            device.host = owned(host);
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
        let Some(key) = str_of(data, "pci").and_then(|p| GpuKey::new(str_of(data, "host"), p)) else {
            return;
        };
        let clocks = data
            .get("clocks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
            .collect();
        let device = self.device_mut(key);
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
        let Some(key) = str_of(data, "pci").and_then(|p| GpuKey::new(str_of(data, "host"), p)) else {
            return;
        };
        let Some(code) = u64_of(data, "code").and_then(|c| u32::try_from(c).ok()) else { return };
        let severity = str_of(data, "severity").unwrap_or("unknown");
        let action = str_of(data, "action").unwrap_or("UNKNOWN");
        let class = classify(code, severity);
        let cause = ResetCause { seq: record.seq, code, action: action.to_owned() };
        if action_needs_reset(action) && key.host.is_none() {
            // A host-less Xid may have been on this PCI id on any host.
            for (_, d) in self.devices.iter_mut().filter(|(k, _)| k.host.is_some() && k.pci == key.pci) {
                d.needs_reset = true;
                d.reset_cause = Some(cause.clone());
            }
        }
        let device = self.device_mut(key);
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
            device.reset_cause = Some(cause);
        }
    }

    /// The device of `key`, created with its host if new.
    fn device_mut(&mut self, key: GpuKey) -> &mut Device {
        let host = key.host.clone();
        self.devices.entry(key).or_insert_with(|| Device { host, ..Device::default() })
    }

    /// (host, normalized PCI id) → device; host-less keys hold events without a host.
    pub fn devices(&self) -> &BTreeMap<GpuKey, Device> {
        &self.devices
    }

    /// The device with this PCI id (either form) on `host` (`None`: the host-less entry).
    pub fn device(&self, host: Option<&str>, pci_id: &str) -> Option<&Device> {
        self.devices.get(&GpuKey::new(host, pci_id)?)
    }

    /// Why the GPU `pci_id` (either form) of `host` needs a reset, if it does: an Xid
    /// reported by that host, or a host-less one on that PCI id (which may have been on
    /// any host), not cleared since.
    pub fn needs_reset(&self, host: &str, pci_id: &str) -> Option<&ResetCause> {
        let pci = pci::canonical(pci_id)?;
        let on = |host: Option<&str>| {
            let d = self.devices.get(&GpuKey { host: host.map(str::to_owned), pci: pci.clone() })?;
            d.reset_cause.as_ref().filter(|_| d.needs_reset)
        };
        on(Some(host)).or_else(|| on(None))
    }

    pub fn hosts(&self) -> &BTreeMap<String, HostPreflight> {
        &self.hosts
    }

    /// Devices that need a reset (a host-less one included: its PCI id on any host).
    pub fn needing_reset(&self) -> impl Iterator<Item = (&GpuKey, &Device)> {
        self.devices.iter().filter(|(_, d)| d.needs_reset)
    }

    pub fn digest(&self) -> Hash32 {
        crate::digest::state_digest(self)
    }
}

//! Builders for every event type, with `data` shaped as the schemas say.

use serde_json::{Value, json};

use super::{Ev, ev, key};

/// A GPU in the kernel-log form.
pub const GPU0: &str = "0000:01:00.0";
/// The same GPU as NVML prints it.
pub const GPU0_NVML: &str = "00000000:01:00.0";
/// Another GPU.
pub const GPU1: &str = "0000:41:00.0";

/// A digest-shaped hex string derived from `seed`.
pub fn hex_of(seed: &str) -> String {
    blake3::hash(seed.as_bytes()).to_hex().to_string()
}

/// Genesis: the ledger key, and `admin` as the first admin.
pub fn genesis() -> Ev {
    ev(
        "ledger.initialized",
        json!({
            "origin": "assay.test/ledger",
            "ledger_key": key("ledger").verifier().to_text(),
            "admin_keys": [key("admin").verifier().to_text()],
        }),
    )
}

pub fn key_registered(name: &str, roles: &[&str]) -> Ev {
    ev("key.registered", json!({"vkey": key(name).verifier().to_text(), "roles": roles}))
}

pub fn key_revoked(name: &str) -> Ev {
    ev("key.revoked", json!({"vkey": key(name).verifier().to_text(), "reason": "rotated"}))
}

pub fn paused() -> Ev {
    ev("control.paused", json!({"reason": "driver upgrade"}))
}

pub fn resumed() -> Ev {
    ev("control.resumed", json!({}))
}

/// `control.maintenance`; `worker` and `gpus` give the scope (none = everything).
pub fn maintenance(on: bool, worker: Option<&str>, gpus: &[&str]) -> Ev {
    let mut data = json!({"on": on, "reason": "maintenance window"});
    if let Some(w) = worker {
        data["worker"] = json!(w);
    }
    if !gpus.is_empty() {
        data["gpus"] = json!(gpus);
    }
    ev("control.maintenance", data)
}

pub fn run_queued(run: &str, project: &str, needs_gpu: bool) -> Ev {
    ev(
        "run.queued",
        json!({"run": run, "project": project, "needs_gpu": needs_gpu,
               "spec": {"command": ["python", "train.py"], "env": {"SEED": "7"}}}),
    )
}

pub fn worker_preflight(worker: &str, healthy: bool, gpus: &[&str]) -> Ev {
    ev(
        "worker.preflight",
        json!({"worker": worker, "healthy": healthy,
               "checks": [{"name": "nvml", "ok": healthy}, {"name": "disk_free", "ok": true, "detail": "812 GiB free"}],
               "gpus": gpus}),
    )
}

pub fn dispatch_requested(run: &str, worker: &str, gpu: Option<&str>) -> Ev {
    ev("dispatch.requested", json!({"run": run, "worker": worker, "gpu": gpu}))
}

/// A ledger decision written by hand (normally the gate writes it: see `Scenario::decide`).
pub fn dispatch_decided(run: &str, worker: &str, gpu: Option<&str>, accepted: bool, reasons: &[&str]) -> Ev {
    ev(
        "dispatch.decided",
        json!({"run": run, "worker": worker, "gpu": gpu, "accepted": accepted, "reasons": reasons,
               "request": format!("@request:{run}")}),
    )
}

pub fn run_started(run: &str, worker: &str, gpu: Option<&str>) -> Ev {
    let mut data = json!({"run": run, "worker": worker, "pid": 4242, "command": ["python", "train.py"]});
    if let Some(g) = gpu {
        data["gpu"] = json!(g);
    }
    ev("run.started", data)
}

pub fn run_heartbeat(run: &str, cpu_pct: f64) -> Ev {
    ev(
        "run.heartbeat",
        json!({"run": run, "cpu_pct": cpu_pct, "rss_bytes": 1_048_576, "gpu_util_pct": 50.0, "processes": 3}),
    )
}

/// `run.finished`; `exit_code: None` = killed by a signal (9).
pub fn run_finished(run: &str, exit_code: Option<i64>) -> Ev {
    let signal = if exit_code.is_none() { json!(9) } else { Value::Null };
    ev("run.finished", json!({"run": run, "exit_code": exit_code, "signal": signal, "duration_ms": 60_000}))
}

pub fn run_quiesced(run: &str) -> Ev {
    ev(
        "run.quiesced",
        json!({"run": run, "quiet_window_ms": 30_000, "cpu_pct_max": 1.5, "gpu_util_max": 0.0}),
    )
}

pub fn run_cancelled(run: &str) -> Ev {
    ev("run.cancelled", json!({"run": run, "reason": "superseded"}))
}

/// `evidence.captured` with one file; `bundle_digest` is the b3sum manifest's blake3.
pub fn evidence_captured(run: &str) -> Ev {
    let file = hex_of(&format!("stdout of {run}"));
    let manifest = format!("{file}  logs/stdout.txt\n");
    ev(
        "evidence.captured",
        json!({"run": run, "files": [{"path": "logs/stdout.txt", "blake3": file, "bytes": 1024}],
               "bundle_digest": hex_of_bytes(manifest.as_bytes())}),
    )
}

/// `evidence.synced` (the ledger's) for the latest `evidence.captured` of `run`.
pub fn evidence_synced(run: &str) -> Ev {
    ev("evidence.synced", json!({"run": run, "evidence": format!("@evidence:{run}"), "files": 1}))
}

/// `control.evidence_sync`: the evidence gate on or off.
pub fn evidence_sync_required(required: bool) -> Ev {
    ev("control.evidence_sync", json!({"required": required}))
}

fn hex_of_bytes(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

pub fn metric(run: &str, name: &str, step: u64, value: f64) -> Ev {
    ev("metric.recorded", json!({"run": run, "name": name, "step": step, "value": value, "unit": "nats"}))
}

pub fn kernel_completed(run: &str, kernel: &str, variant: Value, backend: &str, passed: bool) -> Ev {
    let device = if backend == "cpu" { "cpu" } else { "GPU-34d7319c-5b19-1e75-186d-c187099e4fe5" };
    let out = hex_of(&format!("{kernel} out"));
    let reference = if passed { out.clone() } else { hex_of(&format!("{kernel} ref")) };
    ev(
        "kernel.launch.completed",
        json!({"run": run, "kernel": kernel, "variant": variant, "backend": backend, "device": device,
               "grid": [4096, 1, 1], "block": [256, 1, 1], "duration_us": 41,
               "input_digest": hex_of(&format!("{kernel} in")), "output_digest": out, "reference_digest": reference,
               "max_abs_err": if passed { 0.0 } else { 0.5 }, "tolerance": 1e-6, "passed": passed}),
    )
}

pub fn kernel_faulted(run: &str, kernel: &str, variant: Value, backend: &str, error: &str) -> Ev {
    ev(
        "kernel.launch.faulted",
        json!({"run": run, "kernel": kernel, "variant": variant, "backend": backend, "error": error, "sticky": true}),
    )
}

/// `gpu.xid` from the kernel log; `severity` and `action` as the catalog gives them.
pub fn gpu_xid(pci: &str, code: u32, severity: &str, action: &str) -> Ev {
    ev(
        "gpu.xid",
        json!({"pci": pci, "code": code, "pid": null, "process": null,
               "message": format!("Xid {code} on {pci}"), "source": "kmsg",
               "severity": severity, "action": action, "kernel_time": "1399.140323"}),
    )
}

pub fn gpu_telemetry(pci: &str, temp_c: i64, util: f64) -> Ev {
    ev(
        "gpu.telemetry",
        json!({"uuid": "GPU-34d7319c-5b19-1e75-186d-c187099e4fe5", "pci": pci, "temp_c": temp_c,
               "power_mw": 287_000, "util_gpu_pct": util, "mem_used_bytes": 1_073_741_824,
               "clocks": {"sm_mhz": 1410, "mem_mhz": 1593}, "throttle": []}),
    )
}

/// `gpu.preflight` of `host`: available with `devices` (PCI ids), or unavailable.
pub fn gpu_preflight(host: &str, available: bool, devices: &[&str]) -> Ev {
    let devices: Vec<Value> = devices
        .iter()
        .enumerate()
        .map(|(i, pci)| {
            json!({"index": i, "uuid": format!("GPU-0000000{i}-5b19-1e75-186d-c187099e4fe5"), "pci": pci,
                   "name": "NVIDIA A100-SXM4-80GB", "memory_bytes": 85_899_345_920u64, "driver": "570.133.20", "cuda": "12.8"})
        })
        .collect();
    let reason = if available { Value::Null } else { json!("libcuda.so not found") };
    ev(
        "gpu.preflight",
        json!({"host": host, "available": available, "devices": devices, "unavailable_reason": reason}),
    )
}

/// `artifact.submitted`; `content` seeds the content digest (same seed = same content).
pub fn artifact_submitted(slug: &str, version: u64, content: &str, runs: &[&str]) -> Ev {
    ev(
        "artifact.submitted",
        json!({"slug": slug, "version": version, "title": format!("Artifact {slug}"),
               "content_digest": hex_of(content), "runs": runs,
               "files": [{"path": "README.md", "blake3": hex_of(content), "bytes": 9120}],
               "generator": "assay-testkit"}),
    )
}

pub fn artifact_superseded(slug: &str, version: u64, by: u64) -> Ev {
    ev("artifact.superseded", json!({"slug": slug, "version": version, "by": by, "reason": "corrected"}))
}

/// `claim.asserted`; `evidence` may hold `"@evidence:<run>"` placeholders.
pub fn claim(artifact: &str, id: &str, check: Value, evidence: &[&str]) -> Ev {
    ev(
        "claim.asserted",
        json!({"artifact": artifact, "claim": id, "statement": format!("Claim {id}"),
               "location": "README.md#results", "check": check, "evidence": evidence}),
    )
}

pub fn claim_withdrawn(artifact: &str, id: &str) -> Ev {
    ev("claim.withdrawn", json!({"artifact": artifact, "claim": id, "reason": "wrong split"}))
}

/// A `metric` check.
pub fn metric_check(run: &str, metric: &str, agg: &str, op: &str, value: &str) -> Value {
    json!({"kind": "metric", "run": run, "metric": metric, "agg": agg, "op": op, "value": value})
}

/// A `compare` check.
pub fn compare_check(metric: &str, run: &str, baseline: &str, agg: &str, op: &str, margin: &str) -> Value {
    json!({"kind": "compare", "metric": metric, "run": run, "baseline_run": baseline, "agg": agg, "op": op, "margin": margin})
}

/// A `kernel` check; `variant` and `backend` optional.
pub fn kernel_check(kernel: &str, variant: Option<Value>, backend: Option<&str>) -> Value {
    let mut c = json!({"kind": "kernel", "kernel": kernel, "expect": "pass"});
    if let Some(v) = variant {
        c["variant"] = v;
    }
    if let Some(b) = backend {
        c["backend"] = json!(b);
    }
    c
}

pub fn completed_check(run: &str) -> Value {
    json!({"kind": "completed", "run": run})
}

/// The events of a GPU run that ran cleanly: queued, dispatched through the gate (with a
/// fresh healthy preflight of `worker` offering `gpu`), started, finished with `exit_code`,
/// evidence captured, quiesced. `metrics` are recorded between start and finish.
pub fn clean_run(run: &str, worker: &str, gpu: &str, metrics: &[(&str, u64, f64)]) -> Vec<Ev> {
    let mut v = vec![
        run_queued(run, "proj", true),
        worker_preflight(worker, true, &[GPU0, GPU1]),
        dispatch_requested(run, worker, Some(gpu)),
        run_started(run, worker, Some(gpu)),
    ];
    v.extend(metrics.iter().map(|(name, step, value)| metric(run, name, *step, *value)));
    v.push(run_finished(run, Some(0)));
    v.push(evidence_captured(run));
    v.push(run_quiesced(run));
    v
}

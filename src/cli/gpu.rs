//! `assay gpu preflight (--db|--server) --key K.key [--worker NAME]`: records `gpu.preflight`
//! (the devices, with UUID, PCI bus id, memory and driver, or why CUDA is unusable) and
//! `worker.preflight` (checks and the GPU lanes offered). `assay gpu doctor [--json]`: what the
//! CUDA path looked for, what it found, and the fix for each missing piece.

use anyhow::Context;
use assay_events::EventType;
use assay_events::roles::Role;
use assay_kernels::doctor::Doctor;
use assay_kernels::preflight::{Preflight, doctor_checks};

use super::Exit;
use super::run::{Opened, SinkArgs, open_sink, worker_name};

#[derive(clap::Subcommand)]
pub enum GpuCommand {
    /// Probe CUDA and NVML and record gpu.preflight and worker.preflight.
    Preflight(PreflightArgs),
    /// Say what the CUDA path looked for and where, what it found, and how to fix what is
    /// missing. Exit 0 when kernels can run, 1 when not.
    Doctor(DoctorArgs),
}

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    sink: SinkArgs,
    /// The worker (host) name (default: the key's name).
    #[arg(long)]
    worker: Option<String>,
    /// Print both events' data as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: GpuCommand) -> anyhow::Result<Exit> {
    match command {
        GpuCommand::Preflight(a) => preflight(a).await,
        GpuCommand::Doctor(a) => doctor(a).await,
    }
}

async fn doctor(a: DoctorArgs) -> anyhow::Result<Exit> {
    let found = tokio::task::spawn_blocking(Doctor::gather).await.context("the doctor task failed")?;
    let exit = if found.can_run_kernels { Exit::Ok } else { Exit::VerifyFailed };
    if a.json {
        outln!("{}", serde_json::to_string(&found)?);
        return Ok(exit);
    }
    for searched in &found.searched {
        let library = serde_json::to_value(searched.library)?;
        match searched.found() {
            Some(hit) => {
                outln!("{} found: {} ({})", library.as_str().unwrap_or("?"), hit.path.display(), hit.origin)
            }
            None => outln!(
                "{} not found in {} places:",
                library.as_str().unwrap_or("?"),
                searched.candidates.len()
            ),
        }
        if searched.found().is_none() {
            for candidate in &searched.candidates {
                outln!("  {} ({})", candidate.path.display(), candidate.origin);
            }
        }
    }
    let or_none = |value: &Option<String>| value.clone().unwrap_or_else(|| "none".to_owned());
    outln!("driver {} (CUDA {})", or_none(&found.driver_version), or_none(&found.driver_cuda_version));
    outln!("nvrtc {} at {}", or_none(&found.nvrtc_version), or_none(&found.nvrtc_path));
    outln!("nvml {}", if found.nvml { "loaded" } else { "unusable" });
    for device in &found.devices {
        let supported = match device.nvrtc_supports {
            Some(true) => "supported",
            Some(false) => "NOT supported by this NVRTC",
            None => "no NVRTC",
        };
        outln!(
            "device {} {} compute {} ({}: {supported})",
            device.ordinal,
            device.name,
            device.compute_capability,
            device.nvrtc_arch
        );
    }
    outln!("/dev/kmsg {}", if found.kmsg_readable { "readable" } else { "not readable" });
    let others = match found.other_processes_readable {
        Some(true) => "readable",
        Some(false) => "not readable",
        None => "unknown (no NVML)",
    };
    outln!("other processes' GPU use {others}");
    for problem in &found.problems {
        outln!("problem: {}", problem.problem);
        outln!("  fix: {}", problem.fix);
    }
    outln!("kernels {}", if found.can_run_kernels { "can run" } else { "cannot run" });
    Ok(exit)
}

async fn preflight(a: PreflightArgs) -> anyhow::Result<Exit> {
    let opened = open_sink(&a.sink, &[Role::Runner]).await?;
    let worker = worker_name(a.worker.as_deref(), &opened)?;
    let Opened { sink, closer, .. } = opened;
    let subject = format!("worker/{worker}");
    let result = tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        let preflight = Preflight::gather();
        let gpu = preflight.gpu_preflight(&worker);
        let mut health = preflight.worker_preflight(&worker);
        if let Some(checks) = health["checks"].as_array_mut() {
            checks.extend(doctor_checks(&Doctor::gather()));
        }
        sink.emit(EventType::GpuPreflight.as_str(), &subject, gpu.clone())?;
        sink.emit(EventType::WorkerPreflight.as_str(), &subject, health.clone())?;
        sink.flush()?;
        anyhow::Ok((gpu, health))
    })
    .await
    .context("the preflight task failed")?;
    closer.close().await;
    let (gpu, health) = result?;
    // Recorded either way; an unhealthy worker is a failed check, so the shell hears it.
    let exit = if health["healthy"] == true { Exit::Ok } else { Exit::VerifyFailed };
    if a.json {
        outln!("{}", serde_json::json!({"gpu.preflight": gpu, "worker.preflight": health}));
        return Ok(exit);
    }
    match gpu["unavailable_reason"].as_str() {
        Some(reason) => outln!("CUDA unavailable: {reason}"),
        None => {
            for device in gpu["devices"].as_array().into_iter().flatten() {
                outln!(
                    "gpu {} {} {} ({} MiB, driver {}, CUDA {})",
                    device["index"],
                    device["pci"].as_str().unwrap_or("?"),
                    device["name"].as_str().unwrap_or("?"),
                    device["memory_bytes"].as_u64().unwrap_or(0) >> 20,
                    device["driver"].as_str().unwrap_or("?"),
                    device["cuda"].as_str().unwrap_or("?"),
                );
            }
        }
    }
    for check in health["checks"].as_array().into_iter().flatten() {
        let name = check["name"].as_str().unwrap_or("?");
        let ok = check["ok"] == true;
        let counts = check["required"] != false;
        let why = if !ok && !counts {
            format!(" (does not count: {})", assay_kernels::preflight::why_not_required(name))
        } else {
            String::new()
        };
        outln!(
            "check {:<12} {:<4} {}{why}",
            name,
            if ok {
                "ok"
            } else if counts {
                "FAIL"
            } else {
                "fail"
            },
            check["detail"].as_str().unwrap_or("")
        );
    }
    outln!(
        "worker {}: {}",
        health["worker"].as_str().unwrap_or("?"),
        if health["healthy"] == true { "healthy" } else { "unhealthy" }
    );
    Ok(exit)
}

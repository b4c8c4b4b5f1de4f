//! The seeded history of the demo lab: runs queued, dispatched, started, measured, finished,
//! captured and quiesced; kernel launches; GPU telemetry.

use assay_events::dsse::DecodedEnvelope;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::{DemoOptions, Producers};
use crate::ledger::build_envelope;

const WORKERS: [(&str, [&str; 2]); 3] = [
    ("gpu-node-1", ["0000:01:00", "0000:41:00"]),
    ("gpu-node-2", ["0000:01:00", "0000:81:00"]),
    ("gpu-node-3", ["0000:3b:00", "0000:5e:00"]),
];
const PROJECTS: [&str; 4] =
    ["flash-attn-repro", "fp4-gemm-sweep", "moe-router-ablation", "tokenizer-scaling"];
const METRIC_STEPS: u64 = 20;

/// The events, in order, with producer times 50 ms apart.
pub fn history(p: &Producers, options: &DemoOptions, start_ns: i64) -> Vec<DecodedEnvelope> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut t = start_ns;
    let mut out = Vec::new();
    let mut emit =
        |key: &assay_events::keys::SignerKey, ty: &str, subject: String, data: serde_json::Value| {
            t += 50_000_000;
            out.push(build_envelope(key, ty, Some(&subject), data, None, t));
        };
    for (worker, gpus) in WORKERS {
        emit(
            &p.worker,
            "worker.preflight",
            format!("worker/{worker}"),
            json!({
                "worker": worker, "healthy": true,
                "checks": [{"name": "nvml", "ok": true}, {"name": "disk_free", "ok": true}],
                "gpus": gpus,
            }),
        );
    }
    for i in 0..options.runs {
        let run = format!("r-{i:04}");
        let subject = format!("run/{run}");
        let project = PROJECTS[rng.gen_range(0..PROJECTS.len())];
        let (worker, gpus) = WORKERS[i as usize % WORKERS.len()];
        let gpu = gpus[rng.gen_range(0..2)];
        emit(
            &p.dispatcher,
            "run.queued",
            subject.clone(),
            json!({
                "run": run, "project": project, "needs_gpu": true,
                "spec": {"command": ["python", "train.py", "--seed", i.to_string()]},
            }),
        );
        emit(
            &p.dispatcher,
            "dispatch.requested",
            subject.clone(),
            json!({"run": run, "worker": worker, "gpu": gpu}),
        );
        emit(
            &p.worker,
            "run.started",
            subject.clone(),
            json!({
                "run": run, "worker": worker, "gpu": gpu, "pid": 30000 + i,
                "command": ["python", "train.py", "--seed", i.to_string()],
            }),
        );
        let mut loss: f64 = rng.gen_range(2.5..4.0);
        for step in 0..METRIC_STEPS {
            loss *= rng.gen_range(0.90..0.99);
            emit(
                &p.worker,
                "metric.recorded",
                subject.clone(),
                json!({
                    "run": run, "name": "train/loss", "step": step * 100, "value": (loss * 1e4).round() / 1e4, "unit": "nats",
                }),
            );
            if step % 5 == 0 {
                emit(
                    &p.worker,
                    "run.heartbeat",
                    subject.clone(),
                    json!({
                        "run": run, "cpu_pct": rng.gen_range(80.0..190.0_f64).round(), "rss_bytes": rng.gen_range(1u64..8) << 30,
                        "gpu_util_pct": rng.gen_range(70.0..99.0_f64).round(), "processes": 3,
                    }),
                );
                emit(
                    &p.runner,
                    "gpu.telemetry",
                    format!("gpu/{gpu}"),
                    json!({
                        "uuid": format!("GPU-{:08x}-5b19-1e75-186d-c187099e4fe5", i), "pci": gpu,
                        "temp_c": rng.gen_range(45..83), "power_mw": rng.gen_range(150_000..400_000),
                        "util_gpu_pct": rng.gen_range(60..100), "mem_used_bytes": rng.gen_range(1u64..80) << 30,
                        "clocks": {"sm_mhz": 1410, "mem_mhz": 1593}, "throttle": [],
                    }),
                );
            }
        }
        let digest = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
        emit(
            &p.runner,
            "kernel.launch.completed",
            subject.clone(),
            json!({
                "run": run, "kernel": "saxpy", "variant": {"n": 1 << 16, "block": 256, "seed": i},
                "backend": "cpu", "device": "cpu", "grid": [256, 1, 1], "block": [256, 1, 1],
                "duration_us": rng.gen_range(20..90), "input_digest": digest(&format!("in{i}")),
                "output_digest": digest(&format!("out{i}")), "reference_digest": digest(&format!("out{i}")),
                "max_abs_err": 0.0, "tolerance": 1e-6, "passed": true,
            }),
        );
        let exit_code = if rng.gen_bool(0.9) { 0 } else { 1 };
        emit(
            &p.worker,
            "run.finished",
            subject.clone(),
            json!({
                "run": run, "exit_code": exit_code, "signal": null, "duration_ms": rng.gen_range(60_000..900_000),
            }),
        );
        let stdout_digest = digest(&format!("stdout{i}"));
        let metrics_digest = digest(&format!("metrics{i}"));
        let bundle = digest(&format!("{metrics_digest}  metrics.jsonl\n{stdout_digest}  stdout.txt\n"));
        emit(
            &p.worker,
            "evidence.captured",
            subject.clone(),
            json!({
                "run": run,
                "files": [
                    {"path": "metrics.jsonl", "blake3": metrics_digest, "bytes": 4410},
                    {"path": "stdout.txt", "blake3": stdout_digest, "bytes": 18231},
                ],
                "bundle_digest": bundle,
            }),
        );
        emit(
            &p.worker,
            "run.quiesced",
            subject.clone(),
            json!({
                "run": run, "quiet_window_ms": 5000, "cpu_pct_max": 1.5, "gpu_util_max": 0.0,
            }),
        );
    }
    out
}

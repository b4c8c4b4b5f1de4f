//! The demo lab's fixed layout: workers and their GPUs, projects, people, keys, and the size
//! of the generated history.

use assay_events::keys::SignerKey;
use rand::Rng;
use rand::rngs::StdRng;

/// Nanoseconds per second, minute, hour and day.
pub const SEC: i64 = 1_000_000_000;
pub const MIN: i64 = 60 * SEC;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// The driver every node runs until gpu-node-3's maintenance upgrades it.
pub const DRIVER: &str = "570.133.20";
pub const CUDA: &str = "12.8";
/// `generator` of every artifact.
pub const GENERATOR: &str = concat!("assay-demo ", env!("CARGO_PKG_VERSION"));

/// A GPU model as NVML names it, with the numbers telemetry is drawn around.
#[derive(Debug, Clone, Copy)]
pub struct GpuModel {
    pub name: &'static str,
    pub memory_bytes: u64,
    /// Board power limit, milliwatts.
    pub power_limit_mw: u64,
    pub idle_power_mw: u64,
    pub sm_mhz: u64,
    pub mem_mhz: u64,
    /// Throughput relative to an H100 (tokens/s and TFLOP/s scale with it).
    pub speed: f64,
}

pub const H100: GpuModel = GpuModel {
    name: "NVIDIA H100 80GB HBM3",
    memory_bytes: 85_520_809_984,
    power_limit_mw: 700_000,
    idle_power_mw: 72_000,
    sm_mhz: 1980,
    mem_mhz: 2619,
    speed: 1.0,
};

pub const A100: GpuModel = GpuModel {
    name: "NVIDIA A100-SXM4-80GB",
    memory_bytes: 85_899_345_920,
    power_limit_mw: 400_000,
    idle_power_mw: 58_000,
    sm_mhz: 1410,
    mem_mhz: 1593,
    speed: 0.46,
};

/// The Blackwell node's devices. This demo has no Blackwell hardware: the name is what the
/// emulated node reports, and its CUDA results are the demo's simulation (labelled so).
pub const B200: GpuModel = GpuModel {
    name: "NVIDIA B200",
    memory_bytes: 192_265_846_784,
    power_limit_mw: 1_000_000,
    idle_power_mw: 140_000,
    sm_mhz: 1965,
    mem_mhz: 3996,
    speed: 1.9,
};

/// One GPU of a worker.
#[derive(Debug, Clone)]
pub struct Gpu {
    /// The one canonical form, `0000:18:00.0`: what dispatch requests and events name (the
    /// kernel log's lines print it without the function, `0000:18:00`).
    pub pci: String,
    /// NVML form, `00000000:18:00.0`: what telemetry and preflights name.
    pub nvml_pci: String,
    pub uuid: String,
    pub index: u64,
}

/// A GPU node of the lab.
#[derive(Debug, Clone)]
pub struct Worker {
    pub name: &'static str,
    pub model: GpuModel,
    pub gpus: Vec<Gpu>,
    /// When the node last booted (dmesg timestamps count from here).
    pub booted_ns: i64,
}

/// PCI buses of each worker's two GPUs. The two H100 nodes are the same build, so their GPUs
/// have the same bus ids, as in a real lab: Xids and telemetry carry their node's name, and
/// the audit and the GPU health keep (host, PCI id) apart.
const NODES: [(&str, GpuModel, [u8; 2]); 4] = [
    ("gpu-node-1", H100, [0x18, 0x2a]),
    ("gpu-node-2", H100, [0x18, 0x2a]),
    ("gpu-node-3", A100, [0x9a, 0xab]),
    ("gpu-node-4", B200, [0xca, 0xdb]),
];

/// Index of the node whose GPU falls off the bus and goes into maintenance.
pub const MAINTENANCE_WORKER: usize = 2;
/// Index of the node whose preflight fails for a few hours (scratch disk full).
pub const PREFLIGHT_FAIL_WORKER: usize = 1;
/// Index of the Blackwell node, whose preflight agent stops near the end (stale preflight).
pub const BLACKWELL_WORKER: usize = 3;

pub fn workers(rng: &mut StdRng, start_ns: i64) -> Vec<Worker> {
    NODES
        .iter()
        .map(|(name, model, buses)| Worker {
            name,
            model: *model,
            gpus: buses
                .iter()
                .enumerate()
                .map(|(i, bus)| Gpu {
                    pci: format!("0000:{bus:02x}:00.0"),
                    nvml_pci: format!("00000000:{bus:02X}:00.0"),
                    uuid: gpu_uuid(rng),
                    index: i as u64,
                })
                .collect(),
            booted_ns: start_ns - rng.gen_range(2 * DAY..20 * DAY),
        })
        .collect()
}

fn gpu_uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.r#gen();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("GPU-{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

/// The people who write artifacts and claims (each with an author key).
pub const AUTHORS: [&str; 3] = ["mchen", "apatel", "jkim"];

/// Every producer of the lab, each with its own key.
pub struct Keys {
    pub admin: SignerKey,
    pub dispatcher: SignerKey,
    pub auditor: SignerKey,
    /// One per worker, same order as [`workers`]; role `runner` (which may also emit
    /// everything a worker may).
    pub runners: Vec<SignerKey>,
    /// One per [`AUTHORS`].
    pub authors: Vec<SignerKey>,
}

impl Keys {
    /// Key names and the role each is registered with (the admin key is named in genesis).
    pub fn registrations(&self) -> Vec<(&SignerKey, &'static str)> {
        let mut out = vec![(&self.dispatcher, "dispatcher"), (&self.auditor, "auditor")];
        out.extend(self.runners.iter().map(|k| (k, "runner")));
        out.extend(self.authors.iter().map(|k| (k, "author")));
        out
    }
}

/// The names of the keys of [`Keys`], in the order they are generated.
pub fn key_names() -> Vec<String> {
    let mut out = vec!["admin".to_owned(), "dispatcher".to_owned(), "auditor".to_owned()];
    out.extend(NODES.iter().map(|(n, _, _)| format!("runner-{n}")));
    out.extend(AUTHORS.iter().map(|a| format!("author-{a}")));
    out
}

/// How big a history to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Runs queued over the history (training runs, kernel campaigns, and the handful the
    /// scenario needs: refused, cancelled, still running).
    pub runs: u32,
    /// `artifact.submitted` events, roughly.
    pub artifacts: u32,
    /// Points per metric series of a finished run.
    pub points: u32,
    /// Days of lab history.
    pub days: u32,
    /// Kernel campaign runs (at least two: one CPU regression, one Blackwell bring-up).
    pub campaigns: u32,
}

impl Scale {
    pub fn small() -> Scale {
        Scale { runs: 24, artifacts: 40, points: 10, days: 8, campaigns: 2 }
    }

    pub fn default_size() -> Scale {
        Scale { runs: 240, artifacts: 400, points: 36, days: 42, campaigns: 6 }
    }

    pub fn large() -> Scale {
        Scale { runs: 1000, artifacts: 1600, points: 48, days: 120, campaigns: 16 }
    }

    pub fn span_ns(&self) -> i64 {
        i64::from(self.days) * DAY
    }
}

/// Research projects and what their runs measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Project {
    Pretrain,
    FlashAttn,
    Moe,
    Vit,
    Tokenizer,
    /// Kernel campaigns (CPU regression and Blackwell bring-up).
    Kernels,
}

impl Project {
    pub const TRAINING: [Project; 5] =
        [Project::Pretrain, Project::FlashAttn, Project::Moe, Project::Vit, Project::Tokenizer];

    pub fn name(self) -> &'static str {
        match self {
            Project::Pretrain => "llm-pretrain-1b",
            Project::FlashAttn => "flash-attn-repro",
            Project::Moe => "moe-router-ablation",
            Project::Vit => "vit-finetune",
            Project::Tokenizer => "tokenizer-scaling",
            Project::Kernels => "fp4-gemm-sweep",
        }
    }

    /// Relative share of training runs.
    pub fn weight(self) -> u32 {
        match self {
            Project::Pretrain => 5,
            Project::FlashAttn => 3,
            Project::Moe => 4,
            Project::Vit => 3,
            Project::Tokenizer => 2,
            Project::Kernels => 0,
        }
    }

    /// Configurations an experiment of this project may try, as (config tag, quality
    /// offset): a negative offset lowers the loss (or raises the throughput) a little.
    pub fn configs(self) -> &'static [(&'static str, f64)] {
        match self {
            Project::Pretrain => &[
                ("baseline-lr3e-4", 0.0),
                ("lr6e-4", -0.02),
                ("lr1.2e-3", 0.05),
                ("qk-norm", -0.03),
                ("muon", -0.045),
                ("zloss-1e-4", -0.01),
                ("rope-base-500k", -0.015),
                ("data-mix-v3", -0.035),
            ],
            Project::FlashAttn => &[
                ("baseline-seqlen2k", 0.0),
                ("seqlen8k-causal", -0.04),
                ("seqlen16k-causal", -0.06),
                ("headdim128", -0.02),
                ("fp8-fwd", -0.12),
            ],
            Project::Moe => &[
                ("baseline-top1", 0.0),
                ("top2", -0.03),
                ("expert-choice", -0.02),
                ("aux-loss-1e-3", -0.01),
                ("64-experts", -0.04),
                ("shared-expert", -0.025),
            ],
            Project::Vit => &[
                ("baseline-vit-b16", 0.0),
                ("mixup-cutmix", -0.02),
                ("layer-decay-0.75", -0.03),
                ("randaug-m9", -0.015),
                ("lr-warmup-10ep", -0.005),
            ],
            Project::Tokenizer => {
                &[("baseline-bpe-32k", 0.0), ("bpe-64k", -0.015), ("unigram-64k", -0.01), ("bpe-128k", -0.02)]
            }
            Project::Kernels => &[("smoke", 0.0), ("blackwell-fp4", 0.0)],
        }
    }

    /// The training script and the container image its runs use.
    pub fn command(self, config: &str, seed: u32) -> Vec<String> {
        let (script, cfg) = match self {
            Project::Pretrain => ("train_lm.py", format!("configs/lm-1b/{config}.yaml")),
            Project::FlashAttn => ("bench_attention.py", format!("configs/attn/{config}.yaml")),
            Project::Moe => ("train_moe.py", format!("configs/moe/{config}.yaml")),
            Project::Vit => ("finetune_vit.py", format!("configs/vit/{config}.yaml")),
            Project::Tokenizer => ("train_lm.py", format!("configs/tok/{config}.yaml")),
            Project::Kernels => {
                return vec![
                    "assay".into(),
                    "run".into(),
                    "campaign".into(),
                    format!("kernels/campaigns/{config}.toml"),
                    "--backend".into(),
                    if config == "blackwell-fp4" { "cuda".into() } else { "cpu".into() },
                ];
            }
        };
        vec!["python".into(), script.into(), "--config".into(), cfg, "--seed".into(), seed.to_string()]
    }
}

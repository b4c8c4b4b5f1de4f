//! Metric series of the training runs: loss curves that follow power laws in the step count,
//! validation every few points, learning-rate schedules with warmup and cosine decay,
//! throughput plateaus that scale with the GPU, and seed-to-seed noise.

use assay_projections::audit::Agg;
use rand::Rng;
use rand::rngs::StdRng;

use super::lab::Project;

/// Which direction of a metric is better (claims phrase thresholds accordingly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: &'static str,
    /// Recorded at every `every`-th point.
    pub every: u32,
    pub better: Better,
    /// Decimal places kept.
    pub decimals: i32,
}

const fn def(name: &'static str, unit: &'static str, every: u32, better: Better, decimals: i32) -> MetricDef {
    MetricDef { name, unit, every, better, decimals }
}

use Better::{Higher, Lower};

const PRETRAIN: &[MetricDef] = &[
    def("train/loss", "nats", 1, Lower, 4),
    def("val/loss", "nats", 3, Lower, 4),
    def("lr", "1", 1, Lower, 8),
    def("grad_norm", "1", 1, Lower, 3),
    def("tokens_per_s", "tok/s", 1, Higher, 0),
];
const FLASH_ATTN: &[MetricDef] = &[
    def("fwd/tflops", "TFLOP/s", 1, Higher, 1),
    def("bwd/tflops", "TFLOP/s", 1, Higher, 1),
    def("step_time_ms", "ms", 1, Lower, 2),
];
const MOE: &[MetricDef] = &[
    def("train/loss", "nats", 1, Lower, 4),
    def("val/loss", "nats", 3, Lower, 4),
    def("router/aux_loss", "1", 1, Lower, 5),
    def("router/load_cv", "1", 2, Lower, 4),
    def("tokens_per_s", "tok/s", 2, Higher, 0),
];
const VIT: &[MetricDef] =
    &[def("train/loss", "nats", 1, Lower, 4), def("val/acc", "%", 2, Higher, 2), def("lr", "1", 1, Lower, 8)];
const TOKENIZER: &[MetricDef] =
    &[def("train/loss", "nats", 1, Lower, 4), def("val/bpb", "bits/byte", 2, Lower, 4)];

pub fn defs(project: Project) -> &'static [MetricDef] {
    match project {
        Project::Pretrain => PRETRAIN,
        Project::FlashAttn => FLASH_ATTN,
        Project::Moe => MOE,
        Project::Vit => VIT,
        Project::Tokenizer => TOKENIZER,
        Project::Kernels => &[],
    }
}

/// The metric an experiment's headline claims are about.
pub fn headline(project: Project) -> &'static str {
    match project {
        Project::Pretrain | Project::Moe => "val/loss",
        Project::FlashAttn => "fwd/tflops",
        Project::Vit => "val/acc",
        Project::Tokenizer => "val/bpb",
        Project::Kernels => "",
    }
}

/// A metric some authors cite that these runs never log.
pub fn never_logged(project: Project) -> &'static str {
    match project {
        Project::Pretrain => "eval/hellaswag_acc",
        Project::FlashAttn => "fwd/tflops_p99",
        Project::Moe => "eval/mmlu_5shot",
        Project::Vit => "val/acc_top5",
        Project::Tokenizer => "eval/compression_ratio",
        Project::Kernels => "kernel/occupancy",
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: u64,
    pub value: f64,
    /// Where in the run it was logged, in (0, 1].
    pub frac: f64,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub def: MetricDef,
    pub points: Vec<Point>,
}

/// Training steps of a full run.
fn total_steps(project: Project) -> u64 {
    match project {
        Project::Pretrain => 20_000,
        Project::FlashAttn => 2_000,
        Project::Moe => 16_000,
        Project::Vit => 30_000,
        Project::Tokenizer => 12_000,
        Project::Kernels => 1,
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Gaussian noise (Box–Muller) with standard deviation `sd`.
fn noise(rng: &mut StdRng, sd: f64) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen_range(0.0..1.0);
    sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The series of one run: `points` points over the whole run, of which those logged before
/// `done` (the fraction of the run completed before it ended) are kept. `offset` is the
/// configuration's quality offset, `seed_offset` the seed's, `speed` the GPU's.
pub fn series(
    project: Project,
    offset: f64,
    seed_offset: f64,
    speed: f64,
    points: u32,
    done: f64,
    rng: &mut StdRng,
) -> Vec<Series> {
    let steps = total_steps(project);
    let q = offset + seed_offset;
    let points = points.max(3);
    let spike_at = rng.gen_range(points / 3..points);
    defs(project)
        .iter()
        .map(|def| {
            let mut out = Vec::new();
            for i in 0..points {
                if (i + 1) % def.every != 0 && i + 1 != points {
                    continue;
                }
                let frac = f64::from(i + 1) / f64::from(points);
                if frac > done {
                    break;
                }
                let step = (steps as f64 * frac).round() as u64;
                let s = step as f64;
                let warm = (s / (0.02 * steps as f64)).min(1.0);
                let cosine = 0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos());
                let value = match (project, def.name) {
                    (Project::Pretrain, "train/loss") => {
                        (2.45 + q + 8.4 * (1.0 + s / 120.0).powf(-0.55)) * (1.0 + noise(rng, 0.006))
                    }
                    (Project::Pretrain, "val/loss") => {
                        (2.48 + q + 8.4 * (1.0 + s / 120.0).powf(-0.55)) * (1.0 + noise(rng, 0.002))
                    }
                    (Project::Pretrain, "lr") => 3e-4 * (1.0 - 2.0 * offset).clamp(0.5, 4.0) * warm * cosine,
                    (Project::Pretrain, "grad_norm") => {
                        let spike = if i == spike_at { rng.gen_range(1.5..4.0) } else { 0.0 };
                        0.22 + 1.4 * (-s / 3000.0).exp() + spike + noise(rng, 0.02).abs()
                    }
                    (Project::Pretrain | Project::Moe, "tokens_per_s") => {
                        let base = if project == Project::Moe { 96_000.0 } else { 138_000.0 };
                        base * speed
                            * (1.0 - offset)
                            * (1.0 + noise(rng, 0.012))
                            * if i == 0 { 0.8 } else { 1.0 }
                    }
                    (Project::FlashAttn, "fwd/tflops") => {
                        let warmup = if i < 2 { 0.6 + 0.2 * f64::from(i) } else { 1.0 };
                        335.0 * speed * (1.0 - 2.0 * q) * warmup * (1.0 + noise(rng, 0.008))
                    }
                    (Project::FlashAttn, "bwd/tflops") => {
                        let warmup = if i < 2 { 0.6 + 0.2 * f64::from(i) } else { 1.0 };
                        241.0 * speed * (1.0 - 2.0 * q) * warmup * (1.0 + noise(rng, 0.01))
                    }
                    (Project::FlashAttn, "step_time_ms") => {
                        let warmup = if i < 2 { 0.6 + 0.2 * f64::from(i) } else { 1.0 };
                        31.5 / (speed * (1.0 - 2.0 * q) * warmup) * (1.0 + noise(rng, 0.01))
                    }
                    (Project::Moe, "train/loss") => {
                        (2.62 + q + 7.9 * (1.0 + s / 150.0).powf(-0.5)) * (1.0 + noise(rng, 0.007))
                    }
                    (Project::Moe, "val/loss") => {
                        (2.66 + q + 7.9 * (1.0 + s / 150.0).powf(-0.5)) * (1.0 + noise(rng, 0.0025))
                    }
                    (Project::Moe, "router/aux_loss") => {
                        (0.0118 + 0.05 * (-s / 2500.0).exp()) * (1.0 + noise(rng, 0.03))
                    }
                    (Project::Moe, "router/load_cv") => {
                        (0.15 + 2.0 * q.max(-0.05) + 0.8 * (-s / 4000.0).exp()) * (1.0 + noise(rng, 0.02))
                    }
                    (Project::Vit, "train/loss") => {
                        (0.55 + q + 1.8 * (-s / 6000.0).exp()) * (1.0 + noise(rng, 0.01))
                    }
                    (Project::Vit, "val/acc") => {
                        100.0 * (0.835 - 2.0 * q - 0.7 * (-s / 5000.0).exp()) + noise(rng, 0.12)
                    }
                    (Project::Vit, "lr") => 1e-3 * warm * cosine,
                    (Project::Tokenizer, "train/loss") => {
                        (2.9 + q + 7.2 * (1.0 + s / 100.0).powf(-0.5)) * (1.0 + noise(rng, 0.006))
                    }
                    (Project::Tokenizer, "val/bpb") => {
                        (0.905 + q + 0.6 * (1.0 + s / 200.0).powf(-0.5)) * (1.0 + noise(rng, 0.002))
                    }
                    _ => 0.0,
                };
                out.push(Point { step, value: round(value.max(0.0), def.decimals), frac });
            }
            Series { def: *def, points: out }
        })
        .collect()
}

/// Every aggregation, in the order the generator draws them.
pub const AGGS: [Agg; 4] = [Agg::Last, Agg::Min, Agg::Max, Agg::Mean];

/// `agg` of the points as the run logged them (`last` = the value at the highest step), in
/// binary64: the demo's model of what the audit computes exactly.
pub fn aggregate(agg: Agg, points: &[Point]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    Some(match agg {
        Agg::Last => points.iter().max_by_key(|p| p.step)?.value,
        Agg::Min => points.iter().map(|p| p.value).fold(f64::INFINITY, f64::min),
        Agg::Max => points.iter().map(|p| p.value).fold(f64::NEG_INFINITY, f64::max),
        Agg::Mean => points.iter().map(|p| p.value).sum::<f64>() / points.len() as f64,
    })
}

/// Decimal places to state a threshold near `value` with.
fn places(value: f64) -> i32 {
    let a = value.abs();
    if a >= 1000.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 0.1 {
        3
    } else {
        6
    }
}

/// A decimal string comfortably above `value` (by `rel` of it, at least one unit of the
/// last place), rounded up.
pub fn above(value: f64, rel: f64) -> String {
    let d = places(value);
    let unit = 10f64.powi(-d);
    let target = value + (value.abs() * rel).max(unit);
    format_decimal((target / unit).ceil() * unit, d)
}

/// A decimal string comfortably below `value`, rounded down.
pub fn below(value: f64, rel: f64) -> String {
    let d = places(value);
    let unit = 10f64.powi(-d);
    let target = value - (value.abs() * rel).max(unit);
    format_decimal((target / unit).floor() * unit, d)
}

fn format_decimal(value: f64, decimals: i32) -> String {
    let text = format!("{value:.prec$}", prec = decimals.max(0) as usize);
    match text.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn thresholds_clear_the_value() {
        for v in [2.9512, 0.00028, 131_072.0, 83.45, -0.042, 0.0] {
            assert!(above(v, 0.01).parse::<f64>().unwrap() > v, "{v}");
            assert!(below(v, 0.01).parse::<f64>().unwrap() < v, "{v}");
        }
        assert_eq!(above(2.9512, 0.01), "2.981");
    }

    #[test]
    fn loss_goes_down_and_points_stop_at_done() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = series(Project::Pretrain, 0.0, 0.0, 1.0, 20, 0.5, &mut rng);
        let loss = &s.iter().find(|s| s.def.name == "train/loss").unwrap().points;
        assert_eq!(loss.len(), 10);
        assert!(loss[0].value > loss[9].value);
        assert!(loss.windows(2).all(|w| w[0].step < w[1].step));
    }
}

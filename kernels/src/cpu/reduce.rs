//! Sum reduction.

/// The CPU kernel: each `block`-sized chunk is summed in f64, then the chunk sums are added
/// pairwise (as the GPU's per-block partials are), and the total rounded to f32 once.
pub fn reduce_sum(x: &[f32], block: usize) -> f32 {
    let partials: Vec<f64> =
        x.chunks(block.max(1)).map(|chunk| chunk.iter().map(|&v| f64::from(v)).sum()).collect();
    sum_partials(&partials)
}

/// Adds per-block partial sums pairwise and rounds the total to f32 (shared by the CPU
/// kernel and the CUDA backend, whose blocks produce the partials).
pub fn sum_partials(partials: &[f64]) -> f32 {
    pairwise(partials) as f32
}

fn pairwise(values: &[f64]) -> f64 {
    match values.len() {
        0 => 0.0,
        1 => values[0],
        n => {
            let (left, right) = values.split_at(n / 2);
            pairwise(left) + pairwise(right)
        }
    }
}

/// The scalar reference: one f64 accumulator, left to right.
pub fn reduce_sum_reference(x: &[f32]) -> f32 {
    let mut total = 0.0f64;
    for &value in x {
        total += f64::from(value);
    }
    total as f32
}

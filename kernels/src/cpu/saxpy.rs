//! saxpy: `out[i] = alpha · x[i] + y[i]`.

/// The CPU kernel: one fused multiply-add per element (as the GPU contracts it).
pub fn saxpy(alpha: f32, x: &[f32], y: &[f32]) -> Vec<f32> {
    x.iter().zip(y).map(|(&x, &y)| alpha.mul_add(x, y)).collect()
}

/// The scalar reference, in f64.
pub fn saxpy_reference(alpha: f32, x: &[f32], y: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len().min(y.len()) {
        out.push((f64::from(alpha) * f64::from(x[i]) + f64::from(y[i])) as f32);
    }
    out
}

//! Row softmax of a row-major `rows × cols` matrix, numerically stable (the row maximum is
//! subtracted before exponentiating).

/// The CPU kernel, in f32.
pub fn softmax_rows(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols);
    for row in x.chunks(cols.max(1)).take(rows) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let start = out.len();
        let mut sum = 0.0f32;
        for &value in row {
            let e = (value - max).exp();
            sum += e;
            out.push(e);
        }
        for value in &mut out[start..] {
            *value /= sum;
        }
    }
    out
}

/// The scalar reference, in f64.
pub fn softmax_rows_reference(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        let mut max = f64::NEG_INFINITY;
        for c in 0..cols {
            max = max.max(f64::from(x[r * cols + c]));
        }
        let mut sum = 0.0f64;
        for c in 0..cols {
            sum += (f64::from(x[r * cols + c]) - max).exp();
        }
        for c in 0..cols {
            out[r * cols + c] = ((f64::from(x[r * cols + c]) - max).exp() / sum) as f32;
        }
    }
    out
}

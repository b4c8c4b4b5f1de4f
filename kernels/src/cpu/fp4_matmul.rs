//! Block-scaled FP4 dequantize-matmul: `C[m×n] = A[m×k] · Wᵀ`, with `A` in f32 and `W` an
//! `n×k` [`QuantizedMatrix`] (weights quantized along K).

use super::formats::{QuantizedMatrix, e2m1_decode};

/// The CPU kernel: for each output, each K block's E2M1 products are summed in f32 and
/// multiplied by the block's scale once (as the CUDA kernel does), accumulating in f32.
pub fn fp4_dequant_matmul(a: &[f32], w: &QuantizedMatrix, m: usize) -> Vec<f32> {
    let (n, k) = (w.rows as usize, w.cols as usize);
    let block_len = w.format.block_len();
    let mut c = vec![0.0f32; m * n];
    for row in 0..m {
        let a_row = &a[row * k..(row + 1) * k];
        for col in 0..n {
            let mut acc = 0.0f32;
            for (block, a_block) in a_row.chunks(block_len).enumerate() {
                let mut partial = 0.0f32;
                for (offset, &a_value) in a_block.iter().enumerate() {
                    let code = w.code(col, block * block_len + offset);
                    partial = a_value.mul_add(e2m1_decode(code), partial);
                }
                acc = partial.mul_add(w.block_scale(col, block), acc);
            }
            c[row * n + col] = acc;
        }
    }
    c
}

/// The scalar reference: dequantize `W` completely, then the triple loop in f64.
pub fn fp4_dequant_matmul_reference(a: &[f32], w: &QuantizedMatrix, m: usize) -> Vec<f32> {
    let (n, k) = (w.rows as usize, w.cols as usize);
    let dense = w.dequantize();
    let mut c = vec![0.0f32; m * n];
    for row in 0..m {
        for col in 0..n {
            let mut acc = 0.0f64;
            for kk in 0..k {
                acc += f64::from(a[row * k + kk]) * f64::from(dense[col * k + kk]);
            }
            c[row * n + col] = acc as f32;
        }
    }
    c
}

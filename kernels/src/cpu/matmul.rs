//! Row-major f32 matrix product `C[m×n] = A[m×k] · B[k×n]`.

/// The CPU kernel: `tile × tile` blocks of C, walking K in `tile`-wide steps, f32
/// accumulation (the loop structure of the CUDA kernel's shared-memory tiles).
pub fn matmul_tiled(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, tile: usize) -> Vec<f32> {
    tiled(a, b, m, n, k, tile, TileBound::Correct)
}

/// The same kernel with a deliberate off-by-one: inside each K tile the inner loop stops one
/// element short, so the last column of every A tile (and the last row of every B tile) is
/// never accumulated. Every output misses `ceil(k / tile)` products, so the result is wrong
/// on every machine; it exists to exercise the failure path.
pub fn matmul_tiled_broken(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, tile: usize) -> Vec<f32> {
    tiled(a, b, m, n, k, tile, TileBound::OffByOne)
}

#[derive(Clone, Copy, PartialEq)]
enum TileBound {
    Correct,
    OffByOne,
}

fn tiled(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, tile: usize, bound: TileBound) -> Vec<f32> {
    let tile = tile.max(1);
    let mut c = vec![0.0f32; m * n];
    for row0 in (0..m).step_by(tile) {
        let row_end = (row0 + tile).min(m);
        for col0 in (0..n).step_by(tile) {
            let col_end = (col0 + tile).min(n);
            for k0 in (0..k).step_by(tile) {
                let mut k_end = (k0 + tile).min(k);
                if bound == TileBound::OffByOne {
                    k_end -= 1;
                }
                for row in row0..row_end {
                    for col in col0..col_end {
                        let mut acc = c[row * n + col];
                        for kk in k0..k_end {
                            acc = a[row * k + kk].mul_add(b[kk * n + col], acc);
                        }
                        c[row * n + col] = acc;
                    }
                }
            }
        }
    }
    c
}

/// The scalar reference: the triple loop, f64 accumulation.
pub fn matmul_reference(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for row in 0..m {
        for col in 0..n {
            let mut acc = 0.0f64;
            for kk in 0..k {
                acc += f64::from(a[row * k + kk]) * f64::from(b[kk * n + col]);
            }
            c[row * n + col] = acc as f32;
        }
    }
    c
}

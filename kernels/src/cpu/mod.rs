//! The CPU backend: reference kernels, the FP4 formats, a seeded input generator, and
//! checking outputs against plain scalar references.

mod check;
pub mod formats;
mod fp4_matmul;
mod matmul;
mod reduce;
mod rng;
mod saxpy;
mod softmax;
mod spec;

pub use check::{CpuLaunch, Evaluation, evaluate, max_abs_err, run_cpu_checked};
pub use formats::{Fp4Format, QuantizedMatrix};
pub use fp4_matmul::{fp4_dequant_matmul, fp4_dequant_matmul_reference};
pub use matmul::{matmul_reference, matmul_tiled, matmul_tiled_broken};
pub use reduce::{reduce_sum, reduce_sum_reference, sum_partials};
pub use rng::{InputRange, SplitMix64, fill};
pub use saxpy::{saxpy, saxpy_reference};
pub use softmax::{softmax_rows, softmax_rows_reference};
pub use spec::{Inputs, KernelSpec, MAX_ELEMENTS, MAX_REDUCE_BLOCK, MAX_TILE};

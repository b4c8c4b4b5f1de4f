//! Kernels, their variants and their inputs.

use serde::{Deserialize, Serialize};

use super::formats::{Fp4Format, QuantizedMatrix};
use super::rng::{InputRange, SplitMix64, fill};
use super::{fp4_matmul, matmul, reduce, saxpy, softmax};
use crate::digest::{Buffer, digest_buffers};
use crate::error::KernelError;

/// The most elements any one buffer of a variant may hold (64 MiB of f32).
pub const MAX_ELEMENTS: u64 = 1 << 24;

/// The largest matmul tile (a `tile × tile` CUDA thread block must fit in 1024 threads).
pub const MAX_TILE: u32 = 32;

/// The largest reduction block (threads per CUDA block).
pub const MAX_REDUCE_BLOCK: u32 = 1024;

/// One kernel with its variant parameters. Serialises as `{"kernel": "<name>", …params}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kernel", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KernelSpec {
    /// `out = alpha · x + y` over `n` elements.
    Saxpy {
        /// Elements.
        n: u32,
        /// The scalar.
        alpha: f32,
    },
    /// The sum of `n` elements, in partial sums of `block` elements.
    ReduceSum {
        /// Elements.
        n: u32,
        /// Elements per partial sum (threads per CUDA block); a power of two.
        block: u32,
    },
    /// `C[m×n] = A[m×k] · B[k×n]` in `tile × tile` tiles.
    MatmulTiled {
        /// Rows of A and C.
        m: u32,
        /// Columns of B and C.
        n: u32,
        /// Columns of A, rows of B.
        k: u32,
        /// Tile edge.
        tile: u32,
    },
    /// [`KernelSpec::MatmulTiled`] with a deliberate off-by-one tile bound (CPU only).
    MatmulTiledBroken {
        /// Rows of A and C.
        m: u32,
        /// Columns of B and C.
        n: u32,
        /// Columns of A, rows of B.
        k: u32,
        /// Tile edge.
        tile: u32,
    },
    /// Softmax of each row of a `rows × cols` matrix.
    SoftmaxRows {
        /// Rows.
        rows: u32,
        /// Columns.
        cols: u32,
    },
    /// `C[m×n] = A[m×k] · Wᵀ` with `W` (`n×k`) in block-scaled FP4.
    Fp4DequantMatmul {
        /// Rows of A and C.
        m: u32,
        /// Rows of W, columns of C.
        n: u32,
        /// Columns of A and W.
        k: u32,
        /// MXFP4 or NVFP4.
        format: Fp4Format,
    },
}

/// A kernel's inputs. Buffers are generated in the order of their fields from one
/// [`SplitMix64`] stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Inputs {
    /// saxpy.
    Saxpy {
        /// x.
        x: Vec<f32>,
        /// y.
        y: Vec<f32>,
    },
    /// reduce_sum.
    ReduceSum {
        /// The values.
        x: Vec<f32>,
    },
    /// matmul_tiled and matmul_tiled_broken.
    Matmul {
        /// A, row-major m×k.
        a: Vec<f32>,
        /// B, row-major k×n.
        b: Vec<f32>,
    },
    /// softmax_rows.
    SoftmaxRows {
        /// The matrix, row-major.
        x: Vec<f32>,
    },
    /// fp4_dequant_matmul: A in f32, W drawn in f32 and then quantized.
    Fp4Matmul {
        /// A, row-major m×k.
        a: Vec<f32>,
        /// W, n×k.
        w: QuantizedMatrix,
    },
}

impl Inputs {
    /// blake3 over the buffers, each length-prefixed (see [`crate::digest`]), in field
    /// order; for FP4 weights: packed codes, scale codes, then the tensor scale as one f32.
    pub fn digest(&self) -> String {
        match self {
            Inputs::Saxpy { x, y } => digest_buffers(&[Buffer::F32(x), Buffer::F32(y)]),
            Inputs::ReduceSum { x } | Inputs::SoftmaxRows { x } => digest_buffers(&[Buffer::F32(x)]),
            Inputs::Matmul { a, b } => digest_buffers(&[Buffer::F32(a), Buffer::F32(b)]),
            Inputs::Fp4Matmul { a, w } => digest_buffers(&[
                Buffer::F32(a),
                Buffer::Bytes(&w.codes),
                Buffer::Bytes(&w.scales),
                Buffer::F32(&[w.tensor_scale]),
            ]),
        }
    }
}

fn elements(dims: &[u32]) -> u64 {
    dims.iter().map(|&d| u64::from(d)).product()
}

impl KernelSpec {
    /// The kernel's name (`saxpy`, `reduce_sum`, `matmul_tiled`, `matmul_tiled_broken`,
    /// `softmax_rows`, `fp4_dequant_matmul`).
    pub fn name(&self) -> &'static str {
        match self {
            KernelSpec::Saxpy { .. } => "saxpy",
            KernelSpec::ReduceSum { .. } => "reduce_sum",
            KernelSpec::MatmulTiled { .. } => "matmul_tiled",
            KernelSpec::MatmulTiledBroken { .. } => "matmul_tiled_broken",
            KernelSpec::SoftmaxRows { .. } => "softmax_rows",
            KernelSpec::Fp4DequantMatmul { .. } => "fp4_dequant_matmul",
        }
    }

    /// The variant parameters as a JSON object (the serialised spec without `kernel`).
    pub fn variant(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.remove("kernel");
        }
        value
    }

    /// Whether a CUDA source exists for this kernel (the broken variant is CPU only).
    pub fn has_cuda_kernel(&self) -> bool {
        !matches!(self, KernelSpec::MatmulTiledBroken { .. })
    }

    /// Values in the output.
    pub fn output_len(&self) -> usize {
        match *self {
            KernelSpec::Saxpy { n, .. } => n as usize,
            KernelSpec::ReduceSum { .. } => 1,
            KernelSpec::MatmulTiled { m, n, .. }
            | KernelSpec::MatmulTiledBroken { m, n, .. }
            | KernelSpec::Fp4DequantMatmul { m, n, .. } => m as usize * n as usize,
            KernelSpec::SoftmaxRows { rows, cols } => rows as usize * cols as usize,
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> KernelError {
        KernelError::InvalidVariant { kernel: self.name(), reason: reason.into() }
    }

    /// Checks the parameters: non-zero sizes, at most [`MAX_ELEMENTS`] per buffer, tiles in
    /// `1..=MAX_TILE`, reduction blocks a power of two up to [`MAX_REDUCE_BLOCK`], finite alpha.
    pub fn validate(&self) -> Result<(), KernelError> {
        let buffers: Vec<u64> = match *self {
            KernelSpec::Saxpy { n, alpha } => {
                if !alpha.is_finite() {
                    return Err(self.invalid("alpha must be finite"));
                }
                vec![elements(&[n])]
            }
            KernelSpec::ReduceSum { n, block } => {
                if !block.is_power_of_two() || block > MAX_REDUCE_BLOCK {
                    return Err(self.invalid(format!(
                        "block must be a power of two up to {MAX_REDUCE_BLOCK}, got {block}"
                    )));
                }
                vec![elements(&[n])]
            }
            KernelSpec::MatmulTiled { m, n, k, tile } | KernelSpec::MatmulTiledBroken { m, n, k, tile } => {
                if tile == 0 || tile > MAX_TILE {
                    return Err(self.invalid(format!("tile must be 1..={MAX_TILE}, got {tile}")));
                }
                vec![elements(&[m, k]), elements(&[k, n]), elements(&[m, n])]
            }
            KernelSpec::SoftmaxRows { rows, cols } => vec![elements(&[rows, cols])],
            KernelSpec::Fp4DequantMatmul { m, n, k, .. } => {
                vec![elements(&[m, k]), elements(&[n, k]), elements(&[m, n])]
            }
        };
        if buffers.contains(&0) {
            return Err(self.invalid("every dimension must be at least 1"));
        }
        if let Some(too_big) = buffers.iter().find(|&&count| count > MAX_ELEMENTS) {
            return Err(self.invalid(format!("a buffer of {too_big} elements exceeds {MAX_ELEMENTS}")));
        }
        Ok(())
    }

    /// Deterministic inputs for this variant from `seed`, drawn uniformly from `range`.
    pub fn generate(&self, seed: u64, range: InputRange) -> Result<Inputs, KernelError> {
        self.validate()?;
        range.validate()?;
        let mut rng = SplitMix64::new(seed);
        let mut draw = |count: usize| fill(&mut rng, count, range);
        Ok(match *self {
            KernelSpec::Saxpy { n, .. } => {
                let x = draw(n as usize);
                let y = draw(n as usize);
                Inputs::Saxpy { x, y }
            }
            KernelSpec::ReduceSum { n, .. } => Inputs::ReduceSum { x: draw(n as usize) },
            KernelSpec::MatmulTiled { m, n, k, .. } | KernelSpec::MatmulTiledBroken { m, n, k, .. } => {
                let a = draw(m as usize * k as usize);
                let b = draw(k as usize * n as usize);
                Inputs::Matmul { a, b }
            }
            KernelSpec::SoftmaxRows { rows, cols } => {
                Inputs::SoftmaxRows { x: draw(rows as usize * cols as usize) }
            }
            KernelSpec::Fp4DequantMatmul { m, n, k, format } => {
                let a = draw(m as usize * k as usize);
                let dense = draw(n as usize * k as usize);
                let w = QuantizedMatrix::quantize(format, n, k, &dense)?;
                Inputs::Fp4Matmul { a, w }
            }
        })
    }

    fn mismatch(&self, reason: impl Into<String>) -> KernelError {
        KernelError::InputMismatch { kernel: self.name(), reason: reason.into() }
    }

    fn expect_len(&self, what: &str, values: &[f32], len: usize) -> Result<(), KernelError> {
        if values.len() == len {
            Ok(())
        } else {
            Err(self.mismatch(format!("{what} has {} values, expected {len}", values.len())))
        }
    }

    /// Checks that `inputs` are of this kernel's kind and shape.
    pub fn check_inputs(&self, inputs: &Inputs) -> Result<(), KernelError> {
        self.validate()?;
        match (*self, inputs) {
            (KernelSpec::Saxpy { n, .. }, Inputs::Saxpy { x, y }) => {
                self.expect_len("x", x, n as usize)?;
                self.expect_len("y", y, n as usize)
            }
            (KernelSpec::ReduceSum { n, .. }, Inputs::ReduceSum { x }) => self.expect_len("x", x, n as usize),
            (
                KernelSpec::MatmulTiled { m, n, k, .. } | KernelSpec::MatmulTiledBroken { m, n, k, .. },
                Inputs::Matmul { a, b },
            ) => {
                self.expect_len("a", a, m as usize * k as usize)?;
                self.expect_len("b", b, k as usize * n as usize)
            }
            (KernelSpec::SoftmaxRows { rows, cols }, Inputs::SoftmaxRows { x }) => {
                self.expect_len("x", x, rows as usize * cols as usize)
            }
            (KernelSpec::Fp4DequantMatmul { m, n, k, format }, Inputs::Fp4Matmul { a, w }) => {
                self.expect_len("a", a, m as usize * k as usize)?;
                if w.format != format || w.rows != n || w.cols != k {
                    return Err(self.mismatch(format!(
                        "w is {}×{} {}, expected {n}×{k} {}",
                        w.rows,
                        w.cols,
                        w.format.as_str(),
                        format.as_str()
                    )));
                }
                w.validate()
            }
            _ => Err(self.mismatch("inputs are for another kernel")),
        }
    }

    /// Runs the CPU backend's kernel.
    pub fn run_cpu(&self, inputs: &Inputs) -> Result<Vec<f32>, KernelError> {
        self.check_inputs(inputs)?;
        Ok(match (*self, inputs) {
            (KernelSpec::Saxpy { alpha, .. }, Inputs::Saxpy { x, y }) => saxpy::saxpy(alpha, x, y),
            (KernelSpec::ReduceSum { block, .. }, Inputs::ReduceSum { x }) => {
                vec![reduce::reduce_sum(x, block as usize)]
            }
            (KernelSpec::MatmulTiled { m, n, k, tile }, Inputs::Matmul { a, b }) => {
                matmul::matmul_tiled(a, b, m as usize, n as usize, k as usize, tile as usize)
            }
            (KernelSpec::MatmulTiledBroken { m, n, k, tile }, Inputs::Matmul { a, b }) => {
                matmul::matmul_tiled_broken(a, b, m as usize, n as usize, k as usize, tile as usize)
            }
            (KernelSpec::SoftmaxRows { rows, cols }, Inputs::SoftmaxRows { x }) => {
                softmax::softmax_rows(x, rows as usize, cols as usize)
            }
            (KernelSpec::Fp4DequantMatmul { m, .. }, Inputs::Fp4Matmul { a, w }) => {
                fp4_matmul::fp4_dequant_matmul(a, w, m as usize)
            }
            _ => return Err(self.mismatch("inputs are for another kernel")),
        })
    }

    /// Runs the plain scalar reference the outputs are checked against.
    pub fn reference(&self, inputs: &Inputs) -> Result<Vec<f32>, KernelError> {
        self.check_inputs(inputs)?;
        Ok(match (*self, inputs) {
            (KernelSpec::Saxpy { alpha, .. }, Inputs::Saxpy { x, y }) => saxpy::saxpy_reference(alpha, x, y),
            (KernelSpec::ReduceSum { .. }, Inputs::ReduceSum { x }) => {
                vec![reduce::reduce_sum_reference(x)]
            }
            (
                KernelSpec::MatmulTiled { m, n, k, .. } | KernelSpec::MatmulTiledBroken { m, n, k, .. },
                Inputs::Matmul { a, b },
            ) => matmul::matmul_reference(a, b, m as usize, n as usize, k as usize),
            (KernelSpec::SoftmaxRows { rows, cols }, Inputs::SoftmaxRows { x }) => {
                softmax::softmax_rows_reference(x, rows as usize, cols as usize)
            }
            (KernelSpec::Fp4DequantMatmul { m, .. }, Inputs::Fp4Matmul { a, w }) => {
                fp4_matmul::fp4_dequant_matmul_reference(a, w, m as usize)
            }
            _ => return Err(self.mismatch("inputs are for another kernel")),
        })
    }
}

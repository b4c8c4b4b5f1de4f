//! Block-scaled FP4 matrices: MXFP4 and NVFP4.
//!
//! A [`QuantizedMatrix`] holds `rows × cols` values, quantized along each row in blocks:
//!
//! - **MXFP4** (OCP MX v1.0): blocks of 32 E2M1 elements sharing one E8M0 scale;
//!   value = e2m1 · 2^(scale-127). `tensor_scale` is 1.
//! - **NVFP4**: blocks of 16 E2M1 elements sharing one E4M3 scale, plus one f32 per-tensor
//!   scale; value = e2m1 · (e4m3 · tensor_scale), the product in brackets taken in f32 first.
//!
//! Rows are padded with zero codes to a whole number of blocks (`padded_cols`), so each
//! row's codes start on a byte boundary: row r's codes are bytes
//! `r · padded_cols/2 .. (r+1) · padded_cols/2`, two per byte, low nibble first; its scales
//! are `scales[r · blocks_per_row ..]`.

use serde::{Deserialize, Serialize};

use super::e2m1::{E2M1_MAX, e2m1_decode, e2m1_encode};
use super::e4m3::{E4M3_MAX, E4M3_NAN, e4m3_decode, e4m3_encode};
use super::e8m0::{E8M0_NAN, e8m0_decode, e8m0_scale_for_block};
use super::pack::{pack_nibbles, unpack_nibble};
use crate::error::KernelError;

/// Which block-scaled FP4 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Fp4Format {
    /// E8M0 scale per 32 elements.
    Mxfp4,
    /// E4M3 scale per 16 elements, plus an f32 per-tensor scale.
    Nvfp4,
}

impl Fp4Format {
    /// Elements sharing one scale.
    pub fn block_len(self) -> usize {
        match self {
            Fp4Format::Mxfp4 => 32,
            Fp4Format::Nvfp4 => 16,
        }
    }

    /// The lowercase name used in variants.
    pub fn as_str(self) -> &'static str {
        match self {
            Fp4Format::Mxfp4 => "mxfp4",
            Fp4Format::Nvfp4 => "nvfp4",
        }
    }

    /// The decoded value of one scale code.
    pub fn decode_scale(self, code: u8) -> f32 {
        match self {
            Fp4Format::Mxfp4 => e8m0_decode(code),
            Fp4Format::Nvfp4 => e4m3_decode(code),
        }
    }
}

/// A matrix quantized to block-scaled FP4; see the module docs for the layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedMatrix {
    /// The layout.
    pub format: Fp4Format,
    /// Rows.
    pub rows: u32,
    /// Columns (unpadded).
    pub cols: u32,
    /// Packed E2M1 codes, `rows · padded_cols / 2` bytes.
    pub codes: Vec<u8>,
    /// Scale codes (E8M0 or E4M3), `rows · blocks_per_row` bytes.
    pub scales: Vec<u8>,
    /// NVFP4's per-tensor scale; 1 for MXFP4.
    pub tensor_scale: f32,
}

fn mismatch(reason: String) -> KernelError {
    KernelError::InputMismatch { kernel: "fp4_dequant_matmul", reason }
}

impl QuantizedMatrix {
    fn row_count(&self) -> usize {
        self.rows as usize
    }

    fn col_count(&self) -> usize {
        self.cols as usize
    }

    /// Scale blocks per row.
    pub fn blocks_per_row(&self) -> usize {
        self.col_count().div_ceil(self.format.block_len())
    }

    /// Columns padded to whole blocks.
    pub fn padded_cols(&self) -> usize {
        self.blocks_per_row() * self.format.block_len()
    }

    /// Quantizes row-major `values` (`rows × cols`).
    ///
    /// MXFP4 scales follow the MX rule ([`e8m0_scale_for_block`]). NVFP4 sets
    /// `tensor_scale = amax / (448 · 6)` over the finite values (1 if there are none or all
    /// are zero), each block's scale to `e4m3(block_amax / 6 / tensor_scale)`, and elements to
    /// `e2m1(x / (scale · tensor_scale))`. A block holding a NaN or infinity gets a NaN scale.
    pub fn quantize(format: Fp4Format, rows: u32, cols: u32, values: &[f32]) -> Result<Self, KernelError> {
        let (row_count, col_count) = (rows as usize, cols as usize);
        let expected = row_count.checked_mul(col_count);
        if expected != Some(values.len()) {
            return Err(mismatch(format!("{} values for a {rows}×{cols} matrix", values.len())));
        }
        let block_len = format.block_len();
        let blocks_per_row = col_count.div_ceil(block_len);
        let tensor_scale = match format {
            Fp4Format::Mxfp4 => 1.0,
            Fp4Format::Nvfp4 => {
                let amax = values.iter().filter(|v| v.is_finite()).fold(0.0f32, |acc, v| acc.max(v.abs()));
                if amax > 0.0 { amax / (E4M3_MAX * E2M1_MAX) } else { 1.0 }
            }
        };
        let mut element_codes = Vec::with_capacity(row_count * blocks_per_row * block_len);
        let mut scales = Vec::with_capacity(row_count * blocks_per_row);
        for row in values.chunks(col_count.max(1)).take(row_count) {
            for block in row.chunks(block_len) {
                let finite = block.iter().all(|v| v.is_finite());
                let amax = block.iter().fold(0.0f32, |acc, v| acc.max(v.abs()));
                let scale_code = match (format, finite) {
                    (Fp4Format::Mxfp4, false) => E8M0_NAN,
                    (Fp4Format::Nvfp4, false) => E4M3_NAN,
                    (Fp4Format::Mxfp4, true) => e8m0_scale_for_block(amax),
                    (Fp4Format::Nvfp4, true) => e4m3_encode(amax / E2M1_MAX / tensor_scale),
                };
                scales.push(scale_code);
                let scale = format.decode_scale(scale_code) * tensor_scale;
                for &value in block {
                    let code = if finite && scale > 0.0 { e2m1_encode(value / scale) } else { 0 };
                    element_codes.push(code);
                }
                element_codes.extend(std::iter::repeat_n(0, block_len - block.len()));
            }
        }
        Ok(QuantizedMatrix { format, rows, cols, codes: pack_nibbles(&element_codes), scales, tensor_scale })
    }

    /// Checks that the buffers have the sizes the shape implies.
    pub fn validate(&self) -> Result<(), KernelError> {
        let code_bytes = self.row_count().checked_mul(self.padded_cols() / 2);
        if code_bytes != Some(self.codes.len()) {
            return Err(mismatch(format!(
                "{} code bytes for {}×{} ({:?})",
                self.codes.len(),
                self.rows,
                self.cols,
                self.format
            )));
        }
        if self.row_count().checked_mul(self.blocks_per_row()) != Some(self.scales.len()) {
            return Err(mismatch(format!(
                "{} scales for {}×{} ({:?})",
                self.scales.len(),
                self.rows,
                self.cols,
                self.format
            )));
        }
        if self.format == Fp4Format::Mxfp4 && self.tensor_scale != 1.0 {
            return Err(mismatch("MXFP4 has no per-tensor scale".to_owned()));
        }
        Ok(())
    }

    /// The dequantization multiplier of one block (scale · tensor_scale).
    pub fn block_scale(&self, row: usize, block: usize) -> f32 {
        let code = self.scales.get(row * self.blocks_per_row() + block).copied().unwrap_or(E8M0_NAN);
        let code = if self.format == Fp4Format::Nvfp4 && code == E8M0_NAN { E4M3_NAN } else { code };
        self.format.decode_scale(code) * self.tensor_scale
    }

    /// The E2M1 code of one element (0 past the end).
    pub fn code(&self, row: usize, col: usize) -> u8 {
        unpack_nibble(&self.codes, row * self.padded_cols() + col).unwrap_or(0)
    }

    /// The dequantized value of one element.
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let block = col / self.format.block_len();
        e2m1_decode(self.code(row, col)) * self.block_scale(row, block)
    }

    /// All values, row-major `rows × cols`.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.row_count() * self.col_count());
        for row in 0..self.row_count() {
            for col in 0..self.col_count() {
                out.push(self.get(row, col));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mxfp4_block_of_representable_values_is_exact() {
        // amax 6 → scale 1: every E2M1 magnitude survives exactly.
        let mut row: Vec<f32> = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0].repeat(4);
        row[31] = -6.0;
        let q = QuantizedMatrix::quantize(Fp4Format::Mxfp4, 1, 32, &row).expect("quantize");
        assert_eq!(q.scales, vec![127]);
        assert_eq!(q.codes.len(), 16);
        assert_eq!(q.dequantize(), row);
    }

    #[test]
    fn mxfp4_scales_powers_of_two() {
        // Values 8× the E2M1 grid: scale 2^3, exact.
        let row: Vec<f32> = [0.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, -48.0].to_vec();
        let q = QuantizedMatrix::quantize(Fp4Format::Mxfp4, 1, 8, &row).expect("quantize");
        assert_eq!(q.scales, vec![130]);
        assert_eq!(q.padded_cols(), 32);
        assert_eq!(q.dequantize(), row);
    }

    #[test]
    fn nvfp4_uses_tensor_and_block_scales() {
        let row: Vec<f32> = (0..20).map(|i| (i as f32 - 10.0) * 0.3).collect();
        let q = QuantizedMatrix::quantize(Fp4Format::Nvfp4, 1, 20, &row).expect("quantize");
        q.validate().expect("valid");
        assert_eq!(q.blocks_per_row(), 2);
        assert_eq!(q.scales.len(), 2);
        assert!((q.tensor_scale - 3.0 / (448.0 * 6.0)).abs() < 1e-9);
        let back = q.dequantize();
        for (x, y) in row.iter().zip(&back) {
            // Half an E2M1 step at the top of the range is at most 1/6 of the block amax.
            assert!((x - y).abs() <= 3.0 / 6.0 + 1e-6, "{x} vs {y}");
        }
    }

    #[test]
    fn non_finite_blocks_get_nan_scales() {
        let mut row = vec![1.0f32; 40];
        row[3] = f32::NAN;
        let q = QuantizedMatrix::quantize(Fp4Format::Mxfp4, 1, 40, &row).expect("quantize");
        assert_eq!(q.scales[0], E8M0_NAN);
        assert!(q.get(0, 0).is_nan());
        assert_eq!(q.get(0, 35), 1.0);
        row[3] = f32::INFINITY;
        let q = QuantizedMatrix::quantize(Fp4Format::Nvfp4, 1, 40, &row).expect("quantize");
        assert_eq!(q.scales[0], E4M3_NAN);
        assert!(q.get(0, 0).is_nan());
        assert!((q.get(0, 20) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn shape_mismatches_are_errors() {
        assert!(QuantizedMatrix::quantize(Fp4Format::Mxfp4, 2, 3, &[0.0; 5]).is_err());
        assert!(QuantizedMatrix::quantize(Fp4Format::Mxfp4, u32::MAX, 3, &[0.0; 5]).is_err());
        let mut q = QuantizedMatrix::quantize(Fp4Format::Mxfp4, 2, 3, &[0.0; 6]).expect("quantize");
        q.codes.pop();
        assert!(q.validate().is_err());
    }
}

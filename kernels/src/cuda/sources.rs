//! The CUDA C sources of the kernels (`kernels/cuda/*.cu`), embedded at build time and
//! compiled with NVRTC at run time.

use crate::cpu::{Fp4Format, KernelSpec};

/// One `.cu` file and the `extern "C"` kernels it defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaSource {
    /// File name under `kernels/cuda/`.
    pub file: &'static str,
    /// The source text.
    pub source: &'static str,
    /// Names of its `extern "C" __global__` entry points.
    pub entry_points: &'static [&'static str],
}

/// `saxpy.cu`.
pub const SAXPY: CudaSource =
    CudaSource { file: "saxpy.cu", source: include_str!("../../cuda/saxpy.cu"), entry_points: &["saxpy"] };

/// `reduce_sum.cu`.
pub const REDUCE_SUM: CudaSource = CudaSource {
    file: "reduce_sum.cu",
    source: include_str!("../../cuda/reduce_sum.cu"),
    entry_points: &["reduce_sum"],
};

/// `matmul_tiled.cu`.
pub const MATMUL_TILED: CudaSource = CudaSource {
    file: "matmul_tiled.cu",
    source: include_str!("../../cuda/matmul_tiled.cu"),
    entry_points: &["matmul_tiled"],
};

/// `softmax_rows.cu`.
pub const SOFTMAX_ROWS: CudaSource = CudaSource {
    file: "softmax_rows.cu",
    source: include_str!("../../cuda/softmax_rows.cu"),
    entry_points: &["softmax_rows"],
};

/// `fp4_dequant_matmul.cu` (both layouts).
pub const FP4_DEQUANT_MATMUL: CudaSource = CudaSource {
    file: "fp4_dequant_matmul.cu",
    source: include_str!("../../cuda/fp4_dequant_matmul.cu"),
    entry_points: &["fp4_dequant_matmul_mxfp4", "fp4_dequant_matmul_nvfp4"],
};

/// Every embedded source.
pub const SOURCES: &[CudaSource] = &[SAXPY, REDUCE_SUM, MATMUL_TILED, SOFTMAX_ROWS, FP4_DEQUANT_MATMUL];

/// The source and entry point that run `spec`, or `None` for CPU-only kernels.
pub fn source_for(spec: &KernelSpec) -> Option<(CudaSource, &'static str)> {
    match spec {
        KernelSpec::Saxpy { .. } => Some((SAXPY, "saxpy")),
        KernelSpec::ReduceSum { .. } => Some((REDUCE_SUM, "reduce_sum")),
        KernelSpec::MatmulTiled { .. } => Some((MATMUL_TILED, "matmul_tiled")),
        KernelSpec::SoftmaxRows { .. } => Some((SOFTMAX_ROWS, "softmax_rows")),
        KernelSpec::Fp4DequantMatmul { format, .. } => Some((
            FP4_DEQUANT_MATMUL,
            match format {
                Fp4Format::Mxfp4 => "fp4_dequant_matmul_mxfp4",
                Fp4Format::Nvfp4 => "fp4_dequant_matmul_nvfp4",
            },
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_embedded_and_name_their_entry_points() {
        assert_eq!(SOURCES.len(), 5);
        for source in SOURCES {
            assert!(!source.source.trim().is_empty(), "{} is empty", source.file);
            assert!(!source.source.contains('\0'), "{} holds a NUL", source.file);
            assert!(!source.source.contains("#include"), "{} includes headers", source.file);
            assert!(!source.entry_points.is_empty());
            for entry in source.entry_points {
                let declaration = format!("extern \"C\" __global__ void {entry}(");
                assert!(source.source.contains(&declaration), "{} does not declare {entry}", source.file);
            }
        }
    }

    #[test]
    fn every_cuda_kernel_has_a_source() {
        let specs = [
            KernelSpec::Saxpy { n: 1, alpha: 1.0 },
            KernelSpec::ReduceSum { n: 1, block: 1 },
            KernelSpec::MatmulTiled { m: 1, n: 1, k: 1, tile: 1 },
            KernelSpec::SoftmaxRows { rows: 1, cols: 1 },
            KernelSpec::Fp4DequantMatmul { m: 1, n: 1, k: 1, format: Fp4Format::Mxfp4 },
            KernelSpec::Fp4DequantMatmul { m: 1, n: 1, k: 1, format: Fp4Format::Nvfp4 },
        ];
        for spec in specs {
            assert!(spec.has_cuda_kernel());
            let (source, entry) = source_for(&spec).expect("a source");
            assert!(source.entry_points.contains(&entry));
        }
        let broken = KernelSpec::MatmulTiledBroken { m: 1, n: 1, k: 1, tile: 1 };
        assert!(!broken.has_cuda_kernel());
        assert!(source_for(&broken).is_none());
    }
}

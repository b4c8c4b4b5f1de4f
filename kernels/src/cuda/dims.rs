//! Grid and block shapes of each CUDA kernel (pure; recorded with every launch).

use serde::{Deserialize, Serialize};

use crate::cpu::KernelSpec;

/// Threads per block of the element-wise and row kernels.
pub const ELEMENTWISE_BLOCK: u32 = 256;

/// Edge of the FP4 matmul's square thread block.
pub const FP4_BLOCK_EDGE: u32 = 16;

/// A launch configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchDims {
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Dynamic shared memory per block.
    pub shared_mem_bytes: u32,
}

/// The launch configuration for `spec`, or `None` for CPU-only kernels. Assumes a
/// validated spec (sizes within [`crate::cpu::MAX_ELEMENTS`], tiles within
/// [`crate::cpu::MAX_TILE`]).
pub fn launch_dims(spec: &KernelSpec) -> Option<LaunchDims> {
    let dims = match *spec {
        KernelSpec::Saxpy { n, .. } => LaunchDims {
            grid: [n.div_ceil(ELEMENTWISE_BLOCK), 1, 1],
            block: [ELEMENTWISE_BLOCK, 1, 1],
            shared_mem_bytes: 0,
        },
        KernelSpec::ReduceSum { n, block } => LaunchDims {
            grid: [n.div_ceil(block.max(1)), 1, 1],
            block: [block, 1, 1],
            shared_mem_bytes: block.saturating_mul(8),
        },
        KernelSpec::MatmulTiled { m, n, tile, .. } => LaunchDims {
            grid: [n.div_ceil(tile.max(1)), m.div_ceil(tile.max(1)), 1],
            block: [tile, tile, 1],
            shared_mem_bytes: tile.saturating_mul(tile).saturating_mul(8),
        },
        KernelSpec::SoftmaxRows { rows, .. } => LaunchDims {
            grid: [rows, 1, 1],
            block: [ELEMENTWISE_BLOCK, 1, 1],
            shared_mem_bytes: ELEMENTWISE_BLOCK * 4,
        },
        KernelSpec::Fp4DequantMatmul { m, n, .. } => LaunchDims {
            grid: [n.div_ceil(FP4_BLOCK_EDGE), m.div_ceil(FP4_BLOCK_EDGE), 1],
            block: [FP4_BLOCK_EDGE, FP4_BLOCK_EDGE, 1],
            shared_mem_bytes: 0,
        },
        _ => return None,
    };
    Some(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Fp4Format;

    #[test]
    fn shapes_cover_the_outputs() {
        let saxpy = launch_dims(&KernelSpec::Saxpy { n: 1000, alpha: 1.0 }).expect("dims");
        assert_eq!(saxpy.grid, [4, 1, 1]);
        let reduce = launch_dims(&KernelSpec::ReduceSum { n: 1025, block: 256 }).expect("dims");
        assert_eq!((reduce.grid, reduce.block, reduce.shared_mem_bytes), ([5, 1, 1], [256, 1, 1], 2048));
        let matmul = launch_dims(&KernelSpec::MatmulTiled { m: 33, n: 65, k: 7, tile: 16 }).expect("dims");
        assert_eq!((matmul.grid, matmul.block, matmul.shared_mem_bytes), ([5, 3, 1], [16, 16, 1], 2048));
        let softmax = launch_dims(&KernelSpec::SoftmaxRows { rows: 7, cols: 3 }).expect("dims");
        assert_eq!(softmax.grid, [7, 1, 1]);
        let fp4 =
            launch_dims(&KernelSpec::Fp4DequantMatmul { m: 17, n: 40, k: 64, format: Fp4Format::Nvfp4 })
                .expect("dims");
        assert_eq!(fp4.grid, [3, 2, 1]);
        assert!(launch_dims(&KernelSpec::MatmulTiledBroken { m: 1, n: 1, k: 1, tile: 1 }).is_none());
    }
}

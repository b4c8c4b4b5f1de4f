// matmul_tiled: C[M x N] = A[M x K] * B[K x N], row-major, f32, shared-memory tiles.
// Launch: block (tile, tile), tile <= 32; grid (ceil(N / tile), ceil(M / tile));
// shared 2 * tile * tile * 4 bytes.

extern "C" __global__ void matmul_tiled(const float* A, const float* B, float* C,
                                        unsigned int M, unsigned int N, unsigned int K,
                                        unsigned int tile) {
    extern __shared__ float smem[];
    float* As = smem;
    float* Bs = smem + tile * tile;
    unsigned int tx = threadIdx.x;
    unsigned int ty = threadIdx.y;
    unsigned int row = blockIdx.y * tile + ty;
    unsigned int col = blockIdx.x * tile + tx;
    float acc = 0.0f;
    for (unsigned int k0 = 0; k0 < K; k0 += tile) {
        unsigned int ak = k0 + tx;
        unsigned int bk = k0 + ty;
        As[ty * tile + tx] = (row < M && ak < K) ? A[row * K + ak] : 0.0f;
        Bs[ty * tile + tx] = (bk < K && col < N) ? B[bk * N + col] : 0.0f;
        __syncthreads();
        unsigned int k_end = (K - k0 < tile) ? (K - k0) : tile;
        for (unsigned int kk = 0; kk < k_end; ++kk) {
            acc = fmaf(As[ty * tile + kk], Bs[kk * tile + tx], acc);
        }
        __syncthreads();
    }
    if (row < M && col < N) {
        C[row * N + col] = acc;
    }
}

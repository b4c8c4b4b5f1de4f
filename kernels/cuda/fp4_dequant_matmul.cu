// fp4_dequant_matmul: C[M x N] = A[M x K] * W^T, A in f32, W (N x K) in block-scaled FP4.
//
// W's layout: each row padded with zero codes to whole blocks (padded = ceil(K / block) *
// block); row n's E2M1 codes are bytes [n * padded / 2, (n + 1) * padded / 2), two per byte,
// low nibble first; its scales are scales[n * padded / block ...].
//   MXFP4: block 32, E8M0 scales (2^(s - 127), 0xFF = NaN).
//   NVFP4: block 16, E4M3 scales (0x7F/0xFF = NaN) times a per-tensor f32 scale.
// Each block's products are summed, then multiplied by the block scale once.
// Launch: block (16, 16); grid (ceil(N / 16), ceil(M / 16)).

__device__ __forceinline__ float fp4_e2m1_decode(unsigned int code) {
    float v;
    switch (code & 7u) {
        case 0: v = 0.0f; break;
        case 1: v = 0.5f; break;
        case 2: v = 1.0f; break;
        case 3: v = 1.5f; break;
        case 4: v = 2.0f; break;
        case 5: v = 3.0f; break;
        case 6: v = 4.0f; break;
        default: v = 6.0f; break;
    }
    return (code & 8u) ? -v : v;
}

__device__ __forceinline__ float fp4_e8m0_decode(unsigned int code) {
    if (code == 0xFFu) {
        return __int_as_float(0x7fc00000); // NaN
    }
    if (code == 0u) {
        return __int_as_float(0x00400000); // 2^-127, subnormal
    }
    return __int_as_float((int)(code << 23));
}

__device__ __forceinline__ float fp4_e4m3_decode(unsigned int code) {
    unsigned int exponent = (code >> 3) & 0xFu;
    unsigned int mantissa = code & 7u;
    if (exponent == 0xFu && mantissa == 7u) {
        return __int_as_float(0x7fc00000); // NaN
    }
    float magnitude;
    if (exponent == 0u) {
        magnitude = (float)mantissa * __int_as_float((127 - 9) << 23); // m * 2^-9
    } else {
        magnitude = (float)(8u + mantissa) * __int_as_float((int)((exponent - 10u + 127u) << 23));
    }
    return (code & 0x80u) ? -magnitude : magnitude;
}

__device__ __forceinline__ void fp4_dequant_matmul_impl(
    const float* A, const unsigned char* Wq, const unsigned char* scales, float* C,
    unsigned int M, unsigned int N, unsigned int K, unsigned int block_len, int nvfp4,
    float tensor_scale) {
    unsigned int row = blockIdx.y * blockDim.y + threadIdx.y;
    unsigned int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= M || col >= N) {
        return;
    }
    unsigned int blocks = (K + block_len - 1) / block_len;
    unsigned int padded = blocks * block_len;
    const unsigned char* wrow = Wq + (unsigned long long)col * (padded / 2);
    const unsigned char* srow = scales + (unsigned long long)col * blocks;
    const float* arow = A + (unsigned long long)row * K;
    float acc = 0.0f;
    for (unsigned int b = 0; b < blocks; ++b) {
        float partial = 0.0f;
        for (unsigned int j = 0; j < block_len; ++j) {
            unsigned int k = b * block_len + j;
            if (k >= K) {
                break;
            }
            unsigned int byte = wrow[k >> 1];
            unsigned int code = (k & 1u) ? (byte >> 4) : (byte & 0xFu);
            partial = fmaf(arow[k], fp4_e2m1_decode(code), partial);
        }
        float scale = nvfp4 ? fp4_e4m3_decode(srow[b]) * tensor_scale
                            : fp4_e8m0_decode(srow[b]);
        acc = fmaf(partial, scale, acc);
    }
    C[row * N + col] = acc;
}

extern "C" __global__ void fp4_dequant_matmul_mxfp4(const float* A, const unsigned char* Wq,
                                                    const unsigned char* scales, float* C,
                                                    unsigned int M, unsigned int N,
                                                    unsigned int K) {
    fp4_dequant_matmul_impl(A, Wq, scales, C, M, N, K, 32u, 0, 1.0f);
}

extern "C" __global__ void fp4_dequant_matmul_nvfp4(const float* A, const unsigned char* Wq,
                                                    const unsigned char* scales, float* C,
                                                    unsigned int M, unsigned int N,
                                                    unsigned int K, float tensor_scale) {
    fp4_dequant_matmul_impl(A, Wq, scales, C, M, N, K, 16u, 1, tensor_scale);
}

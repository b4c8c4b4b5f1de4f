// softmax_rows: y = softmax(x) along each row of a row-major rows x cols matrix,
// subtracting the row maximum first. One block per row.
// Launch: block (B), B a power of two; grid (rows); shared B * 4 bytes.

extern "C" __global__ void softmax_rows(const float* x, float* y, unsigned int rows,
                                        unsigned int cols) {
    extern __shared__ float red[];
    unsigned int row = blockIdx.x;
    unsigned int tid = threadIdx.x;
    if (row >= rows) {
        return;
    }
    const float* xr = x + (unsigned long long)row * cols;
    float* yr = y + (unsigned long long)row * cols;

    float m = __int_as_float(0xff800000); // -infinity
    for (unsigned int c = tid; c < cols; c += blockDim.x) {
        m = fmaxf(m, xr[c]);
    }
    red[tid] = m;
    __syncthreads();
    for (unsigned int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) {
            red[tid] = fmaxf(red[tid], red[tid + stride]);
        }
        __syncthreads();
    }
    m = red[0];
    __syncthreads();

    float s = 0.0f;
    for (unsigned int c = tid; c < cols; c += blockDim.x) {
        s += expf(xr[c] - m);
    }
    red[tid] = s;
    __syncthreads();
    for (unsigned int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) {
            red[tid] += red[tid + stride];
        }
        __syncthreads();
    }
    s = red[0];

    for (unsigned int c = tid; c < cols; c += blockDim.x) {
        yr[c] = expf(xr[c] - m) / s;
    }
}

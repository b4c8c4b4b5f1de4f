// reduce_sum: each block sums blockDim.x consecutive elements in double and writes one
// partial; the host adds the partials pairwise (as the CPU reference kernel does).
// Launch: block (B), B a power of two <= 1024; grid (ceil(n / B)); shared B * 8 bytes.

extern "C" __global__ void reduce_sum(const float* x, double* partials, unsigned int n) {
    extern __shared__ double sdata[];
    unsigned int tid = threadIdx.x;
    unsigned int i = blockIdx.x * blockDim.x + tid;
    sdata[tid] = (i < n) ? (double)x[i] : 0.0;
    __syncthreads();
    for (unsigned int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) {
            sdata[tid] += sdata[tid + stride];
        }
        __syncthreads();
    }
    if (tid == 0) {
        partials[blockIdx.x] = sdata[0];
    }
}

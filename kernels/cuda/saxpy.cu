// saxpy: out[i] = alpha * x[i] + y[i].
// Launch: block (256), grid (ceil(n / 256)).

extern "C" __global__ void saxpy(const float* x, const float* y, float* out, float alpha,
                                 unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = fmaf(alpha, x[i], y[i]);
    }
}

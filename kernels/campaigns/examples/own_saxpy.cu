// A lab's own kernel, as a [[cuda]] campaign cell sees it (own-saxpy.toml).
//
// The ABI of [[cuda]] cells: extern "C" __global__, the input buffers in the order the table
// lists them, then the output buffer, then the output's length. Every buffer is f32. The
// table's `define` axes arrive as macros: here `alpha`.
//
// Three routes of out[i] = alpha * x[i] + y[i]:
//   saxpy_naive       one thread per element (the reference route)
//   saxpy_strided     a grid-stride loop (must agree with naive bit for bit)
//   saxpy_off_by_one  a deliberate bug: the last element is never written

extern "C" __global__ void saxpy_naive(const float* x, const float* y, float* out, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = fmaf((float)(alpha), x[i], y[i]);
    }
}

extern "C" __global__ void saxpy_strided(const float* x, const float* y, float* out, unsigned int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = fmaf((float)(alpha), x[i], y[i]);
    }
}

extern "C" __global__ void saxpy_off_by_one(const float* x, const float* y, float* out, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i + 1 < n) {
        out[i] = fmaf((float)(alpha), x[i], y[i]);
    }
}

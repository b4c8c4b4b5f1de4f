#!/usr/bin/env python3
"""torch.matmul on the cell's GPU in the cell's dtype, checked against a float64 reference.

Runs only where PyTorch sees a CUDA device; elsewhere it says why and exits 1 (a failed cell,
never a pass). The cell arrives in ASSAY_CELL; the result goes out as one ASSAY_RESULT line.
"""
import json
import os
import sys

cell = json.loads(os.environ.get("ASSAY_CELL", "{}"))
try:
    import torch
except ImportError:
    print("not run: PyTorch is not installed here", file=sys.stderr)
    sys.exit(1)
if not torch.cuda.is_available():
    print("not run: PyTorch sees no CUDA device here", file=sys.stderr)
    sys.exit(1)

m, n, k = int(cell.get("m", 1024)), int(cell.get("n", 1024)), int(cell.get("k", 1024))
dtype = getattr(torch, cell.get("dtype", "float32"))
generator = torch.Generator(device="cuda").manual_seed(int(cell.get("seed", 0)))
a = torch.rand((m, k), device="cuda", generator=generator) * 2 - 1
b = torch.rand((k, n), device="cuda", generator=generator) * 2 - 1
want = a.double() @ b.double()
a, b = a.to(dtype), b.to(dtype)
a @ b  # warm-up
torch.cuda.synchronize()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
c = a @ b
end.record()
torch.cuda.synchronize()
duration_us = int(start.elapsed_time(end) * 1000)
if not torch.isfinite(c).all():
    print("ASSAY_RESULT " + json.dumps({"max_abs_err": float("nan")}))
    sys.exit(0)
err = (c.double() - want).abs().max().item()
# Tolerances scale with the dtype's precision and the reduction length.
eps = {torch.float32: 1.2e-7, torch.float16: 9.8e-4, torch.bfloat16: 7.8e-3}[dtype]
tolerance = eps * k ** 0.5 * 4
print("ASSAY_RESULT " + json.dumps({
    "passed": err <= tolerance,
    "max_abs_err": err,
    "duration_us": duration_us,
    "tflops": 2 * m * n * k / max(duration_us, 1) / 1e6,
    "tolerance": tolerance,
}))

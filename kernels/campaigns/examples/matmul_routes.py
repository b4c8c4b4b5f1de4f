#!/usr/bin/env python3
"""A stand-in for a lab's own kernel benchmark, runnable anywhere (pure Python).

It multiplies two seeded m x m matrices on one "route" and checks the result against a
straightforward reference, the way a real benchmark checks a CUTLASS or CuTe-DSL path
against a reference path. Routes:

  reference  the straightforward triple loop (always passes)
  blocked    a blocked loop order (passes)
  crash      dies with SIGSEGV part-way, like a kernel that takes the process down
  oob        prints the message PyTorch prints after an illegal memory access, exits 1
  wrong      returns a result with an off-by-one block bound (fails its tolerance)

The cell arrives in ASSAY_CELL (JSON); the result goes out as one ASSAY_RESULT line.
"""
import json
import os
import signal
import sys
import time


def matrix(m, seed):
    # A small linear congruential generator: the same inputs on every machine.
    state = seed * 2654435761 % 2**32 or 1
    out = []
    for _ in range(m * m):
        state = (1103515245 * state + 12345) % 2**31
        out.append(state / 2**31 * 2.0 - 1.0)
    return out


def reference(a, b, m):
    c = [0.0] * (m * m)
    for i in range(m):
        for k in range(m):
            aik = a[i * m + k]
            for j in range(m):
                c[i * m + j] += aik * b[k * m + j]
    return c


def blocked(a, b, m, block=8, broken=False):
    c = [0.0] * (m * m)
    for i0 in range(0, m, block):
        for k0 in range(0, m, block):
            # The broken variant stops each k block one short.
            k_end = min(k0 + block - (1 if broken else 0), m)
            for i in range(i0, min(i0 + block, m)):
                for k in range(k0, k_end):
                    aik = a[i * m + k]
                    for j in range(m):
                        c[i * m + j] += aik * b[k * m + j]
    return c


def main():
    cell = json.loads(os.environ.get("ASSAY_CELL", "{}"))
    m = int(cell.get("m", sys.argv[1] if len(sys.argv) > 1 else 16))
    route = cell.get("route", sys.argv[2] if len(sys.argv) > 2 else "reference")
    seed = int(cell.get("seed", 1))
    a, b = matrix(m, seed), matrix(m, seed + 1)
    print(f"matmul_routes: m={m} route={route} seed={seed}", flush=True)
    start = time.perf_counter()
    if route == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if route == "oob":
        print("Traceback (most recent call last):", file=sys.stderr)
        print('  File "matmul_routes.py", line 1, in <module>', file=sys.stderr)
        print("RuntimeError: CUDA error: an illegal memory access was encountered", file=sys.stderr)
        print("CUDA kernel errors might be asynchronously reported at some other API call, "
              "so the stacktrace below might be incorrect.", file=sys.stderr)
        sys.exit(1)
    if route == "reference":
        c = reference(a, b, m)
    elif route in ("blocked", "wrong"):
        c = blocked(a, b, m, broken=(route == "wrong"))
    else:
        print(f"unknown route {route!r}", file=sys.stderr)
        sys.exit(2)
    duration_us = int((time.perf_counter() - start) * 1e6)
    want = reference(a, b, m)
    err = max(abs(x - y) for x, y in zip(c, want))
    flops = 2.0 * m * m * m
    print("ASSAY_RESULT " + json.dumps({
        "passed": err <= 1e-9,
        "max_abs_err": err,
        "duration_us": duration_us,
        "mflops": flops / max(duration_us, 1),
    }), flush=True)


if __name__ == "__main__":
    main()

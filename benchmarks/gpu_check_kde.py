"""KDE bounds on CUDA against the CPU: agreement (bits) and time, both bounds in one pass (< 3 min).

The kernel runs on the device of its input tensor: distances in float64, exponentials in float32, sums
accumulated in float64 on either device. The two devices must agree within 1e-5 bits (the package's
tolerance against a float64 reference). Prints the machine, each case's times and the largest difference.

    python benchmarks/gpu_check_kde.py            # N = 20,000 (d = 10) and N = 10,000 (d = 512)
    python benchmarks/gpu_check_kde.py --quick    # N = 4,096 (d = 10) and N = 2,000 (d = 512)
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch

from infoplane.estimators import KDEEstimator


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def layer(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20))
    h = np.tanh(x @ rng.normal(size=(20, d)) / 3).astype(np.float32)
    return h, (x[:, :4].argmax(1)).astype(np.int64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.platform()} | torch {torch.__version__} | {torch.get_num_threads()} CPU threads")
    if not torch.cuda.is_available():
        print("CUDA not available: nothing to compare (CPU-only machine).")
        return 0
    print(f"GPU: {torch.cuda.get_device_name(0)}")
    cases = [(4096, 10, 1e-1), (2000, 512, 10.0)] if args.quick else [(20_000, 10, 1e-1), (10_000, 512, 10.0)]
    ok = True
    for n, d, var in cases:
        h, y = layer(n, d)
        est = KDEEstimator(var, "both", memory_mb=1024)
        h_gpu = torch.from_numpy(h).cuda()
        est.estimate_bounds(h_gpu[:100], y[:100])  # warm-up: CUDA context and kernels
        gpu, t_gpu = _timed(lambda h_gpu=h_gpu, y=y, est=est: est.estimate_bounds(h_gpu, y))
        cpu, t_cpu = _timed(lambda h=h, y=y, est=est: est.estimate_bounds(h, y))
        diff = max(max(abs(gpu[k].I_XT - cpu[k].I_XT), abs(gpu[k].I_TY - cpu[k].I_TY)) for k in cpu)
        ok &= diff < 1e-5
        print(f"N = {n:>6,}, d = {d:>4}, sigma^2 = {var:g}: CPU {t_cpu:7.2f} s | GPU {t_gpu:7.3f} s | "
              f"speed-up {t_cpu / t_gpu:6.1f}x | max |GPU - CPU| = {diff:.1e} bits "
              f"(upper I_XT {cpu['upper'].I_XT:.4f}, lower I_XT {cpu['lower'].I_XT:.4f}, "
              f"upper I_TY {cpu['upper'].I_TY:.4f})")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run the k-NN, critic and noisy-layer estimators on CUDA (if available) and compare with the CPU (< 3 min).

The k-NN estimators count integers: on the same float64 data the GPU must give the CPU's bits to 1e-9
(max norm exactly; Euclidean after the direct recomputation near each radius). The critic trains in float32
with other kernels, so its held-out value agrees only within training noise (reported, checked loosely).
Prints times on both devices.

    python benchmarks/gpu_check.py            # N = 20,000, d = 100 for k-NN
    python benchmarks/gpu_check.py --quick    # N = 4,000
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def _timed(fn, *args):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from infoplane.estimators import CriticEstimator, KNNEstimator, NoisyEstimator
    from infoplane.estimators.knn import ksg_mi

    if not torch.cuda.is_available():
        print("CUDA not available: nothing to compare (CPU-only machine).")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    n, d = (4000, 100) if args.quick else (20000, 100)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    t = rng.normal(size=(n, d)) + 0.5 * np.eye(10)[y] @ rng.normal(size=(10, d))
    target = t[:, :1] + rng.normal(size=(n, 1))
    t_gpu = torch.as_tensor(t, device="cuda")
    failures = 0
    checks = [
        ("ross max", lambda a: KNNEstimator(metric="max").estimate(a, y).conventions["I_TY_raw"]),
        ("ross euclid", lambda a: KNNEstimator(metric="euclidean").estimate(a, y).conventions["I_TY_raw"]),
        ("ksg max", lambda a: ksg_mi(a, target if not isinstance(a, torch.Tensor) else torch.as_tensor(target, device="cuda"))),
        ("ksg euclid", lambda a: ksg_mi(a, target if not isinstance(a, torch.Tensor) else torch.as_tensor(target, device="cuda"),
                                        metric="euclidean")),
    ]
    for label, fn in checks:
        (gpu, s_gpu) = _timed(fn, t_gpu)
        (cpu, s_cpu) = _timed(fn, t)
        ok = abs(gpu - cpu) <= 1e-9
        failures += not ok
        print(f"{label:<12} N={n} d={d}: cpu {cpu:.9f} bits in {s_cpu:6.2f} s, gpu {gpu:.9f} bits in {s_gpu:6.2f} s "
              f"({s_cpu / s_gpu:.0f}x); |diff| {abs(gpu - cpu):.1e} {'OK' if ok else 'MISMATCH'}", flush=True)
    m = 4000
    crit = CriticEstimator("infonce", epochs=30, patience=30)
    (rc, s_cpu) = _timed(lambda: crit.estimate(t[:m], y[:m]).I_TY)
    (rg, s_gpu) = _timed(lambda: crit.estimate(t_gpu[:m], y[:m]).I_TY)
    ok = abs(rc - rg) < 0.1
    failures += not ok
    print(f"critic InfoNCE N={m} d={d}: cpu {rc:.3f} bits in {s_cpu:.1f} s, gpu {rg:.3f} bits in {s_gpu:.1f} s; "
          f"|diff| {abs(rc - rg):.3f} (float32 training, tolerance 0.1) {'OK' if ok else 'MISMATCH'}", flush=True)
    noisy = NoisyEstimator(noise_std=1.0, n_draws=4)
    (nc, s_cpu) = _timed(lambda: noisy.estimate(t[:m], y[:m]))
    (ng, s_gpu) = _timed(lambda: noisy.estimate(t_gpu[:m], y[:m]))
    diff = max(abs(nc.I_XT - ng.I_XT), abs(nc.I_TY - ng.I_TY))
    ok = diff < 1e-6
    failures += not ok
    print(f"noisy N={m} d={d}: cpu I_XT {nc.I_XT:.6f} in {s_cpu:.1f} s, gpu {ng.I_XT:.6f} in {s_gpu:.1f} s; "
          f"|diff| {diff:.1e} {'OK' if ok else 'MISMATCH'}", flush=True)
    print("all agree" if not failures else f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

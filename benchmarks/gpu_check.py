"""ONE short prepared GPU check: every estimator that runs on a device, on ``--device`` against the CPU.

k-NN (Ross max / Euclidean, KSG max / Euclidean), KDE (both bounds), the critic (InfoNCE), the probe
(torch L-BFGS), the noisy estimator and the latent estimator (when this infoplane has them) each run on the
CPU and on the device from the same float64 data; a compact table prints the bits on both, the difference
against its tolerance, and the times. Tolerances: k-NN counts integers from exact float64 distances on
both devices, so its bits must be identical (0); KDE 1e-5 bits (float32 exponentials); the noisy
estimator 1e-6; the probe 0.01 bits (float32 L-BFGS, a convex objective: the same optimum to the solver's
tolerance); the critic and the latent estimator 0.15 bits (float32 training with other kernels: training
noise). Meant to finish in <= 4 minutes on an H200 machine; the code never needs a GPU.

    python benchmarks/gpu_check.py                      # on cuda (the integrator runs this once)
    python benchmarks/gpu_check.py --device cpu --quick # a dry run on the CPU (both columns CPU)
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _machine import describe


def _sync(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, device: str):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def _layer(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    t = rng.normal(size=(n, d)) + 0.5 * np.eye(10)[y] @ rng.normal(size=(10, d))
    return t, y, t[:, :1] + rng.normal(size=(n, 1))


def _checks(device: str, quick: bool) -> list:
    import infoplane.estimators as E
    from infoplane.estimators import KDEEstimator, KNNEstimator, ProbeEstimator
    from infoplane.estimators.knn import ksg_mi

    n_knn = 4000 if quick else 20_000
    n_small = 1000 if quick else 4000
    n_probe, d_probe = (2000, 256) if quick else (10_000, 1024)
    checks = [
        ("ross max", n_knn, 100, 0.0, lambda t, y, s, dev: KNNEstimator(metric="max").estimate(t, y).I_TY),
        ("ross euclid", n_knn, 100, 0.0, lambda t, y, s, dev: KNNEstimator(metric="euclidean").estimate(t, y).I_TY),
        ("ksg max", n_knn, 100, 0.0, lambda t, y, s, dev: ksg_mi(t, s)),
        ("ksg euclid", n_knn, 100, 0.0, lambda t, y, s, dev: ksg_mi(t, s, metric="euclidean")),
        ("kde upper", n_knn // 2, 512, 1e-5, lambda t, y, s, dev: KDEEstimator(10.0).estimate(t, y).I_XT),
        ("probe", n_probe, d_probe, 0.01,
         lambda t, y, s, dev: ProbeEstimator(device=dev, warm_start=False).estimate(t, y).I_TY),
        ("critic infonce", n_small, 100, 0.15,
         lambda t, y, s, dev: E.CriticEstimator("infonce", epochs=30, patience=30).estimate(t, y).I_TY),
    ]
    if hasattr(E, "NoisyEstimator"):
        checks.append(("noisy I_XT", n_small, 100, 1e-6,
                       lambda t, y, s, dev: E.NoisyEstimator(noise_std=1.0, n_draws=4).estimate(t, y).I_XT))
    if hasattr(E, "LatentMIEstimator"):
        checks.append(("latent", n_small, 100, 0.15,
                       lambda t, y, s, dev: E.LatentMIEstimator(device=dev).estimate(t, y).I_TY))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a dry run)")
    args = parser.parse_args()
    dev = args.device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA not available: nothing to compare (pass --device cpu for a dry run).")
        return 0
    print(f"machine: {describe('scipy')}")
    if dev.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(0)}")
        torch.zeros(1, device=dev)  # the CUDA context, outside the timings
    print(f"{'check':<15} {'N':>6} {'d':>5} {'cpu bits':>12} {dev + ' bits':>12} {'|diff|':>8} {'tol':>7} "
          f"{'cpu s':>7} {dev + ' s':>7}  ok")
    failures = 0
    for label, n, d, tol, fn in _checks(dev, args.quick):
        t, y, s = _layer(n, d)
        t_dev, s_dev = torch.as_tensor(t, device=dev), torch.as_tensor(s, device=dev)
        cpu, s_cpu = _timed(lambda fn=fn, t=t, y=y, s=s: fn(t, y, s, "cpu"), "cpu")
        on_dev, s_on = _timed(lambda fn=fn, y=y, t_dev=t_dev, s_dev=s_dev: fn(t_dev, y, s_dev, dev), dev)
        diff = abs(float(cpu) - float(on_dev))
        ok = diff <= tol
        failures += not ok
        print(f"{label:<15} {n:>6} {d:>5} {float(cpu):>12.6f} {float(on_dev):>12.6f} {diff:>8.1e} {tol:>7.2g} "
              f"{s_cpu:>7.2f} {s_on:>7.2f}  {'OK' if ok else 'MISMATCH'}", flush=True)
    print("all agree" if not failures else f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

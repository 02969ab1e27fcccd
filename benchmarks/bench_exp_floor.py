"""The exponent floor of the mixture kernels, side by side with the plain exponential, on a real network's layers.

On the CPU, float64 ``exp`` of an argument below about −708 (a subnormal or zero result) is 8–20x slower
than elsewhere. Sums of mixture densities are made mostly of such terms when the components are far apart:
a deterministic layer seen through small noise (the noisy estimator on a trained network's layers), or sharp
VIB posteriors (the variational estimators' aggregate p(z)). The package's kernels now raise every exponent
below −708, relative to its row's largest term (e^0 = 1), to −708 before ``exp``; nothing else changed.

This benchmark uses public names only. On the ConvNet of `bench_plane.py` (10,000 digits, 5 layers) at a few
recorded epochs it builds the noisy estimator's blocks (4,096 Monte Carlo points z = t + 0.1 ε against all
10,000 rows: ln φ_j(z_p) up to a constant) and times, best of ``--repeat`` interleaved runs, the step that
changed: the row sums of exp(block − row max) plain and floored, checking that the log-sums are identical.
It then times `NoisyEstimator(noise_std=0.1)` itself on each layer (the package, floored). Last, the same
step for the aggregate p(z) of 5,000 Gaussian posteriors in 16 dimensions at σ = 1, 0.1 and 0.01
(``torch.logsumexp`` against the floored log-sum-exp).

    python benchmarks/bench_exp_floor.py              # epochs 0, 5 and 10
    python benchmarks/bench_exp_floor.py --quick      # N = 2,000, epochs 0 and 2
"""
from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
from _machine import describe

LAYERS = ["block1", "block2", "block3", "dense1", "dense2"]
FLOOR = 708.0  # e^-708 is still a normal float64 (the package's value)


def _sums_plain(block: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    return (block - top).exp_().sum(dim=1).log_()


def _sums_floored(block: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    return (block - top).clamp_(min=-FLOOR).exp_().sum(dim=1).log_()


def _best(fn, repeat: int) -> tuple[float, torch.Tensor]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _line(name: str, block: torch.Tensor, repeat: int) -> None:
    top = block.amax(dim=1, keepdim=True)
    plain, a = _best(lambda: _sums_plain(block, top), repeat)
    floored, b = _best(lambda: _sums_floored(block, top), repeat)
    below = float((block - top < -FLOOR).double().mean())
    same = "same" if torch.equal(a, b) else f"DIFFERENT (max {float((a - b).abs().max()):.1e})"
    print(f"{name:<30} {below:>8.1%} {plain:>8.3f} {floored:>8.3f} {plain / floored:>7.2f}x  {same:<5} "
          f"{os.getloadavg()[0]:>5.1f}", flush=True)


def _log_density_block(z: torch.Tensor, c: torch.Tensor, std: float) -> torch.Tensor:
    """−‖z_p − c_j‖² / (2 std²) for every point and centre (float64): ln φ_j(z_p) up to a constant."""
    sq = (z * z).sum(dim=1, keepdim=True) + (c * c).sum(dim=1)[None, :]
    return torch.addmm(sq, z, c.T, alpha=-2.0).mul_(-0.5 / std**2)


def _noisy_block(t: np.ndarray, std: float, points: int, gen: torch.Generator) -> torch.Tensor:
    """The block of ``points`` rows' draws z = t + std ε against every row (mean-centred)."""
    c = torch.tensor(t, dtype=torch.float64)
    c = c - c.mean(dim=0, keepdim=True)
    rows = torch.randperm(len(c), generator=gen)[:points]
    z = c[rows] + std * torch.randn((len(rows), c.shape[1]), generator=gen, dtype=torch.float64)
    return _log_density_block(z, c, std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 2,000 images, epochs 0 and 2")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    from bench_plane import _record

    from infoplane.estimators import NoisyEstimator

    print(f"machine: {describe('scipy')}")
    n, epochs = (2_000, [0, 2]) if args.quick else (10_000, [0, 5, 10])
    store, y = _record(n, max(epochs), "cpu")
    gen = torch.Generator().manual_seed(0)
    print(f"{'block (step that changed)':<30} {'< -708':>8} {'plain s':>8} {'floor s':>8} {'speedup':>8}  sums  load")
    layers = {(e, layer): np.asarray(store.activations(e, layer)) for e in epochs for layer in LAYERS}
    for (epoch, layer), t in layers.items():
        _line(f"noisy {layer} epoch {epoch} (d={t.shape[1]})", _noisy_block(t, 0.1, 4096, gen), args.repeat)
    mu = torch.randn(5_000, 16, generator=gen, dtype=torch.float64)
    z = mu + torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    for sigma in (1.0, 0.1, 0.01):
        block = _log_density_block(mu + sigma * (z - mu), mu, sigma)
        _line(f"aggregate p(z), sigma {sigma}", block, args.repeat)
    print(f"\n{'NoisyEstimator(noise_std=0.1)':<30} {'seconds':>8}  load")
    for (epoch, layer), t in layers.items():
        t0 = time.perf_counter()
        NoisyEstimator(noise_std=0.1).estimate(t, y)
        print(f"{layer + ' epoch ' + str(epoch):<30} {time.perf_counter() - t0:>8.2f}  {os.getloadavg()[0]:>5.1f}",
              flush=True)


if __name__ == "__main__":
    main()

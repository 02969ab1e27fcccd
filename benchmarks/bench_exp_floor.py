"""The exponent floor (`infoplane.estimators._kernels.fast_exp`), side by side with the plain exponential.

On the CPU, float64 ``exp`` of an argument below about −708 (a subnormal or zero result) is 8–20x slower
than elsewhere. Sums of mixture densities are made mostly of such terms when the components are far apart:
a deterministic layer seen through small noise (the noisy estimator on a real network's layers), or sharp
VIB posteriors (the variational estimators' aggregate p(z)). This benchmark times, in one process and
interleaved, both kernels with the floor (the package) and without it (the previous code: no clamp before
``exp``, ``torch.logsumexp``), and checks that the answers are the same:

1. `NoisyEstimator(noise_std=0.1)` on the ConvNet of `bench_plane.py` (10,000 digits, 5 layers) at a few
   recorded epochs;
2. the aggregate-posterior log-densities (`mixture_log_terms`) of 5,000 Gaussian posteriors in 16
   dimensions at σ = 1, 0.1 and 0.01.

    python benchmarks/bench_exp_floor.py              # epochs 0, 5 and 10 of the ConvNet
    python benchmarks/bench_exp_floor.py --quick      # N = 2,000, 2 epochs
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import time

import numpy as np
import torch
from _machine import describe

LAYERS = ["block1", "block2", "block3", "dense1", "dense2"]


@contextlib.contextmanager
def floor_off():
    """The previous kernels: no floor before exp in the mixture kernel, torch.logsumexp in the aggregate."""
    import infoplane.estimators._kernels.gaussian as gaussian
    import infoplane.estimators._kernels.mixture as mixture

    saved = mixture.EXP_FLOOR, gaussian.logsumexp_rows
    mixture.EXP_FLOOR = math.inf
    gaussian.logsumexp_rows = lambda x: torch.logsumexp(x, dim=1)
    try:
        yield
    finally:
        mixture.EXP_FLOOR, gaussian.logsumexp_rows = saved


def _timed(fn, off: bool):
    with floor_off() if off else contextlib.nullcontext():
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out


def _side_by_side(name: str, fn, repeat: int) -> None:
    """Best of ``repeat`` interleaved runs each way; the answers must agree exactly."""
    best = {False: math.inf, True: math.inf}
    answers = {}
    for _ in range(repeat):
        for off in (True, False):
            seconds, answers[off] = _timed(fn, off)
            best[off] = min(best[off], seconds)
    same = "same" if answers[True] == answers[False] else f"DIFFERENT {answers[True]} vs {answers[False]}"
    print(f"{name:<34} {best[True]:>8.2f} {best[False]:>8.2f} {best[True] / best[False]:>7.2f}x  {same:<5} "
          f"{os.getloadavg()[0]:>5.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 2,000 images, epochs 0 and 2")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    from bench_plane import _record

    from infoplane.estimators import NoisyEstimator
    from infoplane.estimators._kernels.gaussian import mixture_log_terms

    print(f"machine: {describe('scipy')}")
    n, epochs = (2_000, [0, 2]) if args.quick else (10_000, [0, 5, 10])
    store, y = _record(n, max(epochs), "cpu")
    print(f"{'case':<34} {'off (s)':>8} {'on (s)':>8} {'speedup':>8}  bits  load")
    for epoch in epochs:
        for layer in LAYERS:
            t = np.asarray(store.activations(epoch, layer))

            def noisy(t=t):
                r = NoisyEstimator(noise_std=0.1).estimate(t, y)
                return r.I_XT, r.I_TY

            _side_by_side(f"noisy {layer} epoch {epoch} (d={t.shape[1]})", noisy, args.repeat)
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(5_000, 16, generator=gen, dtype=torch.float64)
    eps = torch.randn(5_000, 1, 16, generator=gen, dtype=torch.float64)
    for sigma in (1.0, 0.1, 0.01):
        log_var = torch.full_like(mu, 2 * math.log(sigma))

        def aggregate(log_var=log_var):
            return tuple(float(o.sum()) for o in mixture_log_terms(mu, log_var, eps))

        _side_by_side(f"aggregate p(z), sigma {sigma}", aggregate, args.repeat)


if __name__ == "__main__":
    main()

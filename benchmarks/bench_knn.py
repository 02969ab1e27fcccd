"""The k-NN estimators against the matrix-multiply floor, side by side in one run, and their bits against the
direct float64 search they replaced.

The floor is the unavoidable work of a brute-force k-NN search: a chunked float32 Gram matrix by ``torch.mm``
and ``topk`` of each row, in the same blocks as the estimator. For each N and d (a 10-class layer) it times

- ``ross-euclid`` / ``ross-max``: `KNNEstimator` (Ross 2014), Euclidean / max norm (backend chosen
  automatically: KD-tree at low d, numba's float32 blocks elsewhere; printed);
- ``ksg-max``: `ksg_mi` between the layer and a 1-D continuous target;
- ``old-*``: the direct float64 search of before (tests/estimators/_knn_reference.py) where affordable
  (``--old-max-work``), and the difference in bits (must be exactly 0).

Every line carries the 1-minute load average: timings under load are not comparable with idle ones (the
ratios, measured side by side, are more robust). Rerun when the load is high.

    python benchmarks/bench_knn.py                   # N = 20,000, d = 10, 100, 1,000 (several minutes)
    python benchmarks/bench_knn.py --sizes 4000      # quick
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _machine import describe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _problem(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    t = rng.normal(size=(n, d)) + 0.5 * np.eye(10)[y] @ rng.normal(size=(10, d))
    return t, y, t[:, 0] + rng.normal(size=n)


def _reference():
    spec = importlib.util.spec_from_file_location("_knn_reference", ROOT / "tests/estimators/_knn_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _floor(t: np.ndarray, k: int = 3, memory_mb: float = 128.0) -> float:
    z = torch.as_tensor(t, dtype=torch.float32)
    n = len(z)
    step = max(1, min(n, int(memory_mb * 2**20 // (8 * n * 3))))  # the estimator's Ross blocks
    t0 = time.perf_counter()
    for s in range(0, n, step):
        torch.topk(z[s:s + step] @ z.T, k + 1, dim=1)
    return time.perf_counter() - t0


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _row(n, d, name, backend, sec, floor, bits=None, diff=""):
    bits_s = f"{bits:>9.4f}" if bits is not None else " " * 9
    print(f"{n:>6} {d:>5} {name:<12} {backend:<9} {sec:>8.2f} {sec / floor:>8.2f} {bits_s} {diff:>9} "
          f"{os.getloadavg()[0]:>5.1f}", flush=True)


def _ours(t, y, metric):
    from infoplane.estimators import KNNEstimator

    return KNNEstimator(metric=metric).estimate(t, y)


def _one_size(ref, n, d, args):
    from infoplane.estimators.knn import ksg_mi

    t, y, target = _problem(n, d)
    floor = _floor(t)
    _row(n, d, "floor", "mm+topk", floor, floor)
    for metric in ("euclidean", "max"):
        res, sec = _timed(_ours, t, y, metric)
        new = res.conventions["I_TY_raw"]
        diff = ""
        if float(n) * n * d <= (args.old_max_work if metric == "max" else args.old_euclid_work):
            old, old_sec = _timed(_old_ross, ref, t, y, metric)
            diff = "0 (same)" if old == new else f"{old - new:.1e}"
            _row(n, d, f"old-ross-{metric[:3]}", "float64", old_sec, floor, old)
        _row(n, d, f"ross-{metric[:3]}", res.conventions["backend"], sec, floor, new, diff)
    bits, sec = _timed(ksg_mi, t, target)
    _row(n, d, "ksg-max", "auto", sec, floor, bits)


def _old_ross(ref, t, y, metric, k=3):
    digamma_mean = ref.digamma_mean
    tt = torch.as_tensor(t)
    _, ids, counts = np.unique(y, return_inverse=True, return_counts=True)
    _, m = ref.ross_counts(tt, torch.as_tensor(ids), k, metric)
    psi = lambda v: float(torch.special.digamma(torch.tensor(float(v), dtype=torch.float64)))  # noqa: E731
    n_c = torch.as_tensor(counts[ids], dtype=torch.float64)
    return (psi(len(t)) - digamma_mean(n_c) + psi(k) - digamma_mean(m)) / math.log(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000])
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--old-max-work", type=float, default=4e10,
                        help="run the old float64 max-norm search only where N*N*d is below this")
    parser.add_argument("--old-euclid-work", type=float, default=float("inf"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

    ref = _reference()
    _ours(np.random.default_rng(0).normal(size=(50, 20)), np.arange(50) % 2, "max")  # numba's compilation
    print(f"machine: {describe('scipy', 'numba')}")
    print(f"{'N':>6} {'d':>5} {'method':<12} {'backend':<9} {'seconds':>8} {'x floor':>8} {'bits':>9} "
          f"{'old - new':>9} {'load':>5}")
    for n in args.sizes:
        for d in args.dims:
            _one_size(ref, n, d, args)


if __name__ == "__main__":
    main()

"""The k-NN estimators against the matrix-multiply floor, side by side in one run, and their bits against the
direct float64 search they replaced.

The floor is the unavoidable work of a brute-force k-NN search: a chunked float32 Gram matrix by ``torch.mm``
and ``topk`` of each row, in the same blocks as the estimator. For each N and d (a 10-class layer) it times

- ``ross-euc`` / ``ross-max``: `KNNEstimator` (Ross 2014), Euclidean / max norm (backend chosen
  automatically: KD-tree at low d, the blocked kernel elsewhere; printed), the search alone
  (``resolution_check=False``): what the floor and the targets are about;
- ``ross-euc+chk`` / ``ross-max+chk``: the default estimator, with its self-check (the same counts at 2k
  neighbours, from the same pass over the distance blocks); the same bits;
- ``ksg-max``: `ksg_mi` between the layer and a 1-D continuous target (the KSG one-dimensional path);
- ``old-*``: the direct float64 search of before (tests/estimators/_knn_reference.py), where affordable
  (``--old-max-work``, also for KSG; ``--old-euclid-work``), with the difference in bits (must be exactly 0).

Each timing is the minimum over ``--repeat`` runs, the floor and the estimators interleaved (so a burst of
load from other processes hits all of them alike); ``x floor`` is that minimum over the floor's minimum.
Every line carries the 1-minute load average: timings under load are not comparable with idle ones (the
ratios, measured side by side, are more robust). numba's compilation happens before the clock starts.

    python benchmarks/bench_knn.py                   # N = 20,000, d = 10, 100, 1,000 (several minutes)
    python benchmarks/bench_knn.py --quick           # N = 4,000, one run
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _machine import describe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"ross-euc": 1.5, "ross-max": 3.0}  # issue 22: x floor at most


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


def _floor(t: np.ndarray, k: int = 3, memory_mb: float = 128.0) -> None:
    z = torch.as_tensor(t, dtype=torch.float32)
    n = len(z)
    step = max(1, min(n, int(memory_mb * 2**20 // (8 * n * 3))))  # the estimator's Ross blocks
    for s in range(0, n, step):
        torch.topk(z[s:s + step] @ z.T, k + 1, dim=1)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _row(n, d, name, backend, sec, floor, bits=None, diff=""):
    bits_s = f"{bits:>9.4f}" if bits is not None else " " * 9
    target = TARGETS.get(name)
    verdict = "" if target is None else (" met" if sec / floor <= target else " MISSED") + f" (<= {target}x)"
    print(f"{n:>6} {d:>5} {name:<12} {backend:<9} {sec:>8.2f} {sec / floor:>8.2f} {bits_s} {diff:>9} "
          f"{os.getloadavg()[0]:>5.1f}{verdict}", flush=True)


def _ross(t, y, metric, check=False):
    from infoplane.estimators import KNNEstimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Ross estimate of these separable layers may exceed H(Y)
        return KNNEstimator(metric=metric, resolution_check=check).estimate(t, y)


def _ksg(t, target):
    from infoplane.estimators.knn import ksg_mi

    return ksg_mi(t, target)


def _one_size(ref, n, d, args):
    t, y, target = _problem(n, d)
    _ross(t[:400], y[:400], "euclidean"), _ross(t[:400], y[:400], "max"), _ksg(t[:400], target[:400])  # compile
    jobs = {"floor": lambda: _floor(t), "ross-euc": lambda: _ross(t, y, "euclidean"),
            "ross-max": lambda: _ross(t, y, "max"), "ksg-max": lambda: _ksg(t, target),
            "ross-euc+chk": lambda: _ross(t, y, "euclidean", True), "ross-max+chk": lambda: _ross(t, y, "max", True)}
    best: dict[str, float] = {}
    out: dict[str, object] = {}
    for _ in range(args.repeat):  # interleaved: every method sees the same bursts of load
        for name, job in jobs.items():
            out[name], sec = _timed(job)
            best[name] = min(best.get(name, math.inf), sec)
    floor = best["floor"]
    _row(n, d, "floor", "mm+topk", floor, floor)
    for metric in ("euclidean", "max"):
        name = f"ross-{metric[:3]}"
        res = out[name]
        new = res.conventions["I_TY_raw"]
        diff = ""
        if float(n) * n * d <= (args.old_max_work if metric == "max" else args.old_euclid_work):
            old, old_sec = _timed(_old_ross, ref, t, y, metric)
            diff = "0 (same)" if old == new else f"{old - new:.1e}"
            _row(n, d, f"old-ross-{metric[:3]}", "float64", old_sec, floor, old)
        _row(n, d, name, res.conventions["backend"], best[name], floor, new, diff)
        checked = out[name + "+chk"].conventions  # type: ignore[attr-defined]
        _row(n, d, name + "+chk", checked["backend"], best[name + "+chk"], floor, checked["I_TY_raw"],
             "0 (same)" if checked["I_TY_raw"] == new else f"{checked['I_TY_raw'] - new:.1e}")
    diff = ""
    if float(n) * n * d <= args.old_max_work:
        old, old_sec = _timed(_old_ksg, ref, t, target)
        diff = "0 (same)" if old == out["ksg-max"] else f"{old - out['ksg-max']:.1e}"
        _row(n, d, "old-ksg-max", "float64", old_sec, floor, old)
    _row(n, d, "ksg-max", "1-D path", best["ksg-max"], floor, out["ksg-max"], diff)


def _digamma_bits(k, n, n_a, n_b):
    psi = lambda v: float(torch.special.digamma(torch.tensor(float(v), dtype=torch.float64)))  # noqa: E731
    dm = lambda v: float(torch.special.digamma(v.to(torch.float64)).mean())  # noqa: E731
    return (psi(k) + psi(n) - dm(n_a + 1) - dm(n_b + 1)) / math.log(2)


def _old_ksg(ref, t, target, k=3):
    """KSG (max norm) by the direct float64 search of before (both variables' blocks, counts by blocks)."""
    _, n_a, n_b = ref.ksg_counts(torch.as_tensor(t), torch.as_tensor(target[:, None]), k, "max")
    return _digamma_bits(k, len(t), n_a, n_b)


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
    parser.add_argument("--repeat", type=int, default=3, help="timings: the minimum over this many runs")
    parser.add_argument("--old-max-work", type=float, default=4e10,
                        help="run the old float64 max-norm searches (Ross, KSG) only where N*N*d is below this")
    parser.add_argument("--old-euclid-work", type=float, default=float("inf"))
    parser.add_argument("--quick", action="store_true", help="N = 4,000, one run (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat = [4000], 1
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

    ref = _reference()
    print(f"machine: {describe('scipy', 'numba')}")
    print(f"{'N':>6} {'d':>5} {'method':<12} {'backend':<9} {'seconds':>8} {'x floor':>8} {'bits':>9} "
          f"{'old - new':>9} {'load':>5}")
    for n in args.sizes:
        for d in args.dims:
            _one_size(ref, n, d, args)


if __name__ == "__main__":
    main()

"""What the estimators' self-checks cost: each estimate with and without its check, side by side.

k-NN: ``resolution_check=True`` against ``False`` (one more neighbour search at 2k). Binning: the estimate
with its coverage-adjusted count (`BinningEstimator._check`) against the estimate with that replaced by a
no-op; critics likewise with their held-out standard-error pass. (The KDE's leave-one-out value and the
probe's in-sample scores are vectorised by-products of their pass, private to the kernels: not timed here.)
Ratios are the minimum over ``--repeats`` runs, measured in one process (timings under load are not
comparable across runs; the ratios are). Usage::

    python benchmarks/bench_self_checks.py            # N = 4,000
    python benchmarks/bench_self_checks.py --n 2000 --repeats 3
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    from unittest import mock

    from _machine import describe

    import infoplane.groundtruth as gt
    from infoplane.estimators import BinningEstimator, CriticEstimator, KNNEstimator
    from infoplane.estimators import critics as critics_module

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    print(describe())
    n, reps = args.n, args.repeats
    t3, y3 = gt.get_task("spiral-3x3").sample(n, 0)
    tc, yc = gt.get_task("classes-K4-d10").sample(n, 0)
    rows = []

    def pair(label, with_check, without):
        a, b = _best(with_check, reps), _best(without, reps)
        rows.append((label, a, b))

    pair("KSG 3+3 dims", lambda: KNNEstimator(target="continuous").estimate(t3, y3),
         lambda: KNNEstimator(target="continuous", resolution_check=False).estimate(t3, y3))
    pair("Ross 10 dims, 4 classes", lambda: KNNEstimator().estimate(tc, yc),
         lambda: KNNEstimator(resolution_check=False).estimate(tc, yc))
    tb = np.tanh(tc[:, :2])
    binning = BinningEstimator(np.linspace(-1, 1, 30))
    with mock.patch.object(BinningEstimator, "_check", lambda self, *a: {}):
        off = _best(lambda: binning.estimate(tb, yc), reps * 20)
    rows.append(("binning (SZT edges) 2 units", _best(lambda: binning.estimate(tb, yc), reps * 20), off))
    critic = CriticEstimator(epochs=20)
    with mock.patch.object(critics_module, "held_out_stats", lambda *a: (float("nan"),) * 3):
        off = _best(lambda: critic.estimate(tc, yc), reps)
    rows.append(("critic InfoNCE 10 dims, 20 epochs", _best(lambda: critic.estimate(tc, yc), reps), off))
    print(f"N = {n:,}; minimum of {reps} runs (binning: {reps * 20})")
    print(f"{'estimate':38s} {'with check':>11s} {'without':>9s} {'ratio':>6s}")
    for label, a, b in rows:
        print(f"{label:38s} {a:10.4f}s {b:8.4f}s {a / b:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

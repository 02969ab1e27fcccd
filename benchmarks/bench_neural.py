"""Benchmark the learned estimators of I(T;Y): the critic bounds and the cross-fitted probe.

For N in (4,000, 20,000) and d in (10, 100, 1,000), each in a fresh subprocess (peak RSS growth as the
memory measure): `CriticEstimator` (InfoNCE, default critic, a fixed 20 epochs so that times compare;
seconds per epoch are printed) and `ProbeEstimator` (5-fold logistic regression), on a 10-class layer.
Side by side in the same run: the critic's cost per epoch against the probe's whole cost.

    python benchmarks/bench_neural.py            # the full grid (several minutes on 2 cores)
    python benchmarks/bench_neural.py --quick    # N = 4,000 and d = 10, 100 only
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from _machine import describe

EPOCHS = 20


def _problem(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    t = rng.normal(size=(n, d)) + 0.5 * np.eye(10)[y] @ rng.normal(size=(10, d))
    return t.astype(np.float32), y


def _child(kind: str, n: int, d: int) -> None:
    import torch

    from infoplane.estimators import CriticEstimator, ProbeEstimator

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    t, y = _problem(n, d)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if kind == "critic":
        r = CriticEstimator("infonce", epochs=EPOCHS, patience=EPOCHS).estimate(t, y)
    else:
        r = ProbeEstimator().estimate(t, y)
    seconds = time.perf_counter() - t0
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "bits": float(r.I_TY),
                      "h_y": float(r.conventions["H_Y_bits"])}))


def _run(kind: str, n: int, d: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n), str(d)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 4,000 and d = 10, 100 only")
    parser.add_argument("--sizes", type=int, nargs="+", help="N values (default 4000 20000)")
    parser.add_argument("--dims", type=int, nargs="+", help="d values (default 10 100 1000)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return

    threads = os.environ.get("BENCH_THREADS", "2")
    print(f"machine: {describe()}; children use {threads} torch threads")
    sizes = args.sizes or ([4000] if args.quick else [4000, 20000])
    dims = args.dims or ([10, 100] if args.quick else [10, 100, 1000])
    grid = [(n, d) for n in sizes for d in dims]
    print(f"{'N':>6} {'d':>5} {'method':<8} {'seconds':>9} {'s/epoch':>8} {'peak MB':>8} {'bits':>7} {'H(Y)':>6}  note")
    for n, d in grid:
        critic = _run("critic", n, d)
        probe = _run("probe", n, d)
        per_epoch = critic["seconds"] / EPOCHS
        print(f"{n:>6} {d:>5} {'critic':<8} {critic['seconds']:>9.2f} {per_epoch:>8.3f} {critic['peak_mb']:>8.0f} "
              f"{critic['bits']:>7.3f} {critic['h_y']:>6.3f}  InfoNCE, {EPOCHS} epochs", flush=True)
        print(f"{n:>6} {d:>5} {'probe':<8} {probe['seconds']:>9.2f} {'':>8} {probe['peak_mb']:>8.0f} "
              f"{probe['bits']:>7.3f} {probe['h_y']:>6.3f}  probe = {probe['seconds'] / per_epoch:.0f} critic epochs",
              flush=True)
    print(f"load (1 min) at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Time and peak memory of one `LatentMIEstimator` estimate, N = 4,000 and 10,000 rows, d = 100, 1,000, 4,096.

Each configuration runs in a fresh subprocess (so the peak resident memory, ``ru_maxrss``, is that estimate's
alone, the interpreter and torch included: the "baseline" row is the same process doing nothing), on the
CPU with torch's threads as set (2 cores here; the training itself uses one thread, the k-NN stage all).
The data: two Gaussian pairs correlated 0.8 (I = 1.474 bits), one side embedded by a random linear isometry in
d columns, the other side kept (``target="continuous"``), so the error against the truth is printed too.

    python benchmarks/bench_latent.py            # the full grid (several minutes on 2 idle cores)
    python benchmarks/bench_latent.py --quick    # N = 4,000, d = 100 and 1,000
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _data(n: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    w = 0.8 * z + 0.6 * rng.standard_normal((n, 2))
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    return (z @ q.T).astype(np.float32), w, -math.log2(1 - 0.8**2)


def one(n: int, d: int) -> dict:
    """One estimate in this process: seconds, peak RSS (MiB), the estimate and its error (bits)."""
    from infoplane.estimators import LatentMIEstimator

    if n == 0:
        return {"n": 0, "d": 0, "seconds": 0.0, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    t, y, truth = _data(n, d)
    start = time.perf_counter()
    res = LatentMIEstimator(target="continuous").estimate(t, y)
    sec = time.perf_counter() - start
    return {"n": n, "d": d, "seconds": sec, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "bits": res.I_TY, "error": res.I_TY - truth, "epochs": res.conventions["epochs_run"],
            "reliable": res.conventions["reliable"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 4,000, d = 100 and 1,000 only")
    p.add_argument("--one", nargs=2, type=int, metavar=("N", "D"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        import torch

        torch.manual_seed(0)
        print(json.dumps(one(*args.one)))
        return 0
    from _machine import describe

    print(describe())
    grid = [(4000, 100), (4000, 1000)] if args.quick else [(n, d) for n in (4000, 10000) for d in (100, 1000, 4096)]
    print(f"{'N':>6} {'d':>5} {'seconds':>8} {'peak MiB':>9} {'epochs':>6} {'bits':>7} {'error':>7} load")
    for n, d in [(0, 0), *grid]:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), str(d)], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        import os

        extra = f"{r['epochs']:>6} {r['bits']:>7.3f} {r['error']:>+7.3f}" if n else f"{'':>6} {'baseline':>15}"
        print(f"{r['n']:>6} {r['d']:>5} {r['seconds']:>8.1f} {r['peak_mib']:>9.0f} {extra} {os.getloadavg()[0]:.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

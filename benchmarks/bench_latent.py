"""Time and peak memory of one `LatentMIEstimator` estimate, N = 4,000 and 10,000 rows, d = 100, 1,000, 4,096.

Each configuration runs in a fresh subprocess (so the peak resident memory, ``ru_maxrss``, is that estimate's
alone, the interpreter and torch included: the "baseline" row is the same process doing nothing), on the
CPU with torch's threads as set (the training itself uses one thread, the reduction and the k-NN stage all).
Two layers of known I(T;Y) = 1.474 bits (y: two Gaussian partners correlated 0.8 of a 2-dimensional signal z,
kept as it is, ``target="continuous"``), so the error against the truth is printed too:

* ``isometry``: z embedded by a random linear isometry in d columns. The reduction finds rank 2, the code is
  z itself (no training): the cost of the lossless path (the rank search, then KSG on all rows).
* ``tanh16``: t = tanh([z, u] W + b) with 14 more independent normal coordinates u, W a random 16 x d map:
  injective, of full numerical rank, so the autoencoders train on all d columns (twice: on all training rows
  and on half of them, for the convergence check): the cost of the learned path.

    python benchmarks/bench_latent.py            # the full grid (tens of minutes on 2 loaded cores)
    python benchmarks/bench_latent.py --quick    # N = 4,000, d = 100 and 1,000
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

KINDS = ("isometry", "tanh16")


def _data(kind: str, n: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    w = 0.8 * z + 0.6 * rng.standard_normal((n, 2))
    if kind == "isometry":
        q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
        t = z @ q.T
    else:
        s = np.hstack([z, rng.standard_normal((n, 14))])
        t = np.tanh(s @ rng.standard_normal((16, d)) / 4.0 + 0.5 * rng.standard_normal(d))
    return t.astype(np.float32), w, -math.log2(1 - 0.8**2)


def one(kind: str, n: int, d: int) -> dict:
    """One estimate in this process: seconds, peak RSS (MiB), the estimate and its error (bits)."""
    from infoplane.estimators import LatentMIEstimator

    if n == 0:
        return {"kind": "-", "n": 0, "d": 0, "seconds": 0.0,
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    t, y, truth = _data(kind, n, d)
    start = time.perf_counter()
    res = LatentMIEstimator(target="continuous").estimate(t, y)
    sec = time.perf_counter() - start
    c = res.conventions
    return {"kind": kind, "n": n, "d": d, "seconds": sec,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "bits": res.I_TY,
            "error": res.I_TY - truth, "epochs": c.get("epochs_run", 0),
            "code": f"{c.get('t_code', 'encoded')}/{c.get('rank_t', '?')}",
            "reliable": c["reliable"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 4,000, d = 100 and 1,000 only")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {KINDS}")
    p.add_argument("--one", nargs=3, metavar=("KIND", "N", "D"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), int(args.one[2]))))
        return 0
    from _machine import describe

    print(describe())
    sizes = [(4000, 100), (4000, 1000)] if args.quick else [(n, d) for n in (4000, 10000) for d in (100, 1000, 4096)]
    grid = [(k, n, d) for k in args.kinds.split(",") for n, d in sizes]
    print(f"{'kind':>8} {'N':>6} {'d':>5} {'seconds':>8} {'peak MiB':>9} {'epochs':>6} {'code/rank':>12} "
          f"{'bits':>7} {'error':>7} {'reliable':>8} load")
    for kind, n, d in [("-", 0, 0), *grid]:
        out = subprocess.run([sys.executable, __file__, "--one", kind, str(n), str(d)], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        extra = (f"{r['epochs']:>6} {r['code']:>12} {r['bits']:>7.3f} {r['error']:>+7.3f} {r['reliable']!s:>8}"
                 if n else f"{'':>6} {'baseline':>12} {'':>7} {'':>7} {'':>8}")
        print(f"{r['kind']:>8} {r['n']:>6} {r['d']:>5} {r['seconds']:>8.1f} {r['peak_mib']:>9.0f} {extra} "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

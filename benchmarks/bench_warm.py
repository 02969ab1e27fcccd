"""Warm starts across epochs against cold starts, on a small recorded run (issue 22, item 3).

Records `ConvNet` on scikit-learn's digits enlarged to ``--n`` images (`load_digits_augmented`, no download)
at every epoch 0..``--epochs``, then, for each learned estimator that warm-starts (the InfoNCE critic, the
probe; the latent estimator does not: measured here at 2-2.4x the work for no gain) and each recorded layer, walks the epochs in order twice, side by side in one process: *warm*,
each epoch's estimate started from the previous epoch's state (`estimate_with_state`, what
`information_plane` does with ``warm_start=True``), and *cold*, every epoch from scratch (``estimate``).
It prints the seconds of each and their ratio, the work of each (training epochs, the held-out check's
included; the probe's batched L-BFGS evaluations: a count that does not depend on the load) and its ratio,
the mean difference and the largest shortfall of the warm bits below the cold ones, how often the held-out
check fell back to the cold start, and the load.

    python benchmarks/bench_warm.py                          # N = 2,000, 6 epochs, layers block3 and dense1
    python benchmarks/bench_warm.py --n 1000 --epochs 3      # a dry run
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _machine import describe


def _record(n: int, epochs: int, layers: list):
    from infoplane import Recorder
    from infoplane.nets import ConvNet, load_digits_augmented, train

    X, y = load_digits_augmented(n, seed=0)
    model = ConvNet(image_size=8, seed=0)
    rec = Recorder(model, layers, X, labels=y)
    train(model, X, y, epochs=epochs, callback=rec.step, progress=False)
    return rec.store, y


def _estimators() -> dict:
    from infoplane.estimators import CriticEstimator, ProbeEstimator

    return {"critic": CriticEstimator, "probe": ProbeEstimator}


def _work(conv: dict) -> int:
    """Training epochs run for one estimate (the warm run and its check, or the cold run); the probe's batched
    L-BFGS evaluations: a measure of the work that does not depend on the load."""
    if "lbfgs_evaluations" in conv:
        return int(conv["lbfgs_evaluations"])
    check = conv.get("warm_check")
    return int(check["epochs_trained"] if check else conv["epochs_run"])


def _chain(make, store, y, layer: str, warm: bool) -> tuple[float, list, int, int]:
    """(seconds, bits per epoch, fallbacks, work) of one pass over the epochs of ``layer``."""
    est, state, bits, fallbacks, work = make(), None, [], 0, 0
    t0 = time.perf_counter()
    for epoch in store.epochs:  # the epochs in order, as information_plane chains them
        t = np.asarray(store.activations(epoch, layer))
        if warm:
            res, state = est.estimate_with_state(t, y, state=state, layer=layer, epoch=epoch)
            check = res.conventions.get("warm_check")
            fallbacks += bool(check and check.get("fell_back"))
        else:
            res = est.estimate(t, y, layer=layer, epoch=epoch)
        bits.append(res.I_TY)
        work += _work(res.conventions)
    return time.perf_counter() - t0, bits, fallbacks, work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2_000, help="probe images (default 2,000)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--layers", nargs="+", default=["block3", "dense1"])
    parser.add_argument("--estimators", nargs="+", default=["critic", "probe"])
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    print(f"machine: {describe()}")
    store, y = _record(args.n, args.epochs, args.layers)
    print(f"recorded epochs {list(store.epochs)} of layers {args.layers}, N = {args.n:,}")
    print(f"{'estimator':<8} {'layer':<7} {'warm s':>7} {'cold s':>7} {'cold/warm':>9} {'work w':>6} {'work c':>6} "
          f"{'cold/warm':>9} {'mean warm-cold':>14} {'worst':>7} {'fallbacks':>9} {'load':>5}")
    for name in args.estimators:
        make = _estimators()[name]
        for layer in args.layers:
            ws, wb, fb, ww = _chain(make, store, y, layer, warm=True)
            cs, cb, _, cw = _chain(make, store, y, layer, warm=False)
            diff = np.array(wb) - np.array(cb)
            print(f"{name:<8} {layer:<7} {ws:>7.1f} {cs:>7.1f} {cs / ws:>9.2f} {ww:>6d} {cw:>6d} {cw / ww:>9.2f} "
                  f"{diff.mean():>+14.4f} {diff.min():>+7.4f} {fb:>9d} {os.getloadavg()[0]:>5.1f}", flush=True)


if __name__ == "__main__":
    main()

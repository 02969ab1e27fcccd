"""A real network's whole information plane, timed: the ConvNet on a 10,000-image probe, 20 epochs, 5 layers.

Records `ConvNet` (blocks 1-3, dense1, dense2: 256 / 128 / 256 / 64 / 10 units at 8×8 images) trained on
scikit-learn's digits enlarged to 10,000 images (`load_digits_augmented`, no download) at every epoch
0..20, then runs `information_plane` once per estimator family: binning, KDE, k-NN, the probe (warm-started
across epochs), the noisy estimator and the latent estimator (each only if this version of infoplane has
it). It prints the per-estimator totals, the k-NN floor ratio (the estimator's time over the
matrix-multiply floor of the same layers: a chunked float32 Gram matrix and ``topk``, measured after the plane
and not counted in its time), the recording time, and the whole wall time (recording and estimators), with the
machine and the load average (rerun when the load is high).

Targets on 2 cores (issue 22): the whole plane with every estimator in <= 15 minutes; <= 5 minutes without
the latent estimator.

    python benchmarks/bench_plane.py                        # the full benchmark
    python benchmarks/bench_plane.py --n 2000 --epochs 2    # a dry run (about a minute)
    python benchmarks/bench_plane.py --device cuda          # estimators that take device= use the GPU
    python benchmarks/bench_plane.py --latent-jobs 2        # two latent estimates at once (one core each)
    python benchmarks/bench_plane.py --latent-jobs 2 --latent-backend loky   # ... in two processes
    python benchmarks/bench_plane.py --jobs 2 --latent-jobs 2 --latent-backend loky  # every family on 2 workers
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _machine import describe

LAYERS = ["block1", "block2", "block3", "dense1", "dense2"]


def _record(n: int, epochs: int, device: str):
    from infoplane import Recorder
    from infoplane.nets import ConvNet, load_digits_augmented, train

    X, y = load_digits_augmented(n, seed=0)
    model = ConvNet(image_size=8, seed=0)
    rec = Recorder(model, LAYERS, X, labels=y, device=device)
    train(model, X, y, epochs=epochs, callback=rec.step, progress=False)
    return rec.store, y


def _estimators(device: str) -> dict:
    import infoplane.estimators as E

    dev = None if device == "cpu" else device
    out = {
        "binning": lambda: E.BinningEstimator(n_bins=30),
        "kde": lambda: E.KDEEstimator(noise_variance=1e-1),
        "knn": lambda: E.KNNEstimator(metric="euclidean"),
        "probe": lambda: E.ProbeEstimator(device=dev),
    }
    if hasattr(E, "NoisyEstimator"):
        out["noisy"] = lambda: E.NoisyEstimator(noise_std=0.1)
    if hasattr(E, "LatentMIEstimator"):
        out["latent"] = lambda: E.LatentMIEstimator(device=dev)
    return out


def _floor(store, epochs, k: int = 3) -> float:
    """The matrix-multiply floor of a k-NN search over every recorded (epoch, layer)."""
    total = 0.0
    for epoch in epochs:
        for layer in LAYERS:
            z = torch.as_tensor(np.asarray(store.activations(epoch, layer)), dtype=torch.float32)
            n = len(z)
            step = max(1, min(n, int(128 * 2**20 // (8 * n * 3))))
            t0 = time.perf_counter()
            for s in range(0, n, step):
                torch.topk(z[s:s + step] @ z.T, k + 1, dim=1)
            total += time.perf_counter() - t0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="probe images (default 10,000)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip", nargs="*", default=[], help="estimator families to leave out (e.g. latent)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="joblib workers (loky processes, one torch thread each) for KDE, k-NN, the probe and "
                             "the noisy estimator (default 1: one process on torch's threads; binning always 1)")
    parser.add_argument("--latent-jobs", type=int, default=1,
                        help="joblib workers for the latent estimator, whose training runs on one core (e.g. 2)")
    parser.add_argument("--latent-backend", default="threading", choices=["threading", "loky"],
                        help="joblib backend of those workers: threads share the interpreter lock, loky "
                             "processes do not (default threading)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    from infoplane import information_plane

    print(f"machine: {describe('scipy')}")
    wall = time.perf_counter()
    t0 = time.perf_counter()
    store, y = _record(args.n, args.epochs, args.device)
    rec_s = time.perf_counter() - t0
    epochs = [int(e) for e in store.epochs]
    print(f"recorded {len(epochs)} epochs x {len(LAYERS)} layers of N = {args.n:,} in {rec_s:.1f} s "
          f"(load {os.getloadavg()[0]:.1f})", flush=True)
    totals: dict[str, float] = {}
    print(f"{'estimator':<10} {'seconds':>9} {'s/(epoch,layer)':>16} {'load':>5}  note")
    for name, make in _estimators(args.device).items():
        if name in args.skip:
            continue
        t0 = time.perf_counter()
        # binning stays in this process: at 0.02 s a task, shipping arrays to workers costs more than the work
        jobs = args.latent_jobs if name == "latent" else (1 if name == "binning" else args.jobs)
        backend = (args.latent_backend if name == "latent" else "loky") if jobs > 1 else None
        df = information_plane(store, y, estimators={name: make()}, progress=False, n_jobs=jobs, backend=backend)
        totals[name] = time.perf_counter() - t0
        note = f"I_TY range {df.I_TY.min():.2f}..{df.I_TY.max():.2f} bits"
        print(f"{name:<10} {totals[name]:>9.1f} {totals[name] / (len(epochs) * len(LAYERS)):>16.2f} "
              f"{os.getloadavg()[0]:>5.1f}  {note}", flush=True)
    whole = time.perf_counter() - wall  # recording and every estimator (the floor below is the benchmark's own)
    if "knn" in totals:
        floor = _floor(store, epochs)
        print(f"k-NN floor (float32 Gram + topk, same layers) {floor:.1f} s: k-NN at {totals['knn'] / floor:.2f}x "
              "(not counted in the plane's time)")
    no_latent = whole - totals.get("latent", 0.0)
    print(f"whole plane: {whole / 60:.1f} min (target 15); without the latent estimator {no_latent / 60:.1f} min "
          f"(target 5); load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

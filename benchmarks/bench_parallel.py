"""Benchmark: information_plane with n_jobs=1 against n_jobs=2 (joblib loky) on one recorded SZT run.

Trains the SZT tanh network for 50 epochs, records its 6 layers on all 4096 inputs at every epoch (51 epochs,
0..50) into a MemoryStore and a ZarrStore, then times `information_plane` serially and with two workers,
side by side in this one process, for the SZT binning (30 edges) and the KDE upper bound (σ² = 1e-3).
Checks the two tables are identical and prints the ratios and the machine.

    python benchmarks/bench_parallel.py            # full: 50 epochs, 4096 inputs (a few minutes)
    python benchmarks/bench_parallel.py --quick    # 10 epochs, 1024-input probe (under a minute)
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
import torch
from _machine import describe

from infoplane.analysis import information_plane
from infoplane.nets import SZTNet, load_szt, train, train_test_split
from infoplane.recording import Recorder
from infoplane.store import MemoryStore, ZarrStore


def recorded_run(epochs: int, n_probe: int, seed: int = 0) -> MemoryStore:
    X, y = load_szt(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, seed=seed)
    rows = np.sort(np.random.default_rng(seed).choice(len(X), n_probe, replace=False)) if n_probe < len(X) else None
    probe, labels = (X, y) if rows is None else (X[rows], y[rows])
    model = SZTNet("tanh", seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net trains fastest on one thread
    try:
        with Recorder(model, model.layer_names, probe, labels=labels, schedule=None) as rec:
            train(model, X_train, y_train, epochs=epochs, seed=seed, callback=rec.step, progress=False)
    finally:
        torch.set_num_threads(threads)
    return rec.store


def timed(store, estimator: str, n_jobs: int, repeats: int) -> tuple[float, pd.DataFrame]:
    best, df = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        df = information_plane(store, estimators=estimator, n_jobs=n_jobs, progress=False)
        best = min(best, time.perf_counter() - start)
    return best, df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 epochs and a 1024-input probe (< 1 minute)")
    args = parser.parse_args()
    epochs, n_probe = (10, 1024) if args.quick else (50, 4096)

    print(describe("joblib", "pandas"))
    start = time.perf_counter()
    memory = recorded_run(epochs, n_probe)
    print(f"recorded {len(memory.epochs)} epochs x {len(memory.layers)} layers x {n_probe} inputs "
          f"in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        zarr_store = ZarrStore(os.path.join(tmp, "run.zarr"), mode="w", durable=False)
        zarr_store.set_labels(memory.labels)
        for e in memory.epochs:
            zarr_store.write_epoch(e, {layer: memory.activations(e, layer) for layer in memory.layers})
        zarr_store.close()
        zarr_path = os.path.join(tmp, "run.zarr")

        # Warm the loky pool once so its start-up (a one-off per session) is not charged to the first case.
        information_plane(memory, estimators="binning", epochs=[0], n_jobs=2, progress=False)
        cases = [("binning", "MemoryStore", memory, 3), ("binning", "ZarrStore (workers read zarr)", zarr_path, 3),
                 ("kde-upper", "MemoryStore", memory, 1)]
        print(f"\n{'estimator':<10} {'source':<30} {'n_jobs=1 [s]':>13} {'n_jobs=2 [s]':>13} {'speed-up':>9}")
        for estimator, what, source, repeats in cases:
            t1, serial = timed(source, estimator, 1, repeats)
            t2, parallel = timed(source, estimator, 2, repeats)
            pd.testing.assert_frame_equal(serial, parallel)  # the parallel table is the serial one
            print(f"{estimator:<10} {what:<30} {t1:13.2f} {t2:13.2f} {t1 / t2:8.2f}x")
    print("\nspeed-up = time(n_jobs=1) / time(n_jobs=2), same run, best of the repeats; tables identical.")
    print(describe("joblib", "pandas"))


if __name__ == "__main__":
    main()

"""Scale: recording a ConvNet with reductions, store size per epoch, and each estimator at N = 10,000.

Printed as tables, measured side by side in one run (with the machine and the 1-minute load average):

1. Recording overhead on `ConvNet` (16x16 augmented digits, 8,000 training images, 10,000 probe images):
   one training epoch alone; a probe pass through the plain model (no hooks) and through the recorder's
   hooks without reductions, and with reductions (block1/block2 projected to 128, block3 pooled, float16);
   the ratio (train + record) / train when recording every epoch and at 20 of 100 epochs.
2. Store size per recorded epoch (ZarrStore on disk, Blosc zstd) for the three recordings.
3. Per (epoch, layer) time and peak memory of each estimator (30 adaptive bins, both KDE bounds in one pass,
   k-NN I(T;Y); KDE noise variance d, so the bounds are neither 0 nor saturated) at N = 10,000 and d = 64, 512, 4,096: each in a fresh subprocess that reads its resident
   memory before, resets the peak (/proc/self/clear_refs) and reads VmHWM after; one that runs past 240 s is
   stopped and reported as such (k-NN at d = 4,096 on 2 cores), so the whole run stays under 10 minutes.

Usage: python benchmarks/bench_scale.py [--quick]     (--quick: N = 2,000, d = 64 and 512, 2 epochs)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _machine import describe

from infoplane import Layer, Recorder
from infoplane.nets import ConvNet, load_digits_augmented, train

LAYERS = ["block1", "block2", "block3", "dense1", "dense2"]
REDUCED = [Layer("block1", project=128), Layer("block2", project=128), Layer("block3", pool="global"),
           "dense1", "dense2"]



def _kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def child(estimator: str, n: int, d: int) -> None:
    from infoplane.estimators import BinningEstimator, KDEEstimator, KNNEstimator

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 32)).astype(np.float32)
    t = np.maximum(x @ rng.normal(size=(32, d)).astype(np.float32) / 4, 0)  # a ReLU layer of width d
    y = rng.integers(0, 10, n)
    est = {"binning (30 adaptive)": BinningEstimator(n_bins=30, strategy="adaptive"),
           "KDE both bounds": KDEEstimator(float(d), "both"), "k-NN (k=3)": KNNEstimator(k=3)}[estimator]
    est.estimate(t[:200], y[:200])  # load kernels before measuring
    before = _kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    r = est.estimate(t, y)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "extra_mib": (_kib("VmHWM") - before) / 1024, "I_TY": r.I_TY,
                      "array_mib": t.nbytes / 2**20}))


def _disk_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _best(fn, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def recording_section(n: int, size: int, epochs: int, tmp: Path) -> None:
    X, y = load_digits_augmented(n, seed=0, size=size)
    n_train = int(0.8 * n)
    model = ConvNet(image_size=size, seed=0)
    probe = torch.from_numpy(X)
    torch.manual_seed(0)

    def train_epoch(rows: int = n_train):
        train(model, X[:rows], y[:rows], epochs=1, batch_size=128, lr=1e-3, seed=0, progress=False, threads=None)

    def plain_pass():
        model.eval()
        with torch.inference_mode():
            for i in range(0, n, 500):
                model(probe[i:i + 500])
        model.train()

    results = {}
    sizes = {}
    configs = {"hooks, no reduction (float32)": (LAYERS, None), "pool/project (float32)": (REDUCED, None),
               "pool/project + float16": (REDUCED, "float16")}
    train_epoch(256)  # warm-up
    t_train = _best(train_epoch, repeats=1)
    t_plain = _best(plain_pass)
    for name, (layers, dtype) in configs.items():
        path = tmp / f"{len(sizes)}.zarr"
        with Recorder(model, layers, X, labels=y, store=path, dtype=dtype, batch_size=500) as rec:
            times = []
            for epoch in range(epochs):
                t0 = time.perf_counter()
                rec.step(epoch)
                times.append(time.perf_counter() - t0)
            widths = [rec.store.metadata["shapes"][k][1] for k in rec.layers]
        results[name] = min(times)
        sizes[name] = (_disk_mib(path) / epochs, n * sum(widths) * (2 if dtype else 4) / 2**20, widths)
        shutil.rmtree(path)
    print(f"\n1. Recording overhead: ConvNet, {size}x{size} images, {n_train:,} training / {n:,} probe images")
    print(f"   training epoch (batch 128): {t_train:6.2f} s | probe pass, plain model (no hooks): {t_plain:6.2f} s")
    print(f"   {'recording':34s} {'probe pass':>10s} {'vs plain':>9s} {'every epoch':>12s} {'20 of 100':>10s}")
    for name, t in results.items():
        print(f"   {name:34s} {t:9.2f}s {t / t_plain:8.2f}x {(t_train + t) / t_train:11.2f}x "
              f"{(t_train + 0.2 * t) / t_train:9.2f}x")
    print("   (every epoch / 20 of 100: (train + record) / train when recording at every / at 20 of 100 epochs)")
    print("\n2. Store size per recorded epoch (ZarrStore, Blosc zstd)")
    print(f"   {'recording':34s} {'on disk':>9s} {'raw':>9s}  widths per layer")
    for name, (disk, raw, widths) in sizes.items():
        print(f"   {name:34s} {disk:7.1f}MB {raw:7.1f}MB  {dict(zip(LAYERS, widths))}")


def estimator_section(n: int, dims: tuple[int, ...], limit: int = 240) -> None:
    print(f"\n3. Per (epoch, layer) cost of each estimator, N = {n:,} (ReLU layer of width d; fresh process each)")
    print(f"   {'estimator':22s} {'d':>6s} {'time':>9s} {'peak extra':>11s} {'array':>9s}  I(T;Y) bits")
    for d in dims:
        for est in ("binning (30 adaptive)", "KDE both bounds", "k-NN (k=3)"):
            try:
                out = subprocess.run([sys.executable, __file__, "--child", est, str(n), str(d)],
                                     capture_output=True, text=True, timeout=limit)
            except subprocess.TimeoutExpired:
                print(f"   {est:22s} {d:6,d} stopped after {limit} s (the run's time budget)", flush=True)
                continue
            if out.returncode != 0:
                print(f"   {est:22s} {d:6,d} failed (exit {out.returncode}): {out.stderr.strip()[-200:]}")
                continue
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"   {est:22s} {d:6,d} {rec['seconds']:8.2f}s {rec['extra_mib']:9.1f}MB "
                  f"{rec['array_mib']:7.1f}MB  {rec['I_TY']:.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return 0
    start = time.perf_counter()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            recording_section(2000, 16, 2, Path(tmp))
            estimator_section(2000, (64, 512))
        else:
            recording_section(10_000, 16, 3, Path(tmp))
            estimator_section(10_000, (64, 512, 4096))
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average (1 min) at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Recording overhead and store throughput, measured side by side in one run.

1. Training the SZT network (infoplane.nets.SZTNet + infoplane.nets.train, 80% stratified split, Adam
   lr 4e-4, batch 256) for E epochs without a recorder, with a Recorder into a MemoryStore, and with a
   Recorder into a ZarrStore, recording all 4096 inputs at every layer at a log-spaced schedule. Prints the
   wall-time ratios recorder/plain (aim: < 1.2x) and checks that recording does not change training.
2. Write (and read) throughput of MemoryStore and ZarrStore for a larger probe: tanh-MLP activations of
   N random inputs, in MB/s of raw float32, and the on-disk compression ratio.

Usage: python benchmarks/bench_recording.py [--quick] [--epochs 1000] [--n-recorded 100] [--repeats 3]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from _machine import describe
from torch import nn

from infoplane.nets import SZTNet, load_szt, train, train_test_split
from infoplane.recording import Recorder, Schedule, record
from infoplane.store import MemoryStore, ZarrStore

IN_RUN: dict[str, list[float]] = {"memory": [], "zarr": []}


def train_once(mode: str, epochs: int, schedule: Schedule, tmp: Path) -> tuple[float, float, int]:
    X, y = load_szt(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, seed=0)
    model = SZTNet("tanh", seed=0)
    if mode == "plain":
        start = time.perf_counter()
        history = train(model, X_train, y_train, epochs=epochs, seed=0, progress=False)
        return time.perf_counter() - start, float(history.train_loss.iloc[-1]), 0
    store = None if mode == "memory" else tmp / f"szt-{time.monotonic_ns()}.zarr"
    start = time.perf_counter()
    inside = [0.0]
    with Recorder(model, model.layer_names, X, labels=y, schedule=schedule, store=store) as rec:

        def timed_step(epoch, model):
            t0 = time.perf_counter()
            rec.step(epoch, model)
            inside[0] += time.perf_counter() - t0

        history = train(model, X_train, y_train, epochs=epochs, seed=0, progress=False, callback=timed_step)
    elapsed = time.perf_counter() - start
    n = len(rec.epochs)
    IN_RUN[mode].append(elapsed / (elapsed - inside[0]))  # same run: (train + record) / train
    if store is not None:
        shutil.rmtree(store)
    return elapsed, float(history.train_loss.iloc[-1]), n


def overhead(epochs: int, n_recorded: int, repeats: int, tmp: Path) -> None:
    schedule = Schedule.log_spaced(epochs, n_recorded)
    n_sched = len(schedule.epochs_until(epochs))
    print(f"\n## Recording overhead: SZTNet tanh, {epochs} epochs, {n_sched} recorded epochs (log-spaced), "
          f"6 layers x 4096 probe rows")
    times: dict[str, list[float]] = {"plain": [], "memory": [], "zarr": []}
    for mode in times:  # warm-up: first-call costs (imports, allocator, zarr's event loop) are not overhead
        train_once(mode, 3, Schedule.every(1), tmp)
    losses: dict[str, float] = {}
    for _ in range(repeats):
        for mode in times:  # interleaved, so drifting machine load hits every mode alike
            elapsed, loss, n = train_once(mode, epochs, schedule, tmp)
            times[mode].append(elapsed)
            losses[mode] = loss
            if mode != "plain" and n != n_sched:
                raise RuntimeError(f"{mode}: recorded {n} epochs, expected {n_sched}")
    base = min(times["plain"])
    for mode, values in times.items():
        best = min(values)
        extra = (best - base) / max(n_sched, 1) * 1e3
        print(f"{mode:>7}: {best:8.2f} s  ratio {best / base:5.3f}x" +
              ("" if mode == "plain" else f"   (~{extra:.1f} ms per recorded epoch)"))
    for mode, values in IN_RUN.items():
        print(f"{mode:>7}: in-run ratio (train + record) / train = {min(values[-repeats:]):.4f}x "
              "(time inside Recorder.step vs the rest of the same run; immune to load drift between runs)")
    same = len({round(v, 12) for v in losses.values()}) == 1
    print(f"final train loss identical with and without recording: {same} ({losses})")


def throughput(n_rows: int, n_epochs: int, tmp: Path) -> None:
    torch.manual_seed(0)
    widths = (784, 1024, 512, 256)
    layers = []
    for i in range(len(widths) - 1):
        layers += [nn.Linear(widths[i], widths[i + 1]), nn.Tanh()]
    model = nn.Sequential(*layers)
    probe = torch.randn(n_rows, widths[0])
    data = record(model, probe, ["1", "3", "5"])
    mb = sum(a.nbytes for a in data.values()) / 2**20
    print(f"\n## Store throughput: tanh MLP 784-1024-512-256 activations of {n_rows:,} random inputs, "
          f"3 layers, {mb:.0f} MB float32 per epoch, {n_epochs} epochs")
    start = time.perf_counter()
    record(model, probe, ["1", "3", "5"])
    print(f"probe pass (forward + capture) alone: {(time.perf_counter() - start) * 1e3:.0f} ms per epoch")
    for label, make in [
        ("MemoryStore", lambda: MemoryStore()),
        ("ZarrStore durable=True", lambda: ZarrStore(tmp / "tp1.zarr", "w")),
        ("ZarrStore durable=False", lambda: ZarrStore(tmp / "tp2.zarr", "w", durable=False)),
    ]:
        store = make()
        start = time.perf_counter()
        for epoch in range(n_epochs):
            store.write_epoch(epoch, data)
        write = time.perf_counter() - start
        start = time.perf_counter()
        for epoch in store.epochs:
            for layer in store.layers:
                store.activations(epoch, layer)
        read = time.perf_counter() - start
        line = f"{label:>24}: write {mb * n_epochs / write:7.0f} MB/s"
        line += ", read: zero-copy views" if isinstance(store, MemoryStore) else f", read {mb * n_epochs / read:5.0f} MB/s"
        if isinstance(store, ZarrStore):
            disk = sum(f.stat().st_size for f in store.path.rglob("*") if f.is_file()) / 2**20
            line += f", on disk {disk:.0f} MB (compression {mb * n_epochs / disk:.2f}x)"
            store.close()
            shutil.rmtree(store.path)
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--n-recorded", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best of each is used")
    parser.add_argument("--rows", type=int, default=50_000, help="probe rows of the throughput test")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable timings)")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.n_recorded, args.rows, args.repeats = 60, 20, 10_000, 2
    torch.set_num_threads(args.threads)
    print("# infoplane recording benchmark")
    print(describe("zarr"))
    with tempfile.TemporaryDirectory() as tmp:
        overhead(args.epochs, args.n_recorded, args.repeats, Path(tmp))
        throughput(args.rows, 3 if args.quick else 5, Path(tmp))


if __name__ == "__main__":
    main()

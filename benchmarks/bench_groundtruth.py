"""The ground-truth suite for every default estimator: its table of errors (bits) and its wall time.

Runs `infoplane.groundtruth.evaluate` on every task of `tasks()` with the default sample sizes (1,000 and
4,000 rows) and seeds (0, 1, 2), all estimators of `default_estimators()`, on ``--jobs`` processes (loky),
and prints: the machine and its 1-minute load average; the wall time of the whole suite; per estimator its
summed estimate time; the mean signed error (estimate − truth, bits) per task and estimator at N = 4,000
(mean over seeds; "skip" where the estimator cannot take the task); how many tasks each estimator is within
0.1 bits on; and the skip reasons.

Usage: python benchmarks/bench_groundtruth.py [--quick] [--jobs 2] [--csv out.csv]
(--quick: N = 1,000 only, one seed.)
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd
from _machine import describe

import infoplane.groundtruth as gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--csv", default=None, help="also write the full table here")
    args = parser.parse_args()
    sizes, seeds = ((1000,), range(1)) if args.quick else ((1000, 4000), range(3))
    estimators = gt.default_estimators()
    print(f"machine: {describe()}; jobs={args.jobs}")
    print(f"{len(gt.tasks())} tasks x n_samples {sizes} x seeds {list(seeds)}; estimators: {', '.join(estimators)}")
    start = time.perf_counter()
    df = gt.evaluate(estimators, n_samples=sizes, seeds=seeds, n_jobs=args.jobs, backend="loky", progress=False)
    wall = time.perf_counter() - start
    print(f"\nwall time of the whole suite: {wall:.1f} s (load average after: {os.getloadavg()[0]:.2f})")
    print("summed estimate time per estimator (s):")
    print(df.groupby("estimator", sort=False)["seconds"].sum().round(1).to_string())
    n_max = max(sizes)
    table = (df[df.n_samples == n_max].groupby(["task", "estimator"], sort=False)["error_bits"].mean()
             .unstack("estimator").reindex(index=[t.name for t in gt.tasks()], columns=list(estimators)))
    true = pd.Series({t.name: t.true_bits for t in gt.tasks()}, name="true")
    shown = table.round(3).astype(object).where(table.notna(), "skip")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 100):
        print(f"\nmean signed error (estimate - truth, bits) at N = {n_max:,}, mean over seeds:")
        print(pd.concat([true.round(3), shown], axis=1).to_string())
    within = (table.abs() <= 0.1).sum()
    taken = table.notna().sum()
    print("\ntasks within 0.1 bits / tasks taken, per estimator:")
    print("\n".join(f"  {e}: {within[e]} / {taken[e]}" for e in estimators))
    print("\nskipped (estimator: reason, first task):")
    for label, reasons in df.attrs["skipped"].items():
        task, reason = next(iter(reasons.items()))
        print(f"  {label}: {len(reasons)} tasks, e.g. {task}: {reason}")
    if args.csv:
        df.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()

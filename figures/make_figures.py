#!/usr/bin/env python
"""Rebuild every figure in figures/ from scratch: train, record, estimate, plot.

    python figures/make_figures.py             # full mode: the published figures (~20 min on 2 CPU cores)
    python figures/make_figures.py --quick     # smoke mode: the same pipeline at toy scale (CI, ~1 min)
    python figures/make_figures.py --out DIR   # write DIR/*.png and DIR/data/*.csv instead of figures/

Every figure ``DIR/NAME.png`` has its numbers beside it in ``DIR/data/NAME.csv`` (tidy: one row per point
drawn, mutual information in bits); ``DIR/data/compression_scores.csv`` holds each hidden layer's compression
score, and ``DIR/data/timings.csv`` the wall time of every stage. Activations are recorded into zarr stores
under ``DIR/runs/`` (not committed).

The protocol is fixed here, up front, from THEORY.md (never tuned toward a paper's picture):

* SZT task, all 4096 inputs; SZTNet 12-10-7-5-4-3-2 (tanh or ReLU hidden layers, softmax output), Adam
  lr 4e-4, batch 256, a stratified 80% train split; every (activation, seed) run is trained once and its six
  representations (``SZTNet.layer_names``) recorded on all 4096 inputs at log-spaced epochs.
* Estimators (``infoplane.estimators.presets.ESTIMATOR_PRESETS``): "binning" = 30 edges np.linspace(-1, 1, 30), out-of-
  range values in the end bins (SZT 2017); "binning-width" = fixed width 0.07 over the whole line (Saxe 2018);
  "binning-adaptive" = 30 bins per layer and epoch with equal numbers of distinct values (Chelombiev 2019); "kde-upper"/"kde-lower" =
  pairwise-KL / Bhattacharyya bounds with sigma^2 = 1e-3 (Kolchinsky & Tracey 2017; Saxe 2018).
* Compression score (``infoplane.compression_scores``): max over epochs of I(T;X) minus I(T;X) at the last
  recorded epoch, per run; mean and standard deviation (ddof 1) over seeds.
* VIB on scikit-learn's digits (``infoplane.nets.beta_sweep``): rate R >= I(Z;X), the aggregate-posterior
  mixture bounds on I(Z;X) and the Barber-Agakov bound I_BA <= I(Z;Y) across beta.

Seeds are explicit (``Settings.seeds``); every random draw goes through one of them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from tqdm.auto import tqdm

import infoplane
from infoplane import (
    Layer,
    Recorder,
    SaturationWarning,
    Schedule,
    SZTNet,
    VIBClassifier,
    beta_sweep,
    compression_scores,
    information_plane,
    load_results,
    open_store,
    save_results,
    summarize_runs,
)
from infoplane.estimators import (
    BinningEstimator,
    KDEEstimator,
    KNNEstimator,
    MixtureEstimator,
    NoisyEstimator,
    ProbeEstimator,
    RateEstimator,
    gaussian_rate,
    mixture_mi_bounds,
)
from infoplane.estimators.functional import entropy_bits
from infoplane.nets import ConvNet, load_digits, load_digits_augmented, load_szt, mlp, train, train_test_split
from infoplane.noise import GaussianDropout, add_noise
from infoplane.plotting import (
    plot_information_plane,
    plot_information_plane_grid,
    plot_mi_vs_epoch,
    plot_rate_gap,
    plot_vib_tradeoff,
)

# ------------------------------------------------------------------------------------------------------
# The protocol (fixed) and the two scales (quick, full)
# ------------------------------------------------------------------------------------------------------
ACTIVATIONS = ("tanh", "relu")
WIDTHS = (12, 10, 7, 5, 4, 3, 2)
LR = 4e-4
BATCH_SIZE = 256
TEST_SIZE = 0.2  # 80% train split (SZT 2017)
SZT_EDGES = np.linspace(-1.0, 1.0, 30)  # the original 30 edges on [-1, 1]
BIN_WIDTH = 0.07  # Saxe et al. (2018) for the SZT net
N_ADAPTIVE = 30  # bins of equal distinct-value counts (Chelombiev et al. 2019), as many as the SZT edges
KDE_NOISE = 1e-3  # sigma^2 of the KDE bounds for the SZT net (Saxe et al. 2018)
FINAL_EPOCHS = 1  # compression score: max I(T;X) minus its value at the last recorded epoch (the package default;
# averaging the last few log-spaced epochs would count a still-rising trajectory as compression)
#: Preset label -> how figures name it.
METHODS = {
    "binning": "30 bins on [−1, 1]",
    "binning-width": "bin width 0.07",
    "binning-adaptive": "30 adaptive bins",
    "kde-upper": "KDE upper (σ²=1e-3)",
    "kde-lower": "KDE lower (σ²=1e-3)",
}
#: Which (activation, estimator) configurations the compression table reports.
SCORE_CONFIGS = (
    ("tanh", "binning"), ("tanh", "binning-width"), ("tanh", "kde-upper"),
    ("relu", "binning-width"), ("relu", "kde-upper"), ("relu", "binning"),
)


@dataclass(frozen=True)
class Settings:
    """One scale of the whole pipeline. Every number that sets the cost of a figure lives here."""

    mode: str
    seeds: tuple[int, ...]  # SZT runs per activation (init, split and minibatch order all from the seed)
    epochs: int  # training epochs of each SZT run
    n_record: int  # log-spaced recorded epochs, Schedule.log_spaced(epochs, n_record) (0 and last included)
    agreement_seed: int  # the run on which every estimator (KDE lower included) is compared
    # ground truth
    gt_sizes: tuple[int, ...]  # N of the Gaussian-channel KDE check
    gt_repeats: int  # independent samples per N
    gt_snrs: tuple[float, ...]  # s^2/v of the Gaussian channel at the largest N
    lg_gains: tuple[float, ...]  # a of the linear-Gaussian encoder mu = a x
    lg_n: int  # inputs of the linear-Gaussian check
    mixture_samples: int  # M, z samples per input of the mixture bounds of the linear-Gaussian check
    # VIB on digits (beta_sweep's model: 64-128-Gaussian z of 8 dims-linear decoder, Adam lr 1e-3, batch 128)
    vib_betas: tuple[float, ...]
    vib_seeds: tuple[int, ...]  # one beta_sweep per seed
    vib_epochs: int
    vib_record_every: int
    vib_samples: int  # M, z samples per input of the VIB mixture and Barber-Agakov bounds
    vib_plane_beta: float  # the beta whose encoder is recorded over training
    vib_plane_epochs: int
    vib_plane_n_record: int  # log-spaced recorded epochs of that run


QUICK = Settings(
    mode="quick", seeds=(0,), epochs=150, n_record=6, agreement_seed=0,
    gt_sizes=(64, 256, 1024), gt_repeats=2, gt_snrs=(1.0, 10.0), lg_gains=(0.0, 1.0, 2.0), lg_n=256,
    mixture_samples=4,
    vib_betas=(1e-3, 1e-1), vib_seeds=(0,), vib_epochs=4, vib_record_every=2, vib_samples=2, vib_plane_beta=1e-2,
    vib_plane_epochs=4, vib_plane_n_record=3,
)
FULL = Settings(
    mode="full", seeds=(0, 1, 2, 3, 4), epochs=10_000, n_record=50, agreement_seed=0,
    gt_sizes=(32, 64, 128, 256, 512, 1024, 2048, 4096), gt_repeats=5, gt_snrs=(0.25, 1.0, 4.0, 16.0, 64.0),
    lg_gains=tuple(np.round(np.linspace(0.0, 3.0, 13), 2)), lg_n=1024, mixture_samples=16,
    vib_betas=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0), vib_seeds=(0, 1, 2), vib_epochs=100,
    vib_record_every=10, vib_samples=8, vib_plane_beta=1e-2, vib_plane_epochs=200, vib_plane_n_record=30,
)


# ------------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------------
def entropy_of_labels_bits(y: np.ndarray) -> float:
    """Plug-in entropy of the label frequencies, bits."""
    return entropy_bits(np.bincount(y))


def save_figure(fig: plt.Figure, out: Path, name: str, table: pd.DataFrame) -> None:
    """Write ``out/name.png`` and its numbers ``out/data/name.csv``; close the figure."""
    fig.savefig(out / f"{name}.png", dpi=150)
    plt.close(fig)
    table.to_csv(out / "data" / f"{name}.csv", index=False)


def with_methods(df: pd.DataFrame) -> pd.DataFrame:
    """Name each estimator as the figures do: ``estimator`` becomes the display name, ``preset`` keeps the label."""
    df = df.copy()
    df.insert(df.columns.get_loc("estimator"), "preset", df["estimator"])
    df["estimator"] = df["preset"].map(METHODS).fillna(df["preset"])
    return df


def short_titles(fig: plt.Figure, rows: Sequence[str], cols: Sequence[str]) -> None:
    """Retitle a grid's panels (row-major) as "row value · col value": the default titles overflow."""
    for ax, (r, c) in zip(fig.axes, [(r, c) for r in rows for c in cols]):
        ax.set_title(f"{r} · {c}", fontsize="medium")


def run_name(activation: str, seed: int) -> str:
    return f"{activation}-seed{seed}"


# ------------------------------------------------------------------------------------------------------
# Stage 1: train every SZT run once, recording all six layers
# ------------------------------------------------------------------------------------------------------
def train_szt_run(activation: str, seed: int, settings: Settings, path: str,
                  reuse: bool) -> tuple[pd.DataFrame, bool]:
    """Train one SZTNet and record ``layer_names`` on all 4096 inputs into a zarr store at ``path``.

    Returns the training history (loss and accuracies per epoch) and whether an existing store was reused:
    with ``reuse``, a complete store made with the same settings is kept and its saved history returned.
    """
    torch.set_num_threads(1)  # one run per core: the runs themselves are the parallelism
    schedule = Schedule.log_spaced(settings.epochs, settings.n_record)
    signature = {"activation": activation, "seed": seed, "epochs": settings.epochs, "n_record": settings.n_record,
                 "lr": LR, "batch_size": BATCH_SIZE, "test_size": TEST_SIZE}
    history_path = Path(path + ".history.csv")
    if reuse and history_path.is_file():
        try:
            with open_store(path) as store:
                done = store.metadata.get("figures") == signature and store.epochs == schedule.epochs_until(
                    settings.epochs)
        except FileNotFoundError:
            done = False
        if done:
            return pd.read_csv(history_path), True
    if Path(path).exists():
        shutil.rmtree(path)
    X, y = load_szt(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=TEST_SIZE, seed=seed)
    model = SZTNet(activation, widths=WIDTHS, seed=seed)
    with Recorder(model, model.layer_names, X, labels=y, schedule=schedule, store=path) as rec:
        history = train(model, X_train, y_train, epochs=settings.epochs, batch_size=BATCH_SIZE, lr=LR, seed=seed,
                        X_test=X_test, y_test=y_test, callback=rec.step, progress=False)
        rec.store.set_metadata(figures=signature)
    history.insert(0, "run", run_name(activation, seed))
    history.insert(1, "activation", activation)
    history.insert(2, "seed", seed)
    history.to_csv(history_path, index=False)
    return history, False


def stage_train(ctx: dict) -> None:
    s: Settings = ctx["settings"]
    all_runs = [(a, seed) for a in ACTIVATIONS for seed in s.seeds]
    runs = ctx.get("szt_runs") or all_runs  # --only wide_estimators needs one run (see needed_runs)
    paths = {run_name(a, seed): str(ctx["runs_dir"] / f"{run_name(a, seed)}.zarr") for a, seed in runs}
    results = Parallel(n_jobs=ctx["jobs"])(
        delayed(train_szt_run)(a, seed, s, paths[run_name(a, seed)], ctx["reuse"]) for a, seed in runs
    )
    history = pd.concat([h for h, _ in results], ignore_index=True)
    ctx["all_reused"] = all(reused for _, reused in results)
    # Every epoch stays in runs/; the committed table keeps the recorded (log-spaced) epochs only, of all runs.
    recorded = Schedule.log_spaced(s.epochs, s.n_record).epochs_until(s.epochs)
    if runs == all_runs:
        history[history["epoch"].isin(recorded)].to_csv(ctx["out"] / "data" / "training_history.csv", index=False)
    ctx["paths"] = paths
    ctx["history"] = history


# ------------------------------------------------------------------------------------------------------
# Stage 2: estimate every (run, epoch, layer) from the stores
# ------------------------------------------------------------------------------------------------------
def _merge_attrs(tables: Sequence[pd.DataFrame]) -> dict:
    conventions: dict = {}
    for t in tables:
        conventions.update(t.attrs.get("conventions", {}))
    return {"conventions": conventions, "layers": tables[0].attrs.get("layers"), "units": "bits"}


def estimate_planes(ctx: dict) -> pd.DataFrame:
    """Every (run, epoch, layer) under every estimator: binning x3 and the KDE upper bound on all runs, the
    KDE lower bound on the agreement runs. Cheap binning runs in this process, the KDE work on ``jobs``."""
    s: Settings = ctx["settings"]
    paths = ctx["paths"]
    agreement_runs = {r: p for r, p in paths.items() if r.endswith(f"-seed{s.agreement_seed}")}
    tables = [
        information_plane(paths, estimators=["binning", "binning-width", "binning-adaptive"], progress=False),
        information_plane(paths, estimators=["kde-upper"], n_jobs=ctx["jobs"], progress=ctx["progress"]),
        information_plane(agreement_runs, estimators=["kde-lower"], n_jobs=ctx["jobs"], progress=ctx["progress"]),
    ]
    df = pd.concat(tables, ignore_index=True)
    df = df.sort_values(["run", "epoch"], kind="stable").reset_index(drop=True)
    df.attrs = _merge_attrs(tables)
    parts = df["run"].str.rsplit("-seed", n=1, expand=True)
    df.insert(1, "activation", parts[0])
    df.insert(2, "seed", parts[1].astype("int64"))
    return df


def stage_estimate(ctx: dict) -> None:
    saved = ctx["runs_dir"] / "planes.csv"  # every point of every run (large: scratch, not committed)
    # The saved table is reused only for the same stores and the same estimator code: after an estimator or
    # analysis change, --reuse-runs re-estimates from the kept stores.
    signature = code_signature(*(ROOT / "infoplane" / d for d in ("estimators", "analysis", "_core")))
    signature_path = ctx["runs_dir"] / "planes.signature"
    same_code = signature_path.is_file() and signature_path.read_text() == signature
    if ctx["reuse"] and ctx.get("all_reused") and saved.is_file() and same_code:
        df = load_results(saved)
        ctx["estimates_reused"] = True
    else:
        df = estimate_planes(ctx)
        save_results(df, saved)
        signature_path.write_text(signature)
    ctx["planes"] = df
    attrs = df.attrs
    # Mean and spread over seeds, per activation.
    summaries = []
    for activation, part in df.groupby("activation", sort=False):
        summ = summarize_runs(part.drop(columns=["activation", "seed"]))
        summ.insert(0, "activation", activation)
        summaries.append(summ)
    summary = pd.concat(summaries, ignore_index=True)
    summary.attrs = attrs
    ctx["summary"] = summary


# ------------------------------------------------------------------------------------------------------
# Figures of the SZT runs
# ------------------------------------------------------------------------------------------------------
def figure_szt_plane(ctx: dict) -> None:
    """SZT 2017: tanh, 30 edges on [-1, 1], all layers, averaged over seeds; I(T;X) and I(T;Y) vs epoch."""
    s: Settings = ctx["settings"]
    table = ctx["summary"].query("activation == 'tanh' and estimator == 'binning'").reset_index(drop=True)
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.6), layout="constrained",
                             gridspec_kw={"width_ratios": [1.35, 1, 1]})
    n_runs = int(table["n_runs"].max())
    # Means only in the plane (± sd crosses on ~45 points x 6 layers hide the paths); the bands on the right
    # and the CSV (I_XT_std, I_TY_std) carry the spread over seeds.
    plot_information_plane(table, estimator="binning", epoch_scale="log", H_X=ctx["H_X"], H_Y=ctx["H_Y"],
                           spread=False, title=f"tanh, 30 bins on [−1, 1] (mean of {n_runs} seeds)", ax=axes[0])
    plot_mi_vs_epoch(table, "I_XT", estimator="binning", epoch_scale="log", H_X=ctx["H_X"],
                     title="I(T;X) (± 1 sd over seeds)", ax=axes[1], palette="viridis")
    plot_mi_vs_epoch(table, "I_TY", estimator="binning", epoch_scale="log", H_Y=ctx["H_Y"], legend=False,
                     title="I(T;Y) (± 1 sd over seeds)", ax=axes[2], palette="viridis")
    fig.suptitle(f"SZT information plane: 12-10-7-5-4-3-2 tanh, Adam lr {LR:g}, batch {BATCH_SIZE}, "
                 f"{s.epochs} epochs, MI on all 4096 inputs")
    save_figure(fig, ctx["out"], "szt_information_plane", table)


def figure_saxe(ctx: dict) -> None:
    """Saxe 2018: tanh vs ReLU under fixed-width bins and KDE, plus both under the [-1, 1] range."""
    cols = ["binning-width", "kde-upper", "binning"]
    order = [METHODS[c] for c in cols]
    table = with_methods(ctx["summary"][ctx["summary"]["estimator"].isin(cols)]).reset_index(drop=True)
    fig = plot_information_plane_grid(
        table, row="activation", col="estimator", row_order=list(ACTIVATIONS), col_order=order,
        epoch_scale="log", H_Y=ctx["H_Y"], sharex=False, sharey=True, panel_size=(4.3, 3.5), spread=False,
    )
    short_titles(fig, ACTIVATIONS, order)
    fig.suptitle("tanh vs ReLU (mean over seeds; spread in the CSV): fixed-width bins and KDE over the whole "
                 "range; 30 bins on a fixed [−1, 1] range (right)")
    save_figure(fig, ctx["out"], "saxe_comparison", table)


def figure_agreement(ctx: dict) -> None:
    """Every estimator on the same run (one seed), tanh and ReLU."""
    s: Settings = ctx["settings"]
    df = ctx["planes"]
    table = with_methods(df[df["seed"] == s.agreement_seed]).reset_index(drop=True)
    order = [METHODS[e] for e in ("binning", "binning-width", "binning-adaptive", "kde-upper", "kde-lower")]
    fig = plot_information_plane_grid(
        table, row="activation", col="estimator", row_order=list(ACTIVATIONS), col_order=order,
        epoch_scale="log", H_Y=ctx["H_Y"], sharex=False, sharey=True, panel_size=(3.6, 3.2), s=12,
    )
    short_titles(fig, ACTIVATIONS, order)
    fig.suptitle(f"Estimator agreement on one run per activation (seed {s.agreement_seed})")
    save_figure(fig, ctx["out"], "estimator_agreement", table)


def stage_compression(ctx: dict) -> None:
    """Each hidden layer's compression score, mean and sd over seeds; a bar chart of them."""
    df = ctx["planes"]
    hidden = [layer for layer in df.attrs["layers"] if layer != "softmax"]
    rows = []
    for activation, estimator in SCORE_CONFIGS:
        part = df[(df["activation"] == activation) & (df["estimator"] == estimator) & df["layer"].isin(hidden)]
        scores = compression_scores(part.drop(columns=["activation", "seed"]), final_epochs=FINAL_EPOCHS,
                                    aggregate=True)
        scores.insert(0, "activation", activation)
        scores.insert(2, "method", METHODS[estimator])
        rows.append(scores)
    table = pd.concat(rows, ignore_index=True)
    ctx["scores"] = table
    table.to_csv(ctx["out"] / "data" / "compression_scores.csv", index=False)

    fig, ax = plt.subplots(figsize=(11, 4.2), layout="constrained")
    configs = [f"{a}, {METHODS[e]}" for a, e in SCORE_CONFIGS]
    width = 0.8 / len(configs)
    x = np.arange(len(hidden))
    for i, (activation, estimator) in enumerate(SCORE_CONFIGS):
        part = table[(table["activation"] == activation) & (table["estimator"] == estimator)].set_index("layer")
        part = part.reindex(hidden)
        ax.bar(x + (i - (len(configs) - 1) / 2) * width, part["compression"], width,
               yerr=np.nan_to_num(part["compression_std"].to_numpy()), capsize=2, label=configs[i],
               color=f"C{i}", alpha=0.9 if activation == "tanh" else 0.55,
               hatch=None if activation == "tanh" else "//")
    ax.set_xticks(x, hidden)
    ax.set_xlabel("hidden layer")
    ax.set_ylabel("compression = max I(T;X) − final I(T;X) [bits]")
    n_runs = int(table["n_runs"].max())
    ax.set_title(f"Compression per hidden layer: max over epochs of I(T;X) − I(T;X) at the last epoch "
                 f"(mean ± sd over {n_runs} seed(s))")
    ax.legend(fontsize="small", ncol=2, frameon=False)
    save_figure(fig, ctx["out"], "compression_scores", table)


# ------------------------------------------------------------------------------------------------------
# The estimators against closed forms
# ------------------------------------------------------------------------------------------------------
def _kde(bound: str, noise: float) -> KDEEstimator:
    return KDEEstimator(noise_variance=noise, bound=bound)


def ground_truth_table(s: Settings) -> pd.DataFrame:
    """Estimated vs exact mutual information (bits) on the closed forms of THEORY.md."""
    rows: list[dict] = []

    def add(case, parameter, value, seed, estimator, quantity, estimate, exact):
        rows.append({"case": case, "parameter": parameter, "value": float(value), "seed": seed,
                     "estimator": estimator, "quantity": quantity, "estimate": float(estimate),
                     "exact": float(exact)})

    # Gaussian channel T = X + eps, X ~ N(0, s^2), eps ~ N(0, v): I = 1/2 log2(1 + s^2/v). KDE with sigma^2 = v on
    # N samples of X (the mixture is the empirical version of the channel).
    def channel(n: int, snr: float, seed: int, parameter: str, value: float) -> None:
        v = 1.0 / snr
        x = np.random.default_rng(seed).normal(size=(n, 1))
        y = (x[:, 0] > 0).astype(np.int64)
        exact = 0.5 * math.log2(1.0 + snr)
        for bound in ("upper", "lower"):
            r = _kde(bound, v).estimate(x, y)
            add("gaussian_channel", parameter, value, seed, f"kde-{bound}", "I_XT", r.I_XT, exact)

    for n in s.gt_sizes:
        for seed in range(s.gt_repeats):
            channel(n, 10.0, seed, "N (s²/v = 10)", n)
    for snr in s.gt_snrs:
        for seed in range(s.gt_repeats):
            channel(max(s.gt_sizes), snr, seed, f"s²/v (N = {max(s.gt_sizes)})", snr)

    _discrete_rows(add)
    # Linear-Gaussian encoder mu = a x, sigma^2 = v, x ~ N(0, s^2 = 1): rate, mixture bounds and gap.
    rows.extend(linear_gaussian_rows(s))
    return pd.DataFrame(rows)


def _discrete_rows(add) -> None:
    """Exact discrete cases, every estimator of the SZT figures (KDE with sigma^2 = 1e-3 on points >= 1 apart)."""
    estimators = {"binning": BinningEstimator(SZT_EDGES), "binning-width": BinningEstimator(bin_width=BIN_WIDTH),
                  "binning-adaptive": BinningEstimator(n_bins=N_ADAPTIVE, strategy="adaptive"),
                  "kde-upper": _kde("upper", KDE_NOISE), "kde-lower": _kde("lower", KDE_NOISE)}
    X, y_szt = load_szt(return_X_y=True)
    rng = np.random.default_rng(0)
    for k in (2, 3, 5, 10):  # T = one-hot(Y), unbalanced classes: I(T;Y) = I(T;X) = H(Y)
        p = rng.dirichlet(np.full(k, 2.0))
        y = rng.choice(k, size=2000, p=p)
        t = np.eye(k, dtype=np.float32)[y]
        exact = entropy_of_labels_bits(y)
        for name, est in estimators.items():
            r = est.estimate(t, y)
            add("one_hot_labels", "K classes", k, 0, name, "I_TY", r.I_TY, exact)
    for n in (16, 256, 4096):  # N distinct binary rows: I(T;X) = log2 N, I(T;Y) = H(Y)
        rows_ = np.sort(rng.permutation(len(X))[:n])
        t, y = X[rows_], y_szt[rows_]
        for name, est in estimators.items():
            r = est.estimate(t, y)
            add("distinct_rows", "N", n, 0, name, "I_XT", r.I_XT, math.log2(n))
            add("distinct_rows", "N", n, 0, name, "I_TY", r.I_TY, entropy_of_labels_bits(y))
    t = np.zeros((1000, 3), dtype=np.float32)  # a constant layer carries nothing
    y = rng.integers(0, 2, 1000)
    for name, est in estimators.items():
        r = est.estimate(t, y)
        add("constant_layer", "N", 1000, 0, name, "I_XT", r.I_XT, 0.0)


LG_V, LG_S2 = 0.5, 1.0  # the linear-Gaussian encoder's sigma^2 and the input variance s^2


def linear_gaussian_exact(a: np.ndarray) -> dict[str, np.ndarray]:
    """Closed forms (bits) of mu = a x, sigma^2 = v, x ~ N(0, s^2): rate R, I(Z;X), gap KL[p(z)||N(0,1)]."""
    a2s2, v, ln2 = np.square(a) * LG_S2, LG_V, math.log(2.0)
    return {"R": 0.5 * (-math.log(v) - 1.0 + a2s2 + v) / ln2,
            "I_XT": 0.5 * np.log1p(a2s2 / v) / ln2,
            "gap": 0.5 * (-np.log(a2s2 + v) - 1.0 + a2s2 + v) / ln2}


def linear_gaussian_rows(s: Settings) -> list[dict]:
    """Rate R, mixture bounds on I(Z;X) and the gap of mu = a x, sigma^2 = v against the closed forms.

    x is standardised to mean 0 and variance exactly s^2, so the rate (analytic given the mu) must match its
    closed form to rounding; the mixture bounds carry Monte Carlo and finite-N error.
    """
    x = np.random.default_rng(1).normal(size=(s.lg_n, 1))
    x = (x - x.mean()) / x.std() * math.sqrt(LG_S2)
    rows = []
    for a in s.lg_gains:
        mu, log_var = a * x, np.full_like(x, math.log(LG_V))
        exact = {k: float(v) for k, v in linear_gaussian_exact(np.array(a)).items()}
        bounds = mixture_mi_bounds(mu, log_var, n_samples=s.mixture_samples, seed=0)
        common = {"case": "linear_gaussian", "parameter": f"a (v = {LG_V}, s² = {LG_S2:g})", "value": float(a),
                  "seed": 0}
        rows += [
            {**common, "estimator": "rate", "quantity": "R", "estimate": gaussian_rate(mu, log_var),
             "exact": exact["R"]},
            {**common, "estimator": "mixture-lower", "quantity": "I_XT", "estimate": bounds.lower,
             "exact": exact["I_XT"]},
            {**common, "estimator": "mixture-upper", "quantity": "I_XT", "estimate": bounds.upper,
             "exact": exact["I_XT"]},
            {**common, "estimator": "rate - mixture-lower", "quantity": "gap", "estimate": bounds.gap,
             "exact": exact["gap"]},
        ]
    return rows


def figure_ground_truth(ctx: dict) -> None:
    table = ground_truth_table(ctx["settings"])
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4), layout="constrained")
    styles = {"kde-upper": ("C3", "^"), "kde-lower": ("C0", "v")}

    # (a), (b) Gaussian channel vs N and vs SNR
    for ax, prefix, xlabel in ((axes[0], "N (", "N (samples of X)"), (axes[1], "s²/v", "s²/v")):
        part = table[(table["case"] == "gaussian_channel") & table["parameter"].str.startswith(prefix)]
        stats = part.groupby(["estimator", "value"])["estimate"].agg(["mean", "std"]).reset_index()
        for est, (colour, marker) in styles.items():
            st = stats[stats["estimator"] == est]
            ax.errorbar(st["value"], st["mean"], yerr=np.nan_to_num(st["std"]), color=colour, marker=marker,
                        capsize=2, label=f"{est} (mean ± sd)")
        exact = part.groupby("value")["exact"].first()
        ax.plot(exact.index, exact.to_numpy(), "k--", label="exact ½log₂(1+s²/v)")
        ax.set_ylim(bottom=0)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("I(T;X) [bits]")
        ax.set_title(f"Gaussian channel, KDE bounds ({part['parameter'].iloc[0]})", fontsize="medium")
        ax.legend(fontsize="small", frameon=False)

    # (c) exact discrete cases: estimate vs exact, every estimator
    ax = axes[2]
    part = table[table["case"].isin(["one_hot_labels", "distinct_rows", "constant_layer"])]
    markers = {"one_hot_labels": "o", "distinct_rows": "s", "constant_layer": "D"}
    names = list(dict.fromkeys(part["estimator"]))
    for i, est in enumerate(names):
        for case, marker in markers.items():
            sub = part[(part["estimator"] == est) & (part["case"] == case)]
            # concentric rings, largest first, so coinciding estimators all stay visible
            ax.scatter(sub["exact"], sub["estimate"], marker=marker, s=150 - 28 * i, facecolors="none",
                       edgecolors=f"C{i}", linewidths=1.1, label=est if case == "one_hot_labels" else None)
    lim = [0, part["exact"].max() * 1.05]
    ax.plot(lim, lim, "k--", linewidth=0.8)
    for case, marker in markers.items():
        ax.scatter([], [], marker=marker, color="0.4", label=case.replace("_", " "))
    max_err = float((part["estimate"] - part["exact"]).abs().max())
    ax.set_xlabel("exact [bits] (H(Y), log₂ N or 0)")
    ax.set_ylabel("estimate [bits]")
    ax.set_title(f"Exact discrete cases (max |error| = {max_err:.1e} bits)", fontsize="medium")
    ax.legend(fontsize="x-small", frameon=False, ncol=2)

    # (d) linear-Gaussian encoder
    ax = axes[3]
    part = table[table["case"] == "linear_gaussian"]
    grid = np.linspace(0.0, part["value"].max(), 200)
    curves = linear_gaussian_exact(grid)
    for qty, colour, name in (("R", "C3", "R"), ("I_XT", "C0", "I(Z;X)"), ("gap", "C2", "KL[p(z)‖N(0,1)]")):
        ax.plot(grid, curves[qty], color=colour, linewidth=1.0, linestyle="--", label=f"exact {name}")
    for (est, qty), colour, marker in ((("rate", "R"), "C3", "o"), (("mixture-lower", "I_XT"), "C0", "v"),
                                       (("mixture-upper", "I_XT"), "C0", "^"),
                                       (("rate - mixture-lower", "gap"), "C2", "s")):
        sub = part[(part["estimator"] == est) & (part["quantity"] == qty)]
        ax.plot(sub["value"], sub["estimate"], color=colour, marker=marker, linestyle="none",
                label=f"{est}", markersize=5)
    ax.set_xlabel(f"a (μ = a·x, σ² = {LG_V}, x ~ N(0, {LG_S2:g}), N = {ctx['settings'].lg_n})")
    ax.set_ylabel("bits")
    ax.set_title("Linear-Gaussian encoder: rate, mixture I(Z;X), gap", fontsize="medium")
    ax.legend(fontsize="small", frameon=False)
    fig.suptitle("The estimators against closed forms (THEORY.md): markers estimated, dashed lines exact "
                 "(binning and KDE with the SZT settings; KDE σ² = v for the channel)")
    save_figure(fig, ctx["out"], "ground_truth", table)
    ctx["ground_truth"] = table


# ------------------------------------------------------------------------------------------------------
# The variational information bottleneck on digits
# ------------------------------------------------------------------------------------------------------
VIB_Z_DIM, VIB_HIDDEN, VIB_LR, VIB_BATCH = 8, (128,), 1e-3, 128  # beta_sweep's defaults, used for both figures


def figure_vib_sweep(ctx: dict) -> None:
    """Rate, mixture I(Z;X) and I_BA across beta (final epoch, mean ± sd over seeds): trade-off and rate gap."""
    s: Settings = ctx["settings"]
    sweeps = [beta_sweep("digits", s.vib_betas, epochs=s.vib_epochs, z_dim=VIB_Z_DIM, hidden=VIB_HIDDEN, lr=VIB_LR,
                         batch_size=VIB_BATCH, seed=seed, record_every=s.vib_record_every,
                         n_samples=s.vib_samples, n_jobs=ctx["jobs"])
              for seed in s.vib_seeds]
    table = pd.concat(sweeps, ignore_index=True)
    X, y = load_digits(return_X_y=True)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6), layout="constrained")
    plot_vib_tradeoff(table, H_Y=entropy_of_labels_bits(y), annotate=True, ax=axes[0])
    plot_rate_gap(table, H_X=math.log2(len(X)), ax=axes[1])
    # Rates span 0.01 to 100+ bits across beta: symlog (linear below 1 bit) keeps both ends readable.
    axes[0].set_xscale("symlog", linthresh=1.0)
    axes[0].set_xlim(left=0.0)
    axes[1].set_yscale("symlog", linthresh=1.0)
    axes[1].set_ylim(bottom=0.0)
    fig.suptitle(f"VIB on digits ({len(X)} inputs, z of {VIB_Z_DIM} dims, {s.vib_epochs} epochs, "
                 f"mean ± sd over {len(s.vib_seeds)} seed(s); I(Z;X) and I_BA on all inputs)")
    save_figure(fig, ctx["out"], "vib_beta_sweep", table)
    ctx["vib_sweep"] = table


def figure_vib_plane(ctx: dict) -> None:
    """One VIB encoder recorded over training; I(Z;X) from the rate and the mixture, I(Z;Y) by Barber-Agakov."""
    s: Settings = ctx["settings"]
    seed = s.vib_seeds[0]
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=TEST_SIZE, seed=seed)
    model = VIBClassifier(X.shape[1], 10, z_dim=VIB_Z_DIM, hidden=VIB_HIDDEN, beta=s.vib_plane_beta, seed=seed)
    schedule = Schedule.log_spaced(s.vib_plane_epochs, s.vib_plane_n_record)
    with Recorder(model, ["encoder"], X, labels=y, schedule=schedule) as rec:
        history = train(model, X_train, y_train, epochs=s.vib_plane_epochs, batch_size=VIB_BATCH, lr=VIB_LR,
                        seed=seed, X_test=X_test, y_test=y_test, loss_fn=VIBClassifier.training_loss,
                        callback=rec.step, progress=False)
        # The decoder changes over training, so I_BA uses a probe decoder fitted (cross-fitted) at each epoch.
        common = {"decoder": "probe", "n_samples": s.vib_samples, "seed": seed, "beta": s.vib_plane_beta}
        estimators = {"rate R (upper)": RateEstimator(**common),
                      "mixture (lower)": MixtureEstimator("lower", **common),
                      "mixture (upper)": MixtureEstimator("upper", **common)}
        table = information_plane(rec.store, estimators=estimators, n_jobs=ctx["jobs"], progress=ctx["progress"])
    table["layer"] = "z"
    fig = plot_information_plane_grid(table, col="estimator", col_order=list(estimators), epoch_scale="log",
                                      H_X=math.log2(len(X)), H_Y=entropy_of_labels_bits(y), sharex=False,
                                      layer_labels=None, panel_size=(4.4, 3.7), s=24)
    for ax, name in zip(fig.axes, ["rate R ≥ I(Z;X)", "mixture lower bound", "leave-one-out upper bound"]):
        ax.set_title(f"x: {name}; y: I_BA ≤ I(Z;Y)", fontsize="medium")
        ax.set_xlabel("I(Z;X) [bits]")
    fig.axes[0].set_ylabel("I(Z;Y) [bits]")
    final = history.iloc[-1]
    fig.suptitle(f"VIB encoder over training (digits, β = {s.vib_plane_beta:g}, {s.vib_plane_epochs} epochs, "
                 f"final test accuracy {final['test_accuracy']:.3f}); I(Z;Y) = Barber–Agakov with a "
                 "cross-fitted probe decoder")
    save_figure(fig, ctx["out"], "vib_information_plane", table)


# ------------------------------------------------------------------------------------------------------
# A real network's plane that means something: noisy layers recorded, the "noisy" estimator, binning beside it
# ------------------------------------------------------------------------------------------------------
#: Scale of the real-network figure per mode. ConvNet: trained on 80% of ``n`` augmented digits, all ``n`` the
#: probe; FC 64-512-128-32-10: the same training images, the first ``fc_probe`` of them the probe. ``epochs``
#: with ``n_record`` log-spaced recordings (>= 20 distinct in full mode), ``draws`` noise draws per probe row,
#: ``points`` Monte Carlo points per estimate.
REAL_NET = {
    "quick": {"n": 400, "size": 8, "epochs": 2, "n_record": 3, "draws": 2, "points": 256, "fc_probe": 200},
    "full": {"n": 10_000, "size": 8, "epochs": 25, "n_record": 40, "draws": 8, "points": 2048, "fc_probe": 2000},
}
#: Gaussian dropout (Adilova, Geiger & Fischer 2023) on the linear layers' outputs (pre-activations: never
#: exactly 0, so every unit is noisy): sigma^2 = rate / (1 - rate).
REAL_NET_RATE = 0.2
CONV_NOISY = ["dense1.1", "dense2"]  # ConvNet: the hidden linear layer (64) and the logits (10)
#: ConvNet channels: (8, 16, 16) instead of the default (16, 32, 64) so that full mode (25 epochs, 21 recorded,
#: each recording 8 draws of 10,000 images) fits 25 minutes on 2 shared cores (measured: 19 s per training
#: epoch and 13 s per recording under load 20, against 65 s and 19 s with the default channels).
CONV_CHANNELS = (8, 16, 16)
FC_WIDTHS = [64, 512, 128, 32, 10]
FC_NOISY = ["0", "2", "4", "6"]  # mlp's linear layers: 512, 128, 32, 10


def _real_net_run(name: str, model: torch.nn.Module, noisy: list[str], X, y, probe, y_probe, cfg: dict,
                  path: str, progress: bool) -> tuple[pd.DataFrame, dict]:
    """Train ``model`` with Gaussian dropout at ``noisy`` (add_noise), record those layers' draws, estimate."""
    spec = GaussianDropout(REAL_NET_RATE)
    schedule = Schedule.log_spaced(cfg["epochs"], cfg["n_record"])
    layers = [Layer(n, noise=spec) for n in noisy]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=TEST_SIZE, seed=0)
    t0 = time.perf_counter()
    with Recorder(model, layers, probe, labels=y_probe, schedule=schedule, store=path, draws=cfg["draws"],
                  batch_size=2048) as rec, add_noise(model, noisy, spec, seed=1):
        history = train(model, X_train, y_train, epochs=cfg["epochs"], batch_size=128, lr=1e-3, seed=0,
                        X_test=X_test, y_test=y_test, callback=rec.step, progress=False, threads=None)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimators = {"binning-width": BinningEstimator(bin_width=0.07), "noisy": NoisyEstimator(max_points=cfg["points"])}
    if name == "ConvNet":  # the probe's cost grows with width: on the FC net's 512 units it would dominate
        estimators["probe"] = ProbeEstimator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SaturationWarning)  # binning saturates: that is what the figure shows
        table = information_plane(path, estimators=estimators, progress=progress)
    info = {"history": history, "train_record_s": t_train, "estimate_s": time.perf_counter() - t0,
            "H_X": math.log2(len(probe)), "epochs_recorded": len(open_store(path).epochs)}
    return table.assign(network=name), info


def real_network_tables(ctx: dict) -> tuple[pd.DataFrame, dict]:
    cfg = REAL_NET[ctx["settings"].mode]
    X, y = load_digits_augmented(cfg["n"], seed=0, size=cfg["size"])
    runs = ctx["runs_dir"]
    conv, conv_info = _real_net_run("ConvNet", ConvNet(image_size=cfg["size"], channels=CONV_CHANNELS, seed=0),
                                    CONV_NOISY, X, y, X, y, cfg,
                                    str(runs / "real_conv.zarr"), ctx["progress"])
    torch.manual_seed(0)
    flat = X.reshape(len(X), -1)
    fc, fc_info = _real_net_run("FC 64-512-128-32-10", mlp(FC_WIDTHS, "relu"), FC_NOISY, flat, y,
                                flat[: cfg["fc_probe"]], y[: cfg["fc_probe"]], cfg, str(runs / "real_fc.zarr"),
                                ctx["progress"])
    return pd.concat([conv, fc], ignore_index=True), {"ConvNet": conv_info, "FC 64-512-128-32-10": fc_info}


def draw_real_network(table: pd.DataFrame, h_x: dict, accuracy: dict, cfg: dict) -> plt.Figure:
    """The real-network figure from its table (``data/real_network.csv``): one row of panels per network."""
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5), constrained_layout=True)
    y = load_digits_augmented(cfg["n"], seed=0, size=cfg["size"])[1]
    h_y = entropy_of_labels_bits(y)
    for row, name in zip(axes, h_x):
        sub = table[table["network"] == name]
        for ax, est in zip(row[:2], ["binning-width", "noisy"]):
            plot_information_plane(sub, estimator=est, epoch_scale="log", H_X=h_x[name], H_Y=h_y,
                                   layer_labels="legend", colorbar=est == "noisy", ax=ax,
                                   title=f"{name}: {'binning, width 0.07' if est != 'noisy' else 'noisy (± 1 SE)'}")
        ity = "probe" if "probe" in set(sub["estimator"]) else "noisy"
        plot_mi_vs_epoch(sub, "I_TY", estimator=ity, H_Y=h_y, ax=row[2], title=f"{name}: I(T;Y), {ity}")
        row[2].text(0.02, 0.02, f"test accuracy {accuracy[name]:.3f}", transform=row[2].transAxes, fontsize="small")
    fig.suptitle(f"Gaussian dropout rate {REAL_NET_RATE} (σ² = rate/(1−rate)) on the linear layers, trained and "
                 f"recorded with it; {cfg['draws']} draws per probe row; ConvNet probe {cfg['n']:,} augmented "
                 f"digits, FC probe {cfg['fc_probe']:,}; {cfg['epochs']} epochs", fontsize="medium")
    return fig


def figure_real_network(ctx: dict) -> None:
    """Per network: binning (saturated points ringed), the noisy estimator's plane (± 1 SE), I(T;Y) by the probe."""
    cfg = REAL_NET[ctx["settings"].mode]
    table, infos = real_network_tables(ctx)
    accuracy = {k: float(v["history"].iloc[-1]["test_accuracy"]) for k, v in infos.items()}
    fig = draw_real_network(table, {k: v["H_X"] for k, v in infos.items()}, accuracy, cfg)
    cols = ["network", "epoch", "layer", "estimator", "I_XT", "I_TY", "I_XT_se", "I_TY_se", "bound_XT", "bound_TY",
            "n_samples", "saturated", "dpi_violation"]
    save_figure(fig, ctx["out"], "real_network", table[cols])
    # I(T;Y)-only estimators (the probe) have no I(T;X) to compress; the joined table has lost their conventions
    has_xt = table.groupby("estimator")["I_XT"].transform(lambda s: s.notna().any()).astype(bool)
    scored = table[has_xt]
    scores = compression_scores(scored.drop(columns="network").assign(run=scored["network"]))
    scores.to_csv(ctx["out"] / "data" / "real_network_compression.csv", index=False)
    pd.DataFrame([{"network": k, "train_record_s": round(v["train_record_s"], 1),
                   "estimate_s": round(v["estimate_s"], 1), "epochs_recorded": v["epochs_recorded"],
                   "test_accuracy": float(v["history"].iloc[-1]["test_accuracy"])} for k, v in infos.items()]
                 ).to_csv(ctx["out"] / "data" / "real_network_timings.csv", index=False)


# ------------------------------------------------------------------------------------------------------
# Wide-layer estimators (k-NN, probe, critic, noisy network) beside binning and KDE
# ------------------------------------------------------------------------------------------------------
#: quick/full: recorded epochs the estimators see, the wide net's epochs and recordings, critic epochs, and the
#: probe rows used (None: all; quick mode subsamples so that the CI smoke run stays short).
WIDE = {"quick": {"szt_epochs": 2, "wide_epochs": 4, "wide_record": 2, "critic_epochs": 5, "rows": 400},
        "full": {"szt_epochs": 8, "wide_epochs": 60, "wide_record": 8, "critic_epochs": 100, "rows": None}}
WIDE_NOISE_STD = 0.1  # s of the noisy-network estimator (noise added after each layer; activations in [-1, 1])


def _wide_digits_run(path: str, epochs: int, n_record: int) -> None:
    """A wide tanh MLP 64-512-256-10 on scikit-learn's digits (1797 inputs); its two tanh layers ("1": 512 units,
    "3": 256) recorded at log-spaced epochs."""
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    model = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.Tanh(), torch.nn.Linear(512, 256), torch.nn.Tanh(),
                                torch.nn.Linear(256, 10))
    with Recorder(model, ["1", "3"], X, labels=y, schedule=Schedule.log_spaced(epochs, n_record), store=path) as rec:
        train(model, X, y, epochs=epochs, batch_size=128, lr=1e-3, seed=0, callback=rec.step, progress=False)


def _pick(epochs: Sequence[int], k: int) -> list[int]:
    idx = np.unique(np.round(np.linspace(0, len(epochs) - 1, k)).astype(int))
    return [int(epochs[i]) for i in idx]


def _wide_table(path: str, estimators: dict, n_epochs: int, rows: int | None) -> pd.DataFrame:
    """Every estimator on every layer at ``n_epochs`` recorded epochs, on ``rows`` probe rows (seeded subset)."""
    from infoplane.analysis import geometric_compression

    out = []
    with open_store(path) as store:
        y = np.asarray(store.labels)
        idx = np.arange(len(y)) if rows is None else np.sort(np.random.default_rng(0).permutation(len(y))[:rows])
        for epoch in _pick(store.epochs, n_epochs):
            for layer in store.layers:
                t = np.asarray(store.activations(epoch, layer))[idx]
                geo = geometric_compression(t, y[idx])
                for label, est in estimators.items():
                    r = est.estimate(t, y[idx], layer=layer, epoch=epoch)
                    out.append({"epoch": epoch, "layer": layer, "estimator": label, "I_XT": r.I_XT, "I_TY": r.I_TY,
                                "bound_XT": r.bound_XT, "bound_TY": r.bound_TY, "n_samples": r.n_samples,
                                "geo_compression": geo})
    return pd.DataFrame(out)


def figure_wide_estimators(ctx: dict) -> None:
    """The SZT tanh run (seed 0) and a wide digits MLP under binning and KDE, and under the estimators for wide
    layers: k-NN (Ross), the cross-fitted probe and an InfoNCE critic for I(T;Y), the noisy-network estimator
    (s = WIDE_NOISE_STD) for I(X;T) and I(T;Y), and the geometric compression tr(S_W S_B^+)/C."""
    from infoplane.estimators import CriticEstimator, NoisyEstimator, ProbeEstimator
    from infoplane.estimators.presets import make_estimator

    w = WIDE[ctx["settings"].mode]
    wide_path = str(ctx["runs_dir"] / "wide-digits.zarr")
    if Path(wide_path).exists():
        shutil.rmtree(wide_path)
    _wide_digits_run(wide_path, w["wide_epochs"], w["wide_record"])
    runs = {"SZT tanh 12-10-7-5-4-3-2": (ctx["paths"][run_name("tanh", 0)], "binning", KDE_NOISE, w["szt_epochs"]),
            "digits tanh 64-512-256-10": (wide_path, "binning-width", 1e-1, w["wide_record"] + 1)}
    learned = {"knn": KNNEstimator(k=3), "probe": ProbeEstimator(),
               "critic": CriticEstimator("infonce", epochs=w["critic_epochs"], patience=10),
               "noisy": NoisyEstimator(noise_std=WIDE_NOISE_STD, n_draws=4)}
    tables = []
    for label, (path, binning, kde_noise, n_epochs) in runs.items():
        ests = {binning: make_estimator(binning), "kde-upper": KDEEstimator(noise_variance=kde_noise, bound="upper"),
                **learned}
        part = _wide_table(path, ests, n_epochs, w["rows"])
        part.insert(0, "network", label)
        tables.append(part)
    table = pd.concat(tables, ignore_index=True)
    save_figure(draw_wide_estimators(table), ctx["out"], "wide_estimators", table)


def draw_wide_estimators(table: pd.DataFrame) -> plt.Figure:
    """The wide-layer figure from its table (``data/wide_estimators.csv``): one row of panels per network."""
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5), constrained_layout=True)
    styles = {"binning": "-", "binning-width": "-", "kde-upper": "--", "noisy": ":", "knn": "-.", "probe": "-",
              "critic": "--"}
    for row, (label, part) in zip(axes, table.groupby("network", sort=False)):
        layers = list(dict.fromkeys(part["layer"]))
        first, last = layers[0], layers[-2] if len(layers) > 2 else layers[-1]
        colours = dict(zip(layers, plt.cm.viridis(np.linspace(0, 0.9, len(layers)))))
        for est, grp in part.groupby("estimator", sort=False):
            for layer, g in grp.groupby("layer", sort=False):
                if not g["I_XT"].isna().all():
                    row[0].plot(g["epoch"], g["I_XT"], styles.get(est, "-"), color=colours[layer],
                                label=f"{est} · {layer}" if layer in (first, last) else None)
            for ax, layer in ((row[1], first), (row[2], last)):
                g = grp[grp["layer"] == layer]
                ax.plot(g["epoch"], g["I_TY"], styles.get(est, "-"), marker="o", ms=3, label=est)
        geo = part.drop_duplicates(["epoch", "layer"])
        for layer, g in geo.groupby("layer", sort=False):
            row[3].plot(g["epoch"], g["geo_compression"], color=colours[layer], marker="o", ms=3, label=layer)
        row[0].set_title(f"{label}: I(T;X), binning / KDE / noisy", fontsize="medium")
        row[1].set_title(f"I(T;Y), layer {first}", fontsize="medium")
        row[2].set_title(f"I(T;Y), layer {last}", fontsize="medium")
        row[3].set_title("geometric compression tr(Σ_W Σ_B⁺)/C", fontsize="medium")
        row[3].set_yscale("log")
        for ax in row[1:3]:  # at least 0.5 bits tall, so that a few hundredths do not look like a trajectory
            low, high = ax.get_ylim()
            if high - low < 0.5:
                mid = (low + high) / 2
                ax.set_ylim(mid - 0.25, mid + 0.25)
        for ax in row:
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlim(left=0)  # epochs start at 0: no negative half of the symlog axis
            ax.set_xlabel("epoch")
        row[0].set_ylabel("bits")
        row[0].legend(fontsize="x-small", ncol=2)
        row[1].legend(fontsize="x-small")
        row[3].legend(fontsize="x-small")
    fig.suptitle("Estimators for wide layers beside binning and KDE (k-NN, probe, critic: I(T;Y) only)")
    return fig


# ------------------------------------------------------------------------------------------------------
# The manifest: what figures/data/manifest.json records about each figure (mode, settings, commit, wall time,
# machine)
# ------------------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: Path = ROOT) -> dict:
    """The commit the figures were made from, and whether tracked files differed from it (``dirty``)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
        return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
                "dirty": bool(changed), "changed_files": changed}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "branch": None, "dirty": None, "changed_files": []}


def machine() -> dict:
    """CPUs, the cores this process may use, load averages (1, 5, 15 min), platform and library versions."""
    import numpy as np
    import torch

    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpus": os.cpu_count(), "affinity": affinity, "load_average": load, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def code_signature(*folders: Path) -> str:
    """SHA-256 over the path and content of every ``.py`` file under ``folders``: changes when the code does."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def update_manifest(path: Path, entries: dict[str, dict]) -> dict:
    """Merge ``entries`` (figure name -> record) into the manifest at ``path`` (atomic replace); return it.

    Figures not in ``entries`` keep their earlier records, so ``--only`` updates just the figures it redrew.
    """
    manifest = {"figures": {}}
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError:
            manifest = {"figures": {}}
    manifest.setdefault("figures", {}).update(entries)
    manifest["figures"] = dict(sorted(manifest["figures"].items()))
    manifest["updated_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return manifest


# ------------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------------
def ground_truth_suite(ctx: dict) -> None:
    """Every default estimator on the ground-truth tasks (``infoplane.groundtruth``): error heat map and error vs
    dimension. Full mode: the suite's defaults (N = 1,000 and 4,000, seeds 0-2); quick mode: N = 500, seed 0."""
    import infoplane.groundtruth as gt

    quick = ctx["settings"].mode == "quick"
    df = gt.evaluate(gt.default_estimators(), n_samples=(500,) if quick else (1000, 4000),
                     seeds=range(1 if quick else 3), n_jobs=ctx["jobs"], backend="loky", progress=ctx["progress"])
    save_figure(draw_ground_truth_suite(df), ctx["out"], "ground_truth_suite", df)


def draw_ground_truth_suite(df: pd.DataFrame) -> plt.Figure:
    """The suite figure from an `evaluate` table (or its CSV): heat map of mean |error| at the largest N, estimator
    x task, and mean |error| against the dimension of t (log scales: some estimators fail by millions of bits)."""
    import infoplane.groundtruth as gt

    n_max = int(df["n_samples"].max())
    top = df[df["n_samples"] == n_max].assign(abs_error=lambda d: d["error_bits"].abs())
    task_names = [t.name for t in gt.tasks("all") if t.name in set(df["task"])]
    present = list(pd.unique(df["estimator"]))  # a CSV has no attrs: the suite's own order first
    estimators = [e for e in df.attrs.get("estimators", gt.default_estimators()) if e in present]
    estimators += [e for e in present if e not in estimators]
    heat = (top.groupby(["task", "estimator"])["abs_error"].mean().unstack("estimator")
            .reindex(index=task_names, columns=estimators))
    fig, (ax_heat, ax_dim) = plt.subplots(1, 2, figsize=(6.0 + 1.1 * len(estimators), 8.2),
                                          gridspec_kw={"width_ratios": [max(len(estimators), 2), 4]})
    image = ax_heat.imshow(np.ma.masked_invalid(heat.to_numpy()), cmap="magma_r", vmin=0.0, vmax=1.5,
                           aspect="auto")
    ax_heat.set_facecolor("0.88")  # tasks an estimator cannot take (continuous y for a label estimator)
    for (i, j), value in np.ndenumerate(heat.to_numpy()):
        text = "–" if np.isnan(value) else (f"{value:.2f}" if value < 100 else f"{value:.0e}")
        ax_heat.text(j, i, text, ha="center", va="center", fontsize=6.5,
                     color="white" if value > 0.9 else "0.1")
    truth = {t.name: t.true_bits for t in gt.tasks("all")}
    ax_heat.set_yticks(range(len(task_names)), [f"{n} ({truth[n]:.2f})" for n in task_names], fontsize=7)
    ax_heat.set_xticks(range(len(estimators)), estimators, rotation=40, ha="right", fontsize=8)
    ax_heat.set_title(f"|estimate − truth| (bits), N = {n_max:,}, mean over seeds; grey: skipped", fontsize=9)
    fig.colorbar(image, ax=ax_heat, fraction=0.05, pad=0.02, label="bits (colour capped at 1.5)")
    by_dim = top.groupby(["estimator", "dims"])["abs_error"].mean().reset_index()
    for est in estimators:
        sub = by_dim[by_dim["estimator"] == est]
        if not sub.empty:
            ax_dim.plot(sub["dims"], sub["abs_error"].clip(lower=1e-3), marker="o", markersize=3.5, linewidth=1.0,
                        label=est)
    ax_dim.axhline(0.1, color="0.5", linestyle=":", linewidth=0.8, label="0.1 bits")
    ax_dim.set_xscale("log")
    ax_dim.set_yscale("log")
    ax_dim.set_xlabel("dimension of t (columns)")
    ax_dim.set_ylabel(f"mean |error| over tasks of that dimension and seeds (bits, floor 1e-3), N = {n_max:,}",
                      fontsize=8)
    ax_dim.set_title("error vs dimension (tasks each estimator takes)", fontsize=9)
    ax_dim.legend(fontsize=7, frameon=False, ncol=2)
    fig.tight_layout()
    return fig


STAGES: list[tuple[str, Callable[[dict], None]]] = [
    ("train + record SZT runs", stage_train),
    ("estimate (binning, KDE)", stage_estimate),
    ("figure: SZT information plane", figure_szt_plane),
    ("figure: Saxe comparison", figure_saxe),
    ("figure: estimator agreement", figure_agreement),
    ("compression scores", stage_compression),
    ("figure: ground truth", figure_ground_truth),
    ("figure: VIB beta sweep", figure_vib_sweep),
    ("figure: VIB information plane", figure_vib_plane),
    ("figure: ground-truth suite", ground_truth_suite),
    ("figure: wide-layer estimators", figure_wide_estimators),
    ("figure: ConvNet on augmented digits", figure_real_network),
]
#: The shared stages (no figure of their own) by their ``--only`` names.
SHARED = {"train": stage_train, "estimate": stage_estimate}
#: Each figure (``NAME.png``) -> the shared stages it needs, then the stage that draws it.
FIGURES: dict[str, tuple[tuple[str, ...], Callable[[dict], None]]] = {
    "szt_information_plane": (("train", "estimate"), figure_szt_plane),
    "saxe_comparison": (("train", "estimate"), figure_saxe),
    "estimator_agreement": (("train", "estimate"), figure_agreement),
    "compression_scores": (("train", "estimate"), stage_compression),
    "ground_truth": ((), figure_ground_truth),
    "vib_beta_sweep": ((), figure_vib_sweep),
    "vib_information_plane": ((), figure_vib_plane),
    "ground_truth_suite": ((), ground_truth_suite),
    "wide_estimators": (("train",), figure_wide_estimators),
    "real_network": ((), figure_real_network),
}


def needed_runs(only: str | None, settings: Settings) -> list[tuple[str, int]] | None:
    """The SZT runs to train (or reuse): all (None) unless ``--only`` names the wide-layer figure and nothing
    else that trains; it reads the agreement run (tanh, seed 0) alone, and the other stores in runs/ are then
    neither read nor touched."""
    names = {n.strip() for n in (only or "").split(",")}
    trains = {"train", "estimate"} | {n for n, (deps, _) in FIGURES.items() if deps and n != "wide_estimators"}
    if "wide_estimators" in names and not names & trains:
        return [("tanh", settings.agreement_seed)]
    return None


def figure_settings(name: str, settings: Settings) -> dict:
    """The settings a figure's manifest entry records: the pipeline's, plus a figure's own scale table."""
    extra = {"wide_estimators": {"wide": WIDE[settings.mode], "noise_std": WIDE_NOISE_STD},
             "real_network": {"real_net": REAL_NET[settings.mode], "dropout_rate": REAL_NET_RATE}}.get(name, {})
    protocol = {"lr": LR, "batch_size": BATCH_SIZE, "test_size": TEST_SIZE, "bin_width": BIN_WIDTH,
                "n_adaptive": N_ADAPTIVE, "kde_noise": KDE_NOISE, "final_epochs": FINAL_EPOCHS}
    return {**asdict(settings), "protocol": protocol, **extra}


def select_stages(only: str | None) -> list[tuple[str, str, Callable[[dict], None]]]:
    """The stages to run, in pipeline order, as (name, kind, function), kind "shared" or "figure".

    ``only`` is None (everything) or a comma-separated list of figure names (and ``train``/``estimate``); each
    figure brings the shared stages it needs, each shared stage runs once.
    """
    if only is None:
        names = list(FIGURES)
    else:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in FIGURES and n not in SHARED]
        if unknown or not names:
            raise SystemExit(f"--only: expected figure names from {', '.join(FIGURES)} (or train, estimate), "
                             f"got {only!r}")
    needed_shared = {d for n in names if n in FIGURES for d in FIGURES[n][0]} | {n for n in names if n in SHARED}
    if "estimate" in needed_shared:
        needed_shared.add("train")
    order = [fn for _, fn in STAGES]  # pipeline order
    chosen = [(k, "shared", fn) for k, fn in SHARED.items() if k in needed_shared]
    chosen += [(n, "figure", FIGURES[n][1]) for n in names if n in FIGURES]
    return sorted(chosen, key=lambda c: order.index(c[2]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="toy scale (CI smoke run, under 2 minutes)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output directory (default: figures/)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--only", metavar="NAME[,NAME...]",
                        help="redraw only these figures (and the stages they need: train, estimate); with "
                             "--reuse-runs the kept stores are read instead of retraining. Names: "
                             + ", ".join(FIGURES))
    parser.add_argument("--reuse-runs", action="store_true",
                        help="keep complete stores in OUT/runs made with the same settings instead of retraining")
    parser.add_argument("--keep-runs", action="store_true", help="keep OUT/runs (the zarr stores) afterwards")
    parser.add_argument("--no-progress", action="store_true", help="no inner progress bars")
    return parser.parse_args(argv)


def manifest_entry(name: str, ctx: dict, seconds: float, load_start: list | None, command: list[str]) -> dict:
    """One figure's record: mode, settings, commit, wall time (its own stage, and the shared ones it read)."""
    shared = {k: ctx["shared_seconds"][k] for k in FIGURES[name][0] if k in ctx["shared_seconds"]}
    reused = {"train": bool(ctx.get("all_reused")), "estimate": bool(ctx.get("estimates_reused"))}
    return {"mode": ctx["settings"].mode, "settings": figure_settings(name, ctx["settings"]),
            **ctx["git"], "wall_s": round(seconds, 2), "shared_stages_s": shared,
            "shared_stages_reused": {k: reused[k] for k in FIGURES[name][0]}, "jobs": ctx["jobs"],
            "machine": {**machine(), "load_average_at_start": load_start},
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
            "infoplane": infoplane.__version__}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stages = select_stages(args.only)
    matplotlib.use("Agg")  # files only, never a window
    settings = QUICK if args.quick else FULL
    out: Path = args.out
    (out / "data").mkdir(parents=True, exist_ok=True)
    runs_dir = out / "runs"
    runs_existed = runs_dir.exists()  # stores kept by an earlier --keep-runs are never deleted by a later run
    runs_dir.mkdir(exist_ok=True)
    X, y = load_szt(return_X_y=True)
    ctx = {"settings": settings, "out": out, "runs_dir": runs_dir, "jobs": args.jobs, "reuse": args.reuse_runs,
           "progress": not args.no_progress, "H_X": math.log2(len(X)), "H_Y": entropy_of_labels_bits(y),
           "git": git_commit(), "shared_seconds": {}, "szt_runs": needed_runs(args.only, settings)}
    command = ["python", "figures/make_figures.py", *(sys.argv[1:] if argv is None else argv)]
    print(f"infoplane {infoplane.__version__}: {settings.mode} mode -> {out} ({args.jobs} jobs); stages: "
          f"{', '.join(k for k, _, _ in stages)}\nsettings: {json.dumps(asdict(settings))}", flush=True)
    timings = []
    start = time.perf_counter()
    manifest_path = out / "data" / "manifest.json"
    # The bar redraws in place on a terminal; in a log (CI, nohup) one plain line per stage says the same.
    with tqdm(stages, desc=f"figures ({settings.mode})", unit="stage", file=sys.stdout,
              disable=not sys.stdout.isatty()) as bar:
        for i, (key, kind, stage) in enumerate(bar, start=1):
            name = next(label for label, fn in STAGES if fn is stage)
            bar.set_postfix_str(name)
            load_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
            t0 = time.perf_counter()
            stage(ctx)
            elapsed = time.perf_counter() - t0
            timings.append({"stage": name, "seconds": round(elapsed, 2)})
            if kind == "shared":
                ctx["shared_seconds"][key] = round(elapsed, 2)
            else:  # each figure's record is written as soon as it is drawn: a later failure keeps it
                update_manifest(manifest_path, {key: manifest_entry(key, ctx, elapsed, load_start, command)})
            tqdm.write(f"[{i}/{len(stages)}] {name}: {elapsed:.1f} s (elapsed {time.perf_counter() - start:.0f} s)",
                       file=sys.stdout)
    total = time.perf_counter() - start
    timings.append({"stage": "total", "seconds": round(total, 2)})
    # A run that reused stores, or drew only some figures, is not the whole pipeline's cost: its timings go
    # beside the stores, not in data/ (the manifest has every figure's own wall time).
    partial = args.reuse_runs or args.only is not None
    timings_path = (runs_dir if partial else out / "data") / "timings.csv"
    pd.DataFrame(timings).assign(mode=settings.mode, jobs=args.jobs, cpus=os.cpu_count()).to_csv(
        timings_path, index=False)
    print(f"total: {total:.1f} s ({total / 60:.1f} min)", flush=True)
    if not args.keep_runs and not runs_existed:
        shutil.rmtree(runs_dir, ignore_errors=True)
    elif not args.keep_runs:
        print(f"{runs_dir} existed before this run: kept (delete it yourself when done)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bad input over the public API: every case raises, and the message names the argument (issue 10).

More than 600 bad inputs over estimators, functional bounds, Recorder/record, schedules, stores,
information_plane, summaries, save/load, plotting and the command line. None may return a NaN, an inf or a
silently truncated value: each must raise with a message that says which argument was wrong.
"""
from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import pandas as pd
import pytest
import torch

import infoplane
from infoplane import Recorder, Schedule, information_plane, load_results, record, save_results
from infoplane.estimators import (
    BinningEstimator,
    KDEEstimator,
    KNNEstimator,
    MixtureEstimator,
    NoisyEstimator,
    ProbeEstimator,
    RateEstimator,
    barber_agakov,
    functional,
    gaussian_rate,
    mixture_mi_bounds,
)
from infoplane.store import MemoryStore, ZarrStore, open_store

N = 12
rng = np.random.default_rng(0)
T = rng.normal(size=(N, 3))
LV = np.full((N, 3), -1.0)
Y = np.arange(N) % 2
NAN, INF = float("nan"), float("inf")
ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError)

CASES: list[tuple[str, object, str]] = []  # (id, thunk, regex the message must match)


def case(id_: str, match: str):
    def register(thunk):
        CASES.append((id_, thunk, match))
        return thunk

    return register


def add(id_: str, thunk, match: str) -> None:
    taken = {c[0] for c in CASES}
    CASES.append((id_ if id_ not in taken else f"{id_}#{len(CASES)}", thunk, match))


# --------------------------------------------------------------------------------------------------
# Estimator parameters
# --------------------------------------------------------------------------------------------------
BAD_INT = [0, -1, 1.5, "3", True, NAN, None]
BAD_POS_FLOAT = [0.0, -1.0, NAN, INF, "0.1", True, None]
PARAMS = {
    BinningEstimator: {
        "n_bins": [1, 0, -3, 2.5, "10", True, NAN], "bin_width": [0.0, -1.0, NAN, INF, "0.1", True],
        "edges": [[1.0], [3.0, 1.0, 2.0], [[0.0, 1.0]], [0.0, NAN, 1.0], "abc", [0.0, INF]],
        "range": [(1.0, 0.0), (0.0, NAN), (0.0,), "01", (0.0, INF), 3],
        "strategy": ["bogus", 3, None], "out_of_range": ["bogus", None, 1],
    },
    KDEEstimator: {"noise_variance": BAD_POS_FLOAT, "bound": ["bogus", None, 1], "memory_mb": [0.0, -1.0, NAN, "x"]},
    KNNEstimator: {"k": [0, -1, 1.5, "3", True], "metric": ["bogus", None], "target": ["bogus", 3],
                   "memory_mb": [0.0, NAN]},
    ProbeEstimator: {"n_folds": [1, 0, 1.5, "5"], "seed": [1.5, "0", True]},
    RateEstimator: {"task": ["bogus", None], "n_samples": [0, -1, 1.5], "seed": [1.5, "0"], "n_folds": [1, 2.5],
                    "beta": [NAN, -1.0, "x"], "noise_variance": [0.0, NAN, -1.0], "decoder": ["bogus", 3]},
    MixtureEstimator: {"bound": ["bogus", 3], "n_samples": [0, 1.5], "seed": [1.5], "memory_mb": [0.0, NAN],
                       "decoder": ["bogus", 3], "task": ["bogus"]},
    NoisyEstimator: {"noise_std": [v for v in BAD_POS_FLOAT if v is not None],  # None: the recorded spec
                     "noise": ["x", 0.0, -1.0, {"kind": "bogus"}], "max_points": [1, 0, 2.5], "n_draws": [0, -1, 1.5, "8"], "seed": [1.5, "1"],
                     "memory_mb": [0.0, NAN]},
}
for cls, params in PARAMS.items():
    for param, values in params.items():
        for value in values:
            kwargs = {param: value}
            if cls is BinningEstimator and param in ("range", "strategy", "out_of_range"):
                kwargs["n_bins"] = 10
            add(f"{cls.__name__}-{param}={value!r}", lambda cls=cls, kwargs=kwargs: cls(**kwargs), rf"'?{param}'?")

# --------------------------------------------------------------------------------------------------
# Estimator inputs (t, y) for every estimator
# --------------------------------------------------------------------------------------------------
BAD_T = {
    "nan": np.where(np.eye(N, 3) > 0, NAN, T), "inf": np.where(np.eye(N, 3) > 0, INF, T), "1d": T[:, 0],
    "3d": T[:, :, None], "no-rows": T[:0], "no-units": T[:, :0], "complex": T.astype(complex),
    "strings": T.astype(str), "object": np.array([[object()] * 3] * N), "complex-tensor": torch.ones(N, 3, dtype=torch.cfloat),
}
BAD_Y = {"short": Y[:-1], "float": Y + 0.5, "2d": np.stack([Y, Y], 1), "strings": Y.astype(str), "nan": Y + NAN}
ESTIMATORS = {
    "binning": BinningEstimator(n_bins=4), "kde": KDEEstimator(), "knn": KNNEstimator(), "noisy": NoisyEstimator(),
    "probe": ProbeEstimator(), "rate": RateEstimator(), "mixture": MixtureEstimator(),
}
for name, est in ESTIMATORS.items():
    needs_lv = name in ("rate", "mixture")
    for bad, t in BAD_T.items():
        kw = {"log_var": LV} if needs_lv and bad not in ("no-rows", "no-units", "1d", "3d") else {}
        if needs_lv and not kw:
            kw = {"log_var": np.asarray(t.real if np.iscomplexobj(t) else t, dtype=float)} if bad != "object" else {}
        add(f"{name}-t-{bad}", lambda est=est, t=t, kw=kw: est.estimate(t, Y, **kw), r"\bt\b")
    for bad, y in BAD_Y.items():
        kw = {"log_var": LV} if needs_lv else {}
        if name in ("rate", "mixture") and bad == "float":
            continue  # a float y is a regression target only for task="regression"; covered below
        add(f"{name}-y-{bad}", lambda est=est, y=y, kw=kw: est.estimate(T, y, **kw), r"\by\b")
    if needs_lv:
        for bad, lv in {"nan": LV + NAN, "shape": LV[:, :2], "1d": LV[:, 0], "missing": None}.items():
            add(f"{name}-log_var-{bad}", lambda est=est, lv=lv: est.estimate(T, Y, log_var=lv), r"log_var")
    add(f"{name}-x-shape", lambda est=est, n=needs_lv: est.estimate(T, Y, x=np.zeros((N - 1, 2)),
                                                                     **({"log_var": LV} if n else {})), r"\bx\b")

# --------------------------------------------------------------------------------------------------
# Functional bounds and kernels
# --------------------------------------------------------------------------------------------------
for bad, mu in {"nan": T + NAN, "1d": T[:, 0], "strings": T.astype(str), "complex": T.astype(complex)}.items():
    add(f"gaussian_rate-mu-{bad}", lambda mu=mu: gaussian_rate(mu, LV), r"\bmu\b")
    add(f"mixture-mu-{bad}", lambda mu=mu: mixture_mi_bounds(mu, LV), r"\bmu\b")
for bad, lv in {"nan": LV + NAN, "shape": LV[:, :1], "1000": LV + 1001, "inf": LV + INF}.items():
    add(f"gaussian_rate-log_var-{bad}", lambda lv=lv: gaussian_rate(T, lv), r"log_var")
    add(f"mixture-log_var-{bad}", lambda lv=lv: mixture_mi_bounds(T, lv), r"log_var")
add("mixture-log_var--1000", lambda: mixture_mi_bounds(T, LV - 999), "log_var")
for param, values in {"n_samples": [0, 1.5, "8"], "seed": [1.5, "0", True], "memory_mb": [0.0, NAN, -1.0]}.items():
    for value in values:
        add(f"mixture-{param}={value!r}", lambda p=param, v=value: mixture_mi_bounds(T, LV, **{p: v}), param)
add("mixture-one-row", lambda: mixture_mi_bounds(T[:1], LV[:1]), r"\bmu\b")
BA_PARAMS = {
    "task": ["bogus", None], "n_samples": [0, 1.5], "seed": [1.5, "0"], "noise_variance": [0.0, NAN, -1.0],
    "h_y": [NAN, INF, "1"], "n_classes": [0, 1.5, 1], "n_folds": [1, 1.5], "batch_size": [0, 1.5],
    "decoder": ["bogus", 3],
}
for param, values in BA_PARAMS.items():
    for value in values:
        kw = {param: value}
        if param in ("noise_variance", "h_y"):
            kw["task"] = "regression"
        yy = Y.astype(float) if kw.get("task") == "regression" else Y
        add(f"barber_agakov-{param}={value!r}", lambda kw=kw, yy=yy: barber_agakov(T, LV, yy, **kw), param)
add("barber_agakov-decoder-nan", lambda: barber_agakov(T, LV, Y, decoder=lambda z: z[:, :2] * NAN), "decoder")
add("barber_agakov-decoder-shape", lambda: barber_agakov(T, LV, Y, decoder=lambda z: z[:, 0]), "decoder")
add("barber_agakov-y-negative", lambda: barber_agakov(T, LV, Y - 1), r"\by\b")
add("barber_agakov-y-regression-nan", lambda: barber_agakov(T, LV, Y + NAN, task="regression"), r"\by\b")
FUNCTIONAL = {
    "binning_information": {"n_bins": 0, "bin_width": -1.0, "edges": [1.0]},
    "kde_information": {"noise_variance": 0.0, "bound": "bogus", "memory_mb": NAN},
    "knn_information": {"k": 0, "metric": "bogus"},
    "probe_information": {"n_folds": 1, "seed": 1.5},
    "noisy_information": {"noise_std": -1.0, "n_draws": 0},
}
for fname, params in FUNCTIONAL.items():
    for param, value in params.items():
        add(f"functional.{fname}-{param}", lambda f=fname, p=param, v=value: getattr(functional, f)(T, Y, **{p: v}), param)
    kw = {"n_bins": 4} if fname == "binning_information" else {}
    add(f"functional.{fname}-t-nan", lambda f=fname, kw=kw: getattr(functional, f)(T + NAN, Y, **kw), r"\bt\b")
for fname in ("rate_information", "mixture_information"):
    add(f"functional.{fname}-log_var", lambda f=fname: getattr(functional, f)(T, Y, log_var=LV[:, :1]), "log_var")
for k in (0, -1, 1.5, N):
    add(f"ksg_mi-k={k}", lambda k=k: functional.ksg_mi(T, T, k=k), r"\bk\b")
    add(f"kl_entropy-k={k}", lambda k=k: functional.kl_entropy(T, k=k), r"\bk\b")
add("ksg_mi-b-rows", lambda: functional.ksg_mi(T, T[:-1]), r"\bb\b")
add("ross_mi-y-float", lambda: functional.ross_mi(T, Y + 0.5), r"\by\b")
add("probe_mi-y-single", lambda: functional.probe_mi(T, np.zeros(N, int)), r"\by\b")
add("digitize_width-overflow", lambda: functional.digitize_width(T * 1e10, 1e-300), "bin_width")
add("binning-width-overflow", lambda: BinningEstimator(bin_width=1e-12).estimate(T * 1e10, Y), "bin_width")
for param, value in {"noise_std": 0.0, "n_draws": 0, "seed": 1.5, "memory_mb": -1.0}.items():
    kw = {"noise_std": 0.1, param: value}
    add(f"sample_propagation_mi-{param}", lambda kw=kw: functional.sample_propagation_mi(T, Y, **kw), param)

# --------------------------------------------------------------------------------------------------
# Recorder, record, schedules
# --------------------------------------------------------------------------------------------------
torch.manual_seed(0)
MODEL = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
X = torch.randn(N, 3)
RECORDER_BAD = {
    "layers": [["nope"], [], 3, [3]],
    "probe": [X + NAN, X[:0], torch.ones(N, 3, dtype=torch.cfloat), np.ones((N, 3), complex), X.numpy().astype(str),
              ()],
    "labels": [Y[:-1], Y + 0.5, np.stack([Y, Y], 1)],
    "schedule": ["bogus", 1.5, [1.7], {"kind": "bogus"}],
    "store": [3, object()],
    "batch_size": [0, -1, 1.5, "8"],
    "on_existing": ["bogus", None],
    "dtype": ["int8", "bogus", 3],
    "seed": [1.5, "0"],
    "pool": ["bogus", 0, -1],
    "project": [0, -1, 1.5],
    "units": [[-1], [99], "0"],
}
for param, values in RECORDER_BAD.items():
    for value in values:
        kw = {"layers": ["1"], "probe": X, param: value}
        add(f"Recorder-{param}={type(value).__name__}", lambda kw=kw: Recorder(MODEL, **kw).step(0),
            {"layers": "layer|module|names", "probe": "probe", "schedule": "schedule|epochs|kind"}.get(param, param))
for param, value in {"batch_size": 0, "device": "bogus", "pool": "bogus", "dtype": "int8", "project": 0}.items():
    add(f"record-{param}", lambda p=param, v=value: record(MODEL, X, ["1"], **{p: v}), param)
add("record-probe-complex", lambda: record(MODEL, X.to(torch.cfloat), ["1"]), "probe")
add("record-meta-model", lambda: record(torch.nn.Linear(3, 2).to("meta"), X, [""]), "model")
for epoch in (-1, 1.5, "1", True, NAN):
    add(f"Recorder.step-epoch={epoch!r}", lambda e=epoch: Recorder(MODEL, ["1"], X).step(e), "epoch")
for bad in (0, -1, 1.5, "2", True):
    add(f"Schedule.every-{bad!r}", lambda b=bad: Schedule.every(b), r"\bk\b|every")
for bad in ([], [1.7], [-1], ["1"], [True], 3):
    add(f"Schedule.explicit-{bad!r}", lambda b=bad: Schedule.explicit(b), "epochs")
for args in ((-1, 5), (10, 0), (10, 1.5), (1.5, 5), ("10", 5)):
    add(f"Schedule.log_spaced-{args!r}", lambda a=args: Schedule.log_spaced(*a), r"epochs|n|'")

# --------------------------------------------------------------------------------------------------
# Stores
# --------------------------------------------------------------------------------------------------
for param, value in {"mode": "x", "compression_level": 99, "durable": "yes", "path": 3}.items():
    kw = {"path": "unused-fuzz.zarr", param: value}
    add(f"ZarrStore-{param}", lambda kw=kw: ZarrStore(**kw), param)
add("ZarrStore-compression_level--1", lambda: ZarrStore("unused.zarr", compression_level=-1), "compression_level")
add("ZarrStore-compression_level-1.5", lambda: ZarrStore("unused.zarr", compression_level=1.5), "compression_level")
add("open_store-mode", lambda: open_store("unused.zarr", mode="w"), "mode")
add("open_store-path", lambda: open_store(3), "path")


def _memory_store():
    s = MemoryStore()
    s.set_labels(Y)
    s.write_epoch(0, {"a": T, "z": {"mu": T, "log_var": LV}})
    return s


WRITE_BAD = {
    "epoch=-1": (-1, {"a": T, "z": {"mu": T, "log_var": LV}}, "epoch"),
    "epoch=1.5": (1.5, {"a": T, "z": {"mu": T, "log_var": LV}}, "epoch"),
    "epoch='1'": ("1", {"a": T, "z": {"mu": T, "log_var": LV}}, "epoch"),
    "epoch=True": (True, {"a": T, "z": {"mu": T, "log_var": LV}}, "epoch"),
    "epoch=0-again": (0, {"a": T, "z": {"mu": T, "log_var": LV}}, "epoch"),
    "data-empty": (1, {}, "data"),
    "data-list": (1, [T], "data"),
    "data-nan": (1, {"a": T + NAN, "z": {"mu": T, "log_var": LV}}, "activations of layer 'a'"),
    "data-1d": (1, {"a": T[:, 0], "z": {"mu": T, "log_var": LV}}, "activations of layer 'a'"),
    "data-complex": (1, {"a": T.astype(complex), "z": {"mu": T, "log_var": LV}}, "activations of layer 'a'"),
    "data-huge": (1, {"a": T * 1e300, "z": {"mu": T, "log_var": LV}}, "activations of layer 'a'"),
    "data-key": (1, {3: T}, "layer names"),
    "data-missing-layer": (1, {"a": T}, "layers"),
    "data-extra-layer": (1, {"a": T, "z": {"mu": T, "log_var": LV}, "b": T}, "layers"),
    "data-rows": (1, {"a": T[:-1], "z": {"mu": T[:-1], "log_var": LV[:-1]}}, "rows"),
    "data-units": (1, {"a": T[:, :2], "z": {"mu": T, "log_var": LV}}, "layer 'a'"),
    "data-gauss-keys": (1, {"a": T, "z": {"mu": T}}, "layer 'z'"),
    "data-gauss-shape": (1, {"a": T, "z": {"mu": T, "log_var": LV[:, :2]}}, "layer 'z'"),
    "data-kind": (1, {"a": {"mu": T, "log_var": LV}, "z": {"mu": T, "log_var": LV}}, "layer 'a'"),
}
for id_, (epoch, data, match) in WRITE_BAD.items():
    add(f"MemoryStore.write_epoch-{id_}", lambda e=epoch, d=data: _memory_store().write_epoch(e, d), match)
for bad, labels in {"float": Y + 0.5, "2d": np.stack([Y, Y], 1), "rows": Y[:-1], "other": 1 - Y}.items():
    add(f"MemoryStore.set_labels-{bad}", lambda lab=labels: _memory_store().set_labels(lab), "labels")
add("MemoryStore.set_metadata-object", lambda: _memory_store().set_metadata(note=object()), "note")
add("MemoryStore.set_metadata-nan", lambda: _memory_store().set_metadata(note=NAN), "note")
for args, match in [((1.5, "a"), "epoch"), ((True, "a"), "epoch"), ((5, "a"), "epoch"), ((0, "nope"), "layer"),
                    ((0, "a", "mu"), "part"), ((0, "z", "bogus"), "part"), (("0", "a"), "epoch")]:
    add(f"MemoryStore.activations-{args!r}", lambda a=args: _memory_store().activations(*a), match)
add("MemoryStore.layer_kind-nope", lambda: _memory_store().layer_kind("nope"), "layer")

# --------------------------------------------------------------------------------------------------
# information_plane, summaries, results files
# --------------------------------------------------------------------------------------------------
IP_BAD = {
    "estimators": ["bogus", 3, [], {"a": 3}], "epochs": [[1.7], ["0"], [99], [True], 1.7],
    "layers": [["nope"], 3, []], "n_jobs": [0, 1.5, "2"], "shuffle": [-1, 1.5], "backend": ["bogus"],
    "labels": [Y[:-1], Y + 0.5], "ci": [2.0, 0.0, NAN], "n_boot": [0, 1.5], "subsample": [[0.0], [1.5], [NAN]],
    "x": [np.zeros(N - 1)],
}
for param, values in IP_BAD.items():
    for value in values:
        add(f"information_plane-{param}={value!r}",
            lambda p=param, v=value: information_plane(_memory_store(), **{p: v, "progress": False}),
            {"estimators": "estimator", "n_jobs": "n_jobs", "labels": "labels"}.get(param, param))
add("information_plane-source", lambda: information_plane(3, progress=False), "source")
add("information_plane-source-missing", lambda: information_plane("no/such/store.zarr", progress=False), "no/such")


def _table():
    df = information_plane(_memory_store(), estimators="binning", progress=False)
    return df


for param, value in {"df": 3, "ddof": -1}.items():
    kw = {"df": _table, "ddof": 1}
    add(f"summarize_runs-{param}", lambda p=param, v=value: infoplane.summarize_runs(
        **({"df": _table()} if p != "df" else {}), **{p: v}), param)
for param, value in {"df": {"I_XT": [1]}, "final_epochs": 0, "ddof": -1}.items():
    add(f"compression_scores-{param}", lambda p=param, v=value: infoplane.compression_scores(
        **({"df": _table()} if p != "df" else {}), **{p: v}), param)
add("save_results-df", lambda: save_results(3, "x.csv"), r"\bdf\b")
add("save_results-path-suffix", lambda: save_results(_table(), "x.xlsx"), "path")
add("save_results-path-type", lambda: save_results(_table(), 3), "path")
add("load_results-path-suffix", lambda: load_results("x.txt"), "path")
add("load_results-path-type", lambda: load_results(None), "path")
add("load_results-missing", lambda: load_results("no/such/table.csv"), "no/such/table.csv")

# --------------------------------------------------------------------------------------------------
# Plotting
# --------------------------------------------------------------------------------------------------
PLOT_BAD = {
    "df": [3, pd.DataFrame({"a": [1]})], "estimator": ["nope", 3], "layers": [["nope"], 3],
    "epoch_scale": ["bogus", None], "H_X": [NAN, -1.0, "x"], "H_Y": [NAN, INF], "ax": [3],
    "layer_labels": ["bogus"], "cmap": ["no-such-cmap"],
}


def _plot(**kw):
    from infoplane.plotting import plot_information_plane

    args = {"df": _table(), **kw}
    return plot_information_plane(args.pop("df"), **args)


for param, values in PLOT_BAD.items():
    for value in values:
        add(f"plot_information_plane-{param}={value!r}", lambda p=param, v=value: _plot(**{p: v}),
            {"df": r"\bdf\b|column"}.get(param, param))


def _plot_mi(**kw):
    from infoplane.plotting import plot_mi_vs_epoch

    return plot_mi_vs_epoch(_table(), **kw)


for param, value in {"quantity": "bogus", "estimator": "nope", "epoch_scale": "bogus", "H_X": NAN, "ax": 3}.items():
    add(f"plot_mi_vs_epoch-{param}", lambda p=param, v=value: _plot_mi(**{p: v}), param)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def _cli(*argv: str) -> None:
    from infoplane.__main__ import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    if code != 0:
        raise ValueError(f"exit {code}: {err.getvalue()}")


CLI_BAD = [
    (("run", "--lr", "nan"), "--lr"), (("run", "--lr", "-1"), "--lr"), (("run", "--lr", "inf"), "--lr"),
    (("run", "--seed", "-1"), "--seed"), (("run", "--seed", "1.5"), "--seed"), (("record", "--seed", "2**40"), "--seed"),
    (("run", "--epochs", "0"), "--epochs"), (("run", "--epochs", "1.5"), "--epochs"),
    (("run", "--schedule", "bogus"), "--schedule"), (("run", "--schedule", "log:x"), "--schedule"),
    (("run", "--estimators", "bogus"), "--estimators"), (("run", "--estimators", "kde-upper,kde-upper"), "--estimators"),
    (("run", "--n-jobs", "0"), "--n-jobs"), (("run", "--batch-size", "0"), "--batch-size"),
    (("run", "--activation", "bogus"), "--activation"), (("run", "--final-epochs", "0"), "--final-epochs"),
    (("plot", "t.csv", "--hx", "nan"), "--hx"), (("plot", "t.csv", "--hy", "-1"), "--hy"),
    (("plot", "t.csv", "--dpi", "0"), "--dpi"), (("plot", "t.csv", "--epoch-scale", "bogus"), "--epoch-scale"),
    (("estimate", "s.zarr", "--epochs", "1.7"), "--epochs"), (("estimate", "no/such.zarr"), "STORE"),
    (("plot", "no/such.csv"), "no/such.csv"), (("bogus",), "invalid choice"),
]
for argv, match in CLI_BAD:
    add(f"cli-{' '.join(argv)}", lambda a=argv: _cli(*a), match)


# --------------------------------------------------------------------------------------------------
# Issue 21: every silent input and library error of the third round
# --------------------------------------------------------------------------------------------------
from infoplane.estimators import CriticEstimator, RateEstimator  # noqa: E402
from infoplane.recording import Layer  # noqa: E402

BAD_BOOL = ["yes", "no", "False", "", 1, 0, 1.0, [True]]
_EST = {"e": BinningEstimator(n_bins=4)}
BOOL_OPTIONS = {
    "information_plane-progress": lambda v: information_plane(_memory_store(), estimators=_EST, progress=v),
    "information_plane-diagnostics": lambda v: information_plane(_memory_store(), estimators=_EST, progress=False,
                                                                 diagnostics=v),
    "information_plane-geometry": lambda v: information_plane(_memory_store(), estimators=_EST, progress=False,
                                                              geometry=v),
    "evaluate-progress": lambda v: infoplane.groundtruth.evaluate(_EST, tasks="gauss-1x1", n_samples=20, seeds=[0],
                                                                  progress=v),
    "load_szt-return_X_y": lambda v: infoplane.nets.load_szt(return_X_y=v),
    "load_digits-return_X_y": lambda v: infoplane.nets.load_digits(return_X_y=v),
    "load_digits-scale": lambda v: infoplane.nets.load_digits(scale=v),
    "add_noise-training": lambda v: infoplane.noise.add_noise(_mlp(), ["0"], 0.1, training=v).__enter__(),
    "add_noise-capture": lambda v: infoplane.noise.add_noise(_mlp(), ["0"], 0.1, capture=v).__enter__(),
}


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _conv():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU())


for opt, call in BOOL_OPTIONS.items():
    for value in BAD_BOOL:
        add(f"{opt}={value!r}", lambda call=call, v=value: call(v), opt.split("-", 1)[1])

IMAGES = np.zeros((4, 1, 8, 8), dtype=np.float32)
for pool in (9, 100, 10**6):
    add(f"record-pool={pool}-on-8x8", lambda p=pool: record(_conv(), IMAGES, Layer("1", pool=p)), "pool")
    add(f"Recorder-pool={pool}-on-8x8", lambda p=pool: Recorder(_conv(), ["1"], IMAGES, pool=p).step(0), "pool")
for name in ("", 3, b"x"):
    add(f"Layer-name={name!r}", lambda n=name: Layer("0", name=n), "name")


def _scores_table(column, value):
    df = _table()
    df.loc[df.index[0], column] = value
    return df


for value in (NAN, INF, -INF):
    add(f"compression_scores-I_XT={value}", lambda v=value: infoplane.compression_scores(_scores_table("I_XT", v)),
        "I_XT")
for column, value in (("I_XT", INF), ("I_XT", -INF), ("I_TY", INF)):
    add(f"plot_information_plane-{column}={value}", lambda c=column, v=value: _plot(df=_scores_table(c, v)), column)

for layers in (5, 3.5, None, [5], b"0"):
    add(f"add_noise-layers={layers!r}",
        lambda la=layers: infoplane.noise.add_noise(_mlp(), la, 0.1).__enter__(), "layers")

for width in (1, 2, 5, 100):
    probe = np.zeros((N, width), dtype=np.float32)
    add(f"record-probe-width={width}", lambda p=probe: record(_mlp(), p, ["1"]), r"probe.*'0'.*width 3")
    add(f"Recorder-probe-width={width}", lambda p=probe: Recorder(_mlp(), ["1"], p).step(0), r"probe.*'0'.*width 3")

NUL_PATHS = {
    "ZarrStore": lambda: ZarrStore("run\0.zarr"), "open_store": lambda: open_store("run\0.zarr"),
    "save_results": lambda: save_results(_table(), "t\0.csv"), "load_results": lambda: load_results("t\0.csv"),
    "Recorder-store": lambda: Recorder(_mlp(), ["1"], T, store="run\0.zarr"),
    "information_plane-source": lambda: information_plane("run\0.zarr", progress=False),
}
for where, thunk in NUL_PATHS.items():
    add(f"{where}-NUL-byte", thunk, r"path|source|store")

for device in ["tpu:9", "bogus", 3, "cuda:-1"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"]):
    add(f"CriticEstimator-device={device!r}", lambda d=device: CriticEstimator(device=d), "device")
    add(f"Recorder-device={device!r}", lambda d=device: Recorder(_mlp(), ["1"], T, device=d), "device")
    add(f"record-device={device!r}", lambda d=device: record(_mlp(), T, ["1"], device=d), "device")

for seed in (-3, -1, 2**32, 2**40):
    add(f"ProbeEstimator-seed={seed}", lambda s=seed: ProbeEstimator(seed=s), "seed")
add("ProbeEstimator-n_folds=10**9", lambda: ProbeEstimator(n_folds=10**9).estimate(T, Y), "n_folds")
add("ProbeEstimator-n_folds>rows", lambda: ProbeEstimator(n_folds=N + 1).estimate(T, Y), "n_folds")
for lv in (1000.0, 3000.0):
    add(f"RateEstimator-log_var={lv}",
        lambda lv=lv: RateEstimator().estimate(T, Y, log_var=np.full_like(T, lv)), "log_var")
    add(f"information_plane-gaussian-log_var={lv}", lambda lv=lv: information_plane(
        _gauss_store(lv), estimators={"rate": RateEstimator()}, progress=False), "log_var")


def _gauss_store(lv):
    s = MemoryStore()
    s.set_labels(Y)
    s.write_epoch(0, {"z": {"mu": T, "log_var": np.full_like(T, lv)}})
    return s


def _lock_path(kind):
    import tempfile

    root = tempfile.mkdtemp(dir=".")
    if kind == "directory":
        os.mkdir(os.path.join(root, "infoplane.lock"))
    else:
        os.symlink(os.path.join(root, "nowhere", "x"), os.path.join(root, "infoplane.lock"))
    return ZarrStore(root, "w")


for kind in ("directory", "dangling-symlink"):
    add(f"ZarrStore-lock-{kind}", lambda k=kind: _lock_path(k), "lock")
add("WriterLock-directory", lambda: _lock_dir_writer(), "lock")


def _lock_dir_writer():
    from infoplane.store._lock import WriterLock

    os.makedirs("lockdir.lock", exist_ok=True)
    WriterLock("lockdir.lock").acquire()


for args in ((10**18, 10**7), (10**16, 10), (10, 10**6), (10, 10**9), (2**60, 2)):
    add(f"Schedule.log_spaced{args!r}", lambda a=args: Schedule.log_spaced(*a), r"'(n|last)' parameter")


class _Client:
    def __init__(self):
        self.calls = 0

    def log_metric(self, *a, **k):
        self.calls += 1


def _log(df):
    from infoplane.integrations import log_to

    log_to((_Client(), "run"), df, figure=False)


def _log_table(**edit):
    df = pd.DataFrame({"epoch": [0, 1], "layer": ["a", "a"], "estimator": ["e", "e"], "I_XT": [1.0, 2.0],
                       "I_TY": [0.5, 0.5]}).astype({"epoch": object, "layer": object})
    for col, value in edit.items():
        df.loc[1, col] = value
    return df


add("log_to-long-layer-name", lambda: _log(_log_table(layer="x" * 240)), "layer")
for epoch in (1.5, NAN, "2", -1, None):
    add(f"log_to-epoch={epoch!r}", lambda e=epoch: _log(_log_table(epoch=e)), "epoch")


class _Returns:
    name = "odd"

    def __init__(self, value):
        self.value = value

    def estimate(self, t, y):
        return self.value


for value in (None, 0.5, "1.0", (0.5,), {"I_TY": 1.0}):
    add(f"evaluate-estimate-returns-{value!r}", lambda v=value: infoplane.groundtruth.evaluate(
        {"odd": _Returns(v)}, tasks="gauss-1x1", n_samples=20, seeds=[0], progress=False), r"estimators\['odd'\]")


def _written_store(edit_array=None, edit_manifest=None):
    import json
    import tempfile

    path = os.path.join(tempfile.mkdtemp(dir="."), "s.zarr")
    with ZarrStore(path, "w", durable=False) as s:
        s.write_epoch(0, {"a": T.astype(np.float32)})
    if edit_array is not None:
        meta_path = os.path.join(path, "epochs", "e000000", "l000", "zarr.json")
        meta = json.load(open(meta_path))
        edit_array(meta)
        json.dump(meta, open(meta_path, "w"))
    if edit_manifest is not None:
        meta_path = os.path.join(path, "manifest.json")
        meta = json.load(open(meta_path))
        edit_manifest(meta)
        json.dump(meta, open(meta_path, "w"))
    return open_store(path).activations(0, "a")


TAMPER = {
    "shape-rows": (lambda m: m.update(shape=[2 * 10**8, 3]), None, "shape"),
    "shape-units": (lambda m: m.update(shape=[N, 10**9]), None, "shape"),
    "chunks-tiny": (lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[1, 1]), None, "chunks"),
    "chunks-huge": (lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[10**9, 3]), None, "chunks"),
    "dtype": (lambda m: m.update(data_type="float64"), None, "dtype"),
    "downgraded": (None, lambda m: m.update(format_version=1), "format version 1"),
}
for id_, (arr, man, match) in TAMPER.items():
    add(f"store-tampered-{id_}", lambda a=arr, m=man: _written_store(a, m), match)


def _parquet(edit):
    import pyarrow.parquet as pq

    path = save_results(_table(), "fuzz.parquet")
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    edit(meta)
    pq.write_table(table.replace_schema_metadata(meta), path)
    return load_results(path)


add("load_results-parquet-attrs-not-json", lambda: _parquet(lambda m: m.update({b"PANDAS_ATTRS": b"{x"})),
    "PANDAS_ATTRS")
add("load_results-parquet-attrs-list", lambda: _parquet(lambda m: m.update({b"PANDAS_ATTRS": b"[1]"})),
    "PANDAS_ATTRS")
add("load_results-parquet-attrs-edited", lambda: _parquet(lambda m: m.update({b"PANDAS_ATTRS": b'{"units": "nats"}'})),
    "conventions")


def _reuse(probe=None, width=4):
    import tempfile

    path = os.path.join(tempfile.mkdtemp(dir="."), "r.zarr")
    with Recorder(_mlp(), ["1"], T.astype(np.float32), store=path) as rec:
        rec.step(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, 2))
    with Recorder(model, ["1"], T.astype(np.float32) if probe is None else probe, store=path) as rec:
        rec.step(0)


add("Recorder-reused-store-other-probe", lambda: _reuse(probe=T.astype(np.float32) + 1), "probe")
add("Recorder-reused-store-other-width", lambda: _reuse(width=5), "layer '1'")


# --------------------------------------------------------------------------------------------------
def test_there_are_at_least_600_cases():
    assert len(CASES) >= 600, len(CASES)


@pytest.fixture(scope="module")
def in_tmp_dir(tmp_path_factory):
    """Stores and tables a case might create stay in a temporary directory (one for the module: cheap)."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz"))
    yield
    os.chdir(old)


@pytest.mark.parametrize(("thunk", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_naming_the_argument(thunk, match, in_tmp_dir):
    with pytest.raises(ERRORS, match=match) as info:
        thunk()
    assert "Traceback" not in str(info.value)

"""The command line: ``python -m infoplane`` (or the ``infoplane`` console script).

Sub-commands::

    run       train the SZT network, record its layers, estimate the information plane, write table + figure
    record    train the SZT network (or your own: --model MODULE:FUNCTION) and record its layers into a zarr
              store (no estimation)
    estimate  estimate the information plane of a recorded store (yours too) into a results table, with
              any preset or estimator and its parameters (--estimators "kde-upper:noise_variance=0.1,knn:k=5")
    plot      draw a results table as information-plane figure(s) (PNG)

``python -m infoplane run --out results/`` is the whole pipeline in about a minute on two CPU cores.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cli import HelpFormatter, estimator_names, estimator_parameters, load_model, parse_estimators

__all__ = ["main", "build_parser", "parse_schedule"]

STORE_NAME = "store.zarr"
TABLE_NAME = "information_plane.csv"
SCORES_NAME = "compression.csv"
FIGURE_NAME = "information_plane.png"
HISTORY_NAME = "training.csv"
DEFAULT_ESTIMATORS = "binning,kde-upper"


_Formatter = HelpFormatter


# --------------------------------------------------------------------------------------------------
# Argument types (errors become argparse usage errors naming the option)
# --------------------------------------------------------------------------------------------------
def parse_schedule(text: str, epochs: int):
    """A recording `Schedule` from its command-line spelling.

    ``log:N`` — at most N log-spaced epochs in [0, epochs] (dense early, as Shwartz-Ziv & Tishby 2017);
    ``every:K`` — every K-th epoch (and the last); ``all`` — every epoch; ``0,1,2,10,100`` — exactly these.
    """
    from .recording import Schedule

    text = text.strip().lower()
    try:
        if text == "all":
            return Schedule.every(1)
        if text.startswith("log:"):
            return Schedule.log_spaced(epochs, int(text[4:]))
        if text.startswith("every:"):
            return Schedule.every(int(text[6:])) | Schedule.explicit([epochs])
        return Schedule.explicit(int(e) for e in text.split(",") if e.strip())
    except ValueError as exc:
        raise ValueError(
            f"--schedule must be 'log:N', 'every:K', 'all' or a comma-separated list of epochs. Got {text!r} "
            f"({exc})."
        ) from None


def _schedule_arg(text: str) -> str:
    try:
        parse_schedule(text, 100)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _estimators_arg(text: str) -> dict[str, Any]:
    """{label: estimator} from ``--estimators`` (presets and estimator names, with parameters)."""
    return parse_estimators(text)


def _activation_arg(text: str) -> str:
    from .nets import ACTIVATIONS

    if text.lower() not in ACTIVATIONS:
        raise argparse.ArgumentTypeError(f"unknown activation {text!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return text.lower()


def _parsed(text: str, cast, ok, expected: str):
    """``cast(text)`` if it parses and satisfies ``ok``; else an argparse error saying what was expected."""
    try:
        value = cast(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _parsed(text, int, lambda v: v >= 1, "a positive integer")


def _positive_float(text: str) -> float:
    return _parsed(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def _bits(text: str) -> float:
    return _parsed(text, float, lambda v: math.isfinite(v) and v >= 0, "a finite number of bits >= 0")


def _seed(text: str) -> int:
    return _parsed(text, int, lambda v: 0 <= v < 2**32, "an integer seed in 0..2**32-1")


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (-1: all cores), got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("expected a non-zero integer (-1: all cores), got 0")
    return value


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _epoch_list(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs (integers), got {text!r}") from None


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------
def _add_training(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (the SZT 12-10-7-5-4-3-2 network on the 4096-input SZT task)")
    g.add_argument("--activation", type=_activation_arg, default="tanh",
                   help="hidden activation: tanh (compresses under SZT binning), relu (Saxe et al. 2018), ...")
    g.add_argument("--epochs", type=_positive_int, default=300, help="training epochs (Adam, 80%% train split)")
    g.add_argument("--seed", type=_seed, default=0,
                   help="seed of the initial weights, the train/test split and the minibatch order")
    g.add_argument("--schedule", type=_schedule_arg, default="log:30",
                   help="epochs to record: 'log:N' (N log-spaced epochs in [0, EPOCHS]), 'every:K', 'all', "
                   "or a list '0,1,10,100'")
    g.add_argument("--batch-size", type=_positive_int, default=256, help="minibatch size")
    g.add_argument("--lr", type=_positive_float, default=4e-4, help="Adam learning rate")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing recording in OUT instead of refusing to")
    g = p.add_argument_group("your own model (instead of the SZT network)")
    g.add_argument("--model", metavar="MODULE:FUNCTION",
                   help="record your model: FUNCTION() in MODULE (importable from the current directory, or a "
                   "path/to/file.py) returns (model, probe, labels); the model is trained like the SZT net "
                   "(Adam, cross-entropy on its logits, on 80%% of the probe rows) and recorded on every probe row")
    g.add_argument("--layers", type=_csv_list, metavar="NAMES", dest="record_layers",
                   help="comma-separated layers to record: names or globs of the model's named_modules() "
                   "(e.g. 'fc*,act*'); needed with --model unless the model has a layer_names attribute "
                   "(default: every SZT layer)")


def _add_estimation(p: argparse.ArgumentParser, *, default_estimators: str = DEFAULT_ESTIMATORS) -> None:
    from .estimators.presets import ESTIMATOR_PRESETS

    _, classes = estimator_names()
    presets = "\n".join(f"  {name}: {desc}" for name, (desc, _) in ESTIMATOR_PRESETS.items())
    presets += "\nestimators and the parameters they take (NAME:PARAM=VALUE; a preset takes its class's):\n"
    presets += "\n".join(f"  {name}: {cls.__name__}({', '.join(estimator_parameters(cls))})"
                          + ("  [the name is the preset above]" if name in ESTIMATOR_PRESETS else "")
                          for name, cls in classes.items())
    g = p.add_argument_group("estimation")
    g.add_argument("--estimators", type=_estimators_arg, default=default_estimators,
                   metavar="SPECS",
                   help="comma-separated estimators, each a preset or an estimator name with optional "
                   "parameters, e.g. 'kde-upper:noise_variance=0.1,binning:n_bins=50:strategy=adaptive,knn:k=5' "
                   "(listed below; see docs/notes/cli.md)")
    g.add_argument("--n-jobs", type=_n_jobs, default=-1,
                   help="parallel worker processes over (epoch, layer) pairs with joblib (-1: all cores; 1: "
                   "serial, in this process)")
    g.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run the estimation on a dask.distributed cluster (e.g. tcp://host:8786); needs "
                   "'pip install infoplane[dask]'")
    g.add_argument("--final-epochs", type=_positive_int, default=1,
                   help="compression score: average I(T;X) over this many last recorded epochs as the final value")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.epilog = (p.epilog or "") + "estimator presets:\n" + presets + (
        "\nexample: --estimators \"kde-upper:noise_variance=0.1,binning:n_bins=50,knn:k=5\"")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m infoplane`` argument parser (sub-commands run, record, estimate, plot)."""
    parser = argparse.ArgumentParser(
        prog="python -m infoplane",
        description="Information-plane analysis of neural networks: record layers, estimate I(T;X) and I(T;Y) "
        "in bits, plot epoch-coloured trajectories.",
        epilog="Start with:  python -m infoplane run --out results/\n"
        "Each sub-command has its own --help.",
        formatter_class=_Formatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "run", formatter_class=_Formatter,
        help="train + record + estimate + plot the SZT network (the whole pipeline)",
        description="Train the SZT network (Shwartz-Ziv & Tishby 2017) on 80% of the 4096 inputs, record every "
        "layer on all 4096 inputs at the scheduled epochs into OUT/store.zarr, estimate the information plane "
        "(OUT/information_plane.csv + .json conventions), compression scores (OUT/compression.csv) and draw "
        "OUT/information_plane.png. Prints final accuracy and the compression scores.",
    )
    p.add_argument("--out", type=Path, default=Path("results"), help="output directory")
    _add_training(p)
    _add_estimation(p)

    p = sub.add_parser(
        "record", formatter_class=_Formatter,
        help="train the SZT network (or --model MODULE:FUNCTION) and record its layers (no estimation)",
        description="Train the SZT network and record every layer on all 4096 inputs at the scheduled epochs "
        "into OUT/store.zarr (training history in OUT/training.csv). Estimate later with "
        "'python -m infoplane estimate OUT/store.zarr'. With --model MODULE:FUNCTION, FUNCTION() returns "
        "(model, probe, labels): your model is trained on 80% of the probe rows and recorded on all of them.",
    )
    p.add_argument("--out", type=Path, default=Path("results"), help="output directory")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_training(p)

    p = sub.add_parser(
        "estimate", formatter_class=_Formatter, help="estimate the information plane of a recorded store",
        description="Estimate I(T;X) and I(T;Y) (bits) for every recorded epoch and layer of STORE (a zarr "
        "store written by 'record', 'run' or infoplane.Recorder, with stored labels) and write a results "
        "table (.csv + .json conventions, or .parquet) and the compression scores beside it.",
    )
    p.add_argument("store", type=Path, metavar="STORE", help="path of the zarr store")
    p.add_argument("--out", type=Path, default=None,
                   help=f"results table (.csv or .parquet); default: {TABLE_NAME} next to STORE")
    p.add_argument("--layers", type=_csv_list, default=None, help="comma-separated layers (default: all)")
    p.add_argument("--epochs", type=_epoch_list, default=None, help="comma-separated epochs (default: all)")
    _add_estimation(p)

    p = sub.add_parser(
        "plot", formatter_class=_Formatter, help="draw a results table as an information-plane PNG",
        description="Draw the information plane of a results table (one panel per estimator; points coloured "
        "by epoch, purple to yellow, several runs averaged with their spread) and save a PNG.",
    )
    p.add_argument("table", type=Path, metavar="TABLE", help="results table (.csv with its .json, or .parquet)")
    p.add_argument("--out", type=Path, default=None, help="PNG path; default: TABLE with suffix .png")
    p.add_argument("--estimators", type=_csv_list, default=None, metavar="LABELS",
                   help="comma-separated estimator labels to draw (default: all in the table)")
    p.add_argument("--layers", type=_csv_list, default=None, help="comma-separated layers (default: all)")
    p.add_argument("--epoch-scale", choices=("linear", "log"), default="log", help="colour scale of epochs")
    p.add_argument("--hx", type=_bits, default=None, metavar="BITS",
                   help="H(X) in bits, drawn as a reference line (12 for the SZT task)")
    p.add_argument("--hy", type=_bits, default=None, metavar="BITS",
                   help="H(Y) in bits, drawn as a reference line (0.9992 for the SZT task)")
    p.add_argument("--dpi", type=_positive_int, default=150, help="resolution of the PNG")
    return parser


# --------------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------------
def _train_and_record(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import numpy as np

    from ._core.units import entropy_bits
    from .nets import train, train_test_split
    from .recording import Recorder
    from .store import ZarrStore

    schedule = parse_schedule(args.schedule, args.epochs)
    store_path = out / STORE_NAME
    if store_path.exists() and not args.overwrite:
        raise FileExistsError(f"the store {str(store_path)!r} already exists; pass --overwrite to replace it, or "
                              "choose another --out.")
    model, X, y, layers = _subject(args)  # a bad --model fails before anything is written
    out.mkdir(parents=True, exist_ok=True)
    store = ZarrStore(store_path, mode="w" if args.overwrite else "w-")  # refuse a wrong path before training
    try:
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=args.seed)
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                  if k not in ("func", "estimators")}
        store.set_metadata(command_line=config, task=args.model or "szt", train_fraction=0.8)
        # A 12-10-7-5-4-3-2 net is far too small for intra-op threads: one thread is faster (threads=1).
        with Recorder(model, layers, X, labels=y, schedule=schedule, store=store) as rec:
            start = time.perf_counter()
            history = train(model, X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, seed=args.seed, X_test=X_test, y_test=y_test, callback=rec.step,
                            progress=not args.no_progress, threads=1 if args.model is None else None)
            seconds = time.perf_counter() - start
        history.to_csv(out / HISTORY_NAME, index=False)
    finally:
        store.close()
    last = history.iloc[-1]
    return {
        "store": store_path, "history": out / HISTORY_NAME, "seconds": seconds, "n_recorded": len(rec.epochs),
        "train_accuracy": float(last["train_accuracy"]), "test_accuracy": float(last["test_accuracy"]),
        "H_X": math.log2(len(X)), "H_Y": entropy_bits(np.bincount(y)),
    }


def _subject(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """(model, probe, labels, layers): the SZT network on its 4096 inputs, or the user's ``--model``."""
    import numpy as np

    from .nets import SZTNet, load_szt

    if args.model is None:
        X, y = load_szt(return_X_y=True)
        model = SZTNet(activation=args.activation, seed=args.seed)
        return model, X, y, args.record_layers or model.layer_names
    model, probe, labels = load_model(args.model)
    layers = args.record_layers or getattr(model, "layer_names", None)
    if not layers:
        names = [name for name, _ in model.named_modules() if name][:12]
        raise ValueError(f"--model {args.model}: name the layers to record with --layers (names or globs of "
                         f"the model's named_modules(), e.g. {', '.join(names)}).")
    X = np.asarray(probe.detach().cpu()) if hasattr(probe, "detach") else np.asarray(probe)
    return model, X, labels, layers


@contextlib.contextmanager
def _dask_client(address: str | None):
    if address is None:
        yield None
        return
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("--dask-scheduler needs dask.distributed: pip install 'infoplane[dask]'.") from exc
    with distributed.Client(address) as client:
        yield client


def _estimate(args: argparse.Namespace, store: Path, table: Path, *, layers=None, epochs=None):
    from .analysis import compression_scores, information_plane, save_results

    start = time.perf_counter()
    with _dask_client(args.dask_scheduler):
        df = information_plane(
            store, estimators=dict(args.estimators), layers=layers, epochs=epochs, n_jobs=args.n_jobs,
            backend="dask" if args.dask_scheduler else None, progress=not args.no_progress,
        )
    seconds = time.perf_counter() - start
    save_results(df, table)
    scores = compression_scores(df, final_epochs=args.final_epochs)
    scores_path = table.with_name(SCORES_NAME) if table.name == TABLE_NAME else table.with_name(
        table.name.split(".")[0] + "_compression" + "".join(table.suffixes)
    )
    save_results(scores, scores_path)
    return df, scores, scores_path, seconds


def _plot(df, path: Path, *, estimators=None, layers=None, epoch_scale="log", H_X=None, H_Y=None, dpi=150):
    from matplotlib.figure import Figure

    from .plotting import plot_information_plane, plot_mi_vs_epoch

    labels = list(df.attrs.get("estimators") or dict.fromkeys(df["estimator"]))
    labels = [lab for lab in labels if lab in set(df["estimator"])]
    if estimators:
        unknown = [e for e in estimators if e not in labels]
        if unknown:
            raise KeyError(f"estimator(s) {unknown} not in the table; it has {labels}.")
        labels = list(estimators)
    fig = Figure(figsize=(5.2 * len(labels), 4.4), layout="constrained")
    axes = fig.subplots(1, len(labels), squeeze=False)[0]
    for ax, label in zip(axes, labels):
        if df.loc[df["estimator"] == label, "I_XT"].notna().any():
            plot_information_plane(df, estimator=label, layers=layers, epoch_scale=epoch_scale, H_X=H_X,
                                   H_Y=H_Y, ax=ax)
        else:  # k-NN, probe, critics: I(T;Y) only, against epoch
            plot_mi_vs_epoch(df, "I_TY", estimator=label, layers=layers, epoch_scale=epoch_scale, H_Y=H_Y,
                             ax=ax, title=f"{label}: I(T;Y) (no I(T;X))")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _print_scores(scores) -> None:
    print("compression of I(T;X) (max - final, bits; fraction of max; epoch of max):")
    for label, group in scores.groupby("estimator", sort=False):
        print(f"  {label}:")
        for row in group.itertuples():
            prefix = f"run {row.run} " if "run" in scores.columns and scores["run"].nunique() > 1 else ""
            print(f"    {prefix}{row.layer:<10} {row.compression:6.3f} bits  ({row.compression_fraction:6.1%})  "
                  f"peak at epoch {row.peak_epoch}")


def _what(args: argparse.Namespace) -> str:
    return f"{args.model}()" if args.model else f"{args.activation} SZT net"


def _cmd_record(args: argparse.Namespace) -> int:
    info = _train_and_record(args, args.out)
    print(f"trained {_what(args)} for {args.epochs} epochs in {info['seconds']:.1f} s: "
          f"train accuracy {info['train_accuracy']:.3f}, test accuracy {info['test_accuracy']:.3f}")
    print(f"recorded {info['n_recorded']} epochs -> {info['store']}")
    print(f"training history -> {info['history']}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    out: Path = args.out
    info = _train_and_record(args, out)
    print(f"trained {_what(args)} for {args.epochs} epochs in {info['seconds']:.1f} s: "
          f"train accuracy {info['train_accuracy']:.3f}, test accuracy {info['test_accuracy']:.3f}")
    df, scores, scores_path, seconds = _estimate(args, info["store"], out / TABLE_NAME)
    print(f"estimated {len(df)} points ({', '.join(df.attrs['estimators'])}) in {seconds:.1f} s")
    figure = _plot(df, out / FIGURE_NAME, H_X=info["H_X"], H_Y=info["H_Y"])
    _print_scores(scores)
    print("files:")
    for what, path in (("recording", info["store"]), ("training history", info["history"]),
                       ("results table", out / TABLE_NAME), ("conventions", out / (TABLE_NAME + ".json")),
                       ("compression scores", scores_path), ("figure", figure)):
        print(f"  {what:<19} {path}")
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    if not args.store.exists():
        raise FileNotFoundError(f"STORE {str(args.store)!r} does not exist.")
    table = args.out if args.out is not None else args.store.parent / TABLE_NAME
    df, scores, scores_path, seconds = _estimate(args, args.store, table, layers=args.layers, epochs=args.epochs)
    print(f"estimated {len(df)} points ({', '.join(df.attrs['estimators'])}) in {seconds:.1f} s")
    _print_scores(scores)
    print(f"results table -> {table}\ncompression scores -> {scores_path}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .analysis import load_results

    df = load_results(args.table)
    missing = [c for c in ("epoch", "layer", "estimator", "I_XT", "I_TY") if c not in df.columns]
    if missing:
        raise ValueError(f"TABLE {str(args.table)!r} is not a results table: missing column(s) {missing}.")
    out = args.out if args.out is not None else args.table.with_name(args.table.name.split(".")[0] + ".png")
    _plot(df, out, estimators=args.estimators, layers=args.layers, epoch_scale=args.epoch_scale,
          H_X=args.hx, H_Y=args.hy, dpi=args.dpi)
    print(f"figure -> {out}")
    return 0


_COMMANDS = {"run": _cmd_run, "record": _cmd_record, "estimate": _cmd_estimate, "plot": _cmd_plot}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m infoplane`` and the ``infoplane`` script; returns the exit status.

    0: success (or ``--help``); 1: the job failed on bad input (message on stderr); 2: bad arguments.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2): return, so callers and tests get the code
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        print("\npython -m infoplane: error: choose a sub-command (run, record, estimate, plot)", file=sys.stderr)
        return 2
    from .store import StoreLockedError

    try:
        return _COMMANDS[args.command](args)
    except (ValueError, TypeError, KeyError, OSError, ImportError, StoreLockedError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"python -m infoplane {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


"""`log_to`: information-plane scalars and figures to TensorBoard, MLflow, Weights & Biases or a Lightning logger.

No logger library is imported here: each is reached through the object the caller gives (a
``SummaryWriter``, the ``mlflow`` module or an ``MlflowClient``, the ``wandb`` module or a run, a Lightning
logger), except for the names ``"mlflow"`` and ``"wandb"``, which import that module (or say which extra
installs it).
"""
from __future__ import annotations

import math
import numbers
import re
import types
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ._extras import require

__all__ = ["log_to", "scalar_name"]

_COLUMNS = ("I_XT", "I_TY", "I_TY_shuffled", "I_XT_se", "I_TY_se")
_MLFLOW_UNSAFE = re.compile(r"[^\w\-. /]")


def scalar_name(estimator: str, layer: str, column: str) -> str:
    """``infoplane/<estimator>/<layer>/<column>``, the name of one logged scalar (bits)."""
    return f"infoplane/{estimator}/{layer}/{column}"


def _as_table(df_or_row: Any) -> pd.DataFrame:
    if isinstance(df_or_row, pd.DataFrame):
        df = df_or_row
    elif isinstance(df_or_row, (pd.Series, Mapping)):
        df = pd.DataFrame([dict(df_or_row)])
    else:
        raise TypeError(
            "df_or_row must be a DataFrame from information_plane() or one of its rows (Series or dict). "
            f"Got {type(df_or_row).__name__}."
        )
    missing = [c for c in ("epoch", "layer", "estimator", "I_XT", "I_TY") if c not in df.columns]
    if missing:
        raise ValueError(
            f"df_or_row must have the columns of information_plane(): missing {missing}; got {list(df.columns)}."
        )
    if "run" in df.columns and df["run"].nunique() > 1:
        raise ValueError(
            f"df_or_row holds {df['run'].nunique()} runs; log one run at a time (df[df.run == name])."
        )
    return df


# ---------------------------------------------------------------------------------------------- sinks
class _TensorBoard:
    takes_figures = True

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def scalars(self, values: dict[str, float], step: int) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, global_step=step)

    def figure(self, tag: str, fig: Any, step: int) -> None:
        self.writer.add_figure(tag, fig, global_step=step, close=True)


class _MLflow:
    """The ``mlflow`` module (its active run) or an ``MlflowClient`` with a run id."""

    takes_figures = True
    #: MLflow's limit on a metric key (``mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH``).
    max_name = 250

    @staticmethod
    def name(name: str) -> str:
        return _MLFLOW_UNSAFE.sub("_", name)

    def __init__(self, api: Any, run_id: str | None = None) -> None:
        self.api, self.run_id = api, run_id

    def _args(self) -> tuple:
        return () if self.run_id is None else (self.run_id,)

    def scalars(self, values: dict[str, float], step: int) -> None:
        # MLflow names allow letters, digits, _ - . / and space: "enc[0]" becomes "enc_0_".
        for name, value in values.items():
            self.api.log_metric(*self._args(), self.name(name), value, step=step)

    def figure(self, tag: str, fig: Any, step: int) -> None:
        path = f"{_MLFLOW_UNSAFE.sub('_', tag)}/epoch_{step:06d}.png"
        self.api.log_figure(*self._args(), fig, path)


class _Wandb:
    """A wandb run; the scalars get their own step metric ``infoplane/epoch`` (W&B steps only increase)."""

    takes_figures = True

    def __init__(self, run: Any) -> None:
        self.run = run
        run.define_metric("infoplane/epoch")
        run.define_metric("infoplane/*", step_metric="infoplane/epoch")

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log({**values, "infoplane/epoch": step})

    def figure(self, tag: str, fig: Any, step: int) -> None:
        wandb = require("wandb", "loggers", "log_to(<wandb run>)")
        self.run.log({tag: wandb.Image(fig), "infoplane/epoch": step})


class _LightningMetrics:
    """Any other Lightning logger (CSVLogger, ...): scalars through ``log_metrics``, no figures."""

    takes_figures = False

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.logger.log_metrics(values, step=step)


def _class_names(obj: Any) -> set[str]:
    return {f"{c.__module__.split('.')[0]}.{c.__name__}" for c in type(obj).__mro__}


def _lightning_sink(logger: Any, names: set[str]) -> Any:
    if any(n.endswith(".TensorBoardLogger") for n in names):
        return _TensorBoard(logger.experiment)
    if any(n.endswith(".MLFlowLogger") for n in names):
        return _MLflow(logger.experiment, logger.run_id)
    if any(n.endswith(".WandbLogger") for n in names):
        return _Wandb(logger.experiment)
    return _LightningMetrics(logger)


def _module_sink(name: str, module: Any) -> Any:
    if name == "mlflow":
        return _MLflow(module)
    if name == "wandb":
        if module.run is None:
            raise ValueError("log_to(wandb): no active W&B run; call wandb.init(...) first or pass the run.")
        return _Wandb(module.run)
    raise TypeError(f"log_to: the module {name!r} is not a logger; pass 'mlflow', 'wandb' or a logger object.")


def _sink(logger: Any) -> Any:
    if isinstance(logger, str):
        if logger not in ("mlflow", "wandb"):
            raise ValueError(f"log_to: logger must be 'mlflow', 'wandb' or a logger object. Got {logger!r}.")
        return _module_sink(logger, require(logger, "loggers", f"log_to({logger!r})"))
    if isinstance(logger, types.ModuleType):
        return _module_sink(logger.__name__, logger)
    if isinstance(logger, tuple) and len(logger) == 2 and isinstance(logger[1], str):
        return _MLflow(logger[0], logger[1])  # (MlflowClient, run_id)
    names = _class_names(logger)
    if any(n.startswith(("lightning.", "pytorch_lightning.")) and n.endswith("Logger") for n in names):
        return _lightning_sink(logger, names)
    if hasattr(logger, "add_scalar") and hasattr(logger, "add_figure"):
        return _TensorBoard(logger)
    if any(n.startswith("wandb.") for n in names) and hasattr(logger, "log"):
        return _Wandb(logger)
    if "mlflow.MlflowClient" in names:
        raise TypeError("log_to: an MlflowClient needs its run: pass (client, run_id).")
    raise TypeError(
        "log_to: logger must be a TensorBoard SummaryWriter, the mlflow module (or 'mlflow', or "
        "(MlflowClient, run_id)), the wandb module or a wandb run (or 'wandb'), or a Lightning logger. "
        f"Got {type(logger).__name__}."
    )


def _epoch(value: Any) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        ok = float(value).is_integer()
    if not ok or value < 0:
        raise ValueError(f"log_to: the 'epoch' column must hold integers >= 0 (the step to log at). Got {value!r}.")
    return int(value)


def _scalars(table: pd.DataFrame, wanted: set[int] | None, sink: Any) -> list[tuple[int, dict[str, float]]]:
    """Every (step, {name: value}) to log, checked whole before anything is logged."""
    columns = [c for c in _COLUMNS if c in table.columns]
    steps = [_epoch(e) for e in table["epoch"].tolist()]
    by_step: dict[int, dict[str, float]] = {}
    dropped: list[str] = []
    limit, rename = getattr(sink, "max_name", None), getattr(sink, "name", lambda n: n)
    for step, r in zip(steps, table.to_dict("records")):
        if wanted is not None and step not in wanted:
            continue
        for c in columns:
            name = scalar_name(str(r["estimator"]), str(r["layer"]), c)
            if limit is not None and len(rename(name)) > limit:
                raise ValueError(
                    f"log_to: the scalar name for layer {str(r['layer'])!r} is {len(rename(name))} characters "
                    f"long; this logger takes at most {limit} characters. Nothing was logged; rename the layer "
                    "(e.g. df.layer.replace(...)) first."
                )
            value = float(r[c])
            if not math.isfinite(value):
                dropped.append(f"{name} at epoch {step}")
                continue
            by_step.setdefault(step, {})[name] = value
    if dropped:
        warnings.warn(
            f"log_to: {len(dropped)} values are not finite (NaN or inf) and were not logged: {', '.join(dropped[:5])}"
            f"{', ...' if len(dropped) > 5 else ''}.", RuntimeWarning, stacklevel=3,
        )
    return sorted(by_step.items())


def _plane_figure(df: pd.DataFrame, estimator: str) -> Any:
    from matplotlib.figure import Figure

    from ..plotting import plot_information_plane, plot_mi_vs_epoch

    fig = Figure(figsize=(5.0, 4.0), layout="constrained")
    rows = df[df["estimator"] == estimator] if "estimator" in df.columns else df
    if rows["I_XT"].notna().any():
        plot_information_plane(df, estimator=estimator, ax=fig.add_subplot(), title=f"{estimator}")
    else:  # an I(T;Y)-only estimator (k-NN, probe, critics) has no plane: its I(T;Y) against epoch
        plot_mi_vs_epoch(df, "I_TY", estimator=estimator, ax=fig.add_subplot(), title=f"{estimator}: I(T;Y)")
    return fig


# ---------------------------------------------------------------------------------------------- log_to
def log_to(
    logger: Any,
    df_or_row: Any,
    *,
    epochs: Iterable[int] | None = None,
    figure: bool | None = None,
) -> None:
    """Log information-plane numbers (bits) as scalars, and the plane as a figure, to a logger.

    Each row of ``df_or_row`` becomes scalars ``infoplane/<estimator>/<layer>/I_XT`` and ``.../I_TY``
    (and ``.../I_TY_shuffled`` when present), logged at step = the row's epoch. With ``figure``, one plane
    per estimator (`infoplane.plotting.plot_information_plane` of all rows) is logged as
    ``infoplane/<estimator>/plane`` at the last epoch, where the logger takes images.

    Parameters
    ----------
    logger : logger object or name
        * a TensorBoard ``SummaryWriter`` (``torch.utils.tensorboard`` or tensorboardX): ``add_scalar``,
          ``add_figure``;
        * MLflow: the ``mlflow`` module or ``"mlflow"`` (the active run), or ``(MlflowClient, run_id)``:
          ``log_metric``, ``log_figure`` (artifact ``infoplane/<estimator>/plane/epoch_<epoch>.png``).
          MLflow names allow letters, digits and ``_ - . / space``; other characters become ``_``
          (``enc[0]`` is logged as ``enc_0_``);
        * Weights & Biases: the ``wandb`` module or ``"wandb"`` (the active run), or a run: ``run.log``
          with the step metric ``infoplane/epoch`` (W&B's own step only increases, so the epoch is a
          metric of its own, declared with ``define_metric``), figures as ``wandb.Image``;
        * a Lightning logger: ``TensorBoardLogger``, ``MLFlowLogger`` and ``WandbLogger`` as above through
          their ``experiment``; any other (e.g. ``CSVLogger``) gets the scalars through ``log_metrics``
          and no figure.
    df_or_row : DataFrame or row
        A table from `infoplane.information_plane` (one run) or one of its rows (a Series or dict with
        ``epoch, layer, estimator, I_XT, I_TY``).
    epochs : iterable of int, optional
        Log the scalars of these epochs only (the figure still draws every row): a training loop that
        re-estimates the plane after each recording logs only the new epoch.
    figure : bool, optional
        Log the plane figure. Default: True for a DataFrame, False for a single row.

    Examples
    --------
    >>> from torch.utils.tensorboard import SummaryWriter
    >>> df = infoplane.information_plane("run.zarr", estimators="binning")
    >>> log_to(SummaryWriter("tb/"), df)
    """
    table = _as_table(df_or_row)
    if figure is None:
        figure = isinstance(df_or_row, pd.DataFrame)
    sink = _sink(logger)
    wanted = None if epochs is None else {_epoch(e) for e in epochs}
    planned = _scalars(table, wanted, sink)  # every name, value and epoch checked before anything is logged
    for step, values in planned:
        sink.scalars(values, step)
    if figure and sink.takes_figures and len(table):
        last = max(_epoch(e) for e in table["epoch"].tolist())
        for estimator in pd.unique(table["estimator"]):
            rows = table[table["estimator"] == estimator]
            if rows["I_XT"].isna().all() or rows["I_TY"].isna().all():
                continue  # no plane to draw (an I(T;Y)-only estimator): no empty image
            sink.figure(f"infoplane/{estimator}/plane", _plane_figure(table, str(estimator)), last)

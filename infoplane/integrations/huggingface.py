"""`InformationPlaneCallback` for the Hugging Face ``Trainer`` (``pip install 'infoplane[hf]'``).

>>> from infoplane.integrations.huggingface import InformationPlaneCallback
>>> cb = InformationPlaneCallback(layers="bert.encoder.layer.*", probe={"input_ids": ids, "attention_mask": mask},
...                               labels=y, store="run.zarr")
>>> transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=[cb]).train()

What is stored for a transformer layer: its output for each probe sequence flattened to one row, so a
BERT layer's hidden states of shape (N, L, H) become (N, L·H) (every token position is a coordinate of the
representation; padding positions are included, so give probe sequences of one length). An element of a
tuple or ``ModelOutput`` is chosen as for `infoplane.Recorder`: ``Layer("bert", output="last_hidden_state")``
or ``Layer("bert.encoder", output=0)``. To record one vector per sequence instead (e.g. mean-pooled tokens), record a module
that computes it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch

from .._core.types import ArrayLike
from .._core.validation import param_error
from ..store import BaseStore
from ._callback import CallbackResults, RecordingCore
from ._extras import require

_transformers = require("transformers", "hf", "infoplane.integrations.huggingface")

__all__ = ["InformationPlaneCallback"]

_LABEL_KEYS = ("labels", "label", "label_ids")


def _stack(items: list[Any]) -> dict[str, torch.Tensor]:
    if not all(isinstance(item, Mapping) for item in items):
        raise TypeError(
            "probe: a dataset probe must yield dicts {name: value} (e.g. input_ids, attention_mask). Got "
            f"{type(items[0]).__name__}."
        )
    out = {}
    for key in items[0]:
        values = [torch.as_tensor(item[key]) for item in items]
        shapes = {tuple(v.shape) for v in values}
        if len(shapes) > 1:
            raise ValueError(
                f"probe: {key!r} has rows of different shapes {sorted(shapes)[:4]}; pad the probe sequences to "
                "one length (each row is stored as one flattened representation)."
            )
        out[key] = torch.stack(values)
    return out


def probe_inputs(probe: Any, labels: ArrayLike | None = None) -> tuple[Any, Any]:
    """The model inputs and (N,) labels of a probe given as a dict of tensors, a dataset or a tensor.

    A dict ``{name: (N, ...)}`` is passed by keyword; a dataset (anything with ``len`` and ``[i]`` yielding
    dicts, e.g. a ``datasets.Dataset`` or a list of dicts) is stacked into one; a tensor, array or tuple
    is passed positionally. Label entries (``labels``, ``label``, ``label_ids``) are not passed to the model;
    when ``labels`` is None and they are one integer per row, they become the probe labels (per-token labels
    of a token task are not: give ``labels=`` one class per sequence for I(T;Y)).
    """
    if isinstance(probe, (torch.Tensor, np.ndarray, tuple)):
        return probe, labels
    if isinstance(probe, Mapping):
        inputs = dict(probe)
    elif hasattr(probe, "__len__") and hasattr(probe, "__getitem__"):
        if len(probe) == 0:
            raise ValueError("probe: the dataset is empty.")
        inputs = _stack([probe[i] for i in range(len(probe))])
    else:
        raise param_error(
            "InformationPlaneCallback", "probe", "a dict of tensors, a dataset of dicts or a tensor", probe
        )
    found = [inputs.pop(k) for k in _LABEL_KEYS if k in inputs]
    if labels is None and found and np.ndim(found[0]) == 1:
        labels = found[0]
    if not inputs:
        raise ValueError("probe: no model inputs left after removing the label entries.")
    return inputs, labels


class InformationPlaneCallback(CallbackResults, _transformers.TrainerCallback):
    """Record layers of a Hugging Face model on a probe set during ``Trainer.train``.

    With ``unit="epoch"`` (default) index 0 is the model before training (``on_train_begin``) and index
    ``e`` the model after epoch ``e`` (``on_epoch_end``); with ``unit="step"`` the index is the optimiser
    step (``state.global_step``, checked at ``on_step_end``), so ``schedule=50, unit="step"`` records every
    50 steps. The store's "epoch" axis holds that index.

    Parameters
    ----------
    layers : name, glob, type, Layer or list of them
        As for `infoplane.Recorder`, resolved on the model at ``on_train_begin``: a missing layer raises
        KeyError listing ``named_modules()`` before the first step. Tuple / ``ModelOutput`` outputs: choose
        an element (``Layer("bert", output="last_hidden_state")``).
    probe : dict of tensors, dataset of dicts, or tensor
        The fixed probe (`probe_inputs`): a dict ``{"input_ids": (N, L), "attention_mask": (N, L)}`` is
        passed by keyword.
    labels : array of int, optional
        (N,) labels of the probe rows (one class per row).
    schedule, store, estimators, distributed, batch_size, figure
        As for the Lightning callback (`infoplane.integrations.lightning.InformationPlaneCallback`).
    unit : {"epoch", "step"}, default "epoch"
        What the schedule counts.
    logger : optional
        Where `infoplane.integrations.log_to` sends the scalars and figures when ``estimators`` are given
        (a ``SummaryWriter``, ``"mlflow"``, ``"wandb"``, ...). The Trainer's own integrations
        (``report_to``) are not used.
    """

    def __init__(
        self,
        layers: Any,
        probe: Any,
        labels: Any = None,
        schedule: Any = None,
        store: BaseStore | str | os.PathLike | None = None,
        estimators: Any = None,
        *,
        unit: Literal["epoch", "step"] = "epoch",
        logger: Any = None,
        distributed: Literal["rank0", "gather"] = "rank0",
        batch_size: int = 1024,
        figure: bool = True,
    ) -> None:
        if unit not in ("epoch", "step"):
            raise param_error("InformationPlaneCallback", "unit", "one of 'epoch', 'step'", unit)
        inputs, labels = probe_inputs(probe, labels)
        self.unit = unit
        self.logger = logger
        self.core = RecordingCore(
            "InformationPlaneCallback", layers=layers, probe=inputs, labels=labels, schedule=schedule,
            store=store, estimators=estimators, distributed=distributed, batch_size=batch_size, figure=figure,
        )

    def _index(self, state: Any) -> int:
        return int(state.global_step) if self.unit == "step" else int(round(state.epoch or 0))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is None:
            raise RuntimeError("InformationPlaneCallback: the Trainer passed no model to on_train_begin.")
        self.core.start(model)
        self.core.step(self._index(state), self.logger)  # 0, or the resumed index (already stored: skipped)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.unit == "epoch":
            self.core.step(self._index(state), self.logger)

    def on_step_end(self, args, state, control, **kwargs):
        if self.unit == "step":
            self.core.step(self._index(state), self.logger)

    def on_train_end(self, args, state, control, **kwargs):
        self.core.close()

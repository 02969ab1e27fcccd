"""`InformationPlaneCallback` for Lightning (``pip install 'infoplane[lightning]'``).

>>> from infoplane.integrations.lightning import InformationPlaneCallback
>>> cb = InformationPlaneCallback(layers=["act*"], probe=X, labels=y, schedule=10, store="run.zarr",
...                               estimators="binning")
>>> lightning.pytorch.Trainer(max_epochs=100, callbacks=[cb]).fit(module, loader)
"""
from __future__ import annotations

import os
from typing import Any, Literal

from ..store import BaseStore
from ._callback import CallbackResults, RecordingCore
from ._extras import require

_pl = require("lightning.pytorch", "lightning", "infoplane.integrations.lightning")

__all__ = ["InformationPlaneCallback"]


class InformationPlaneCallback(CallbackResults, _pl.callbacks.Callback):
    """Record layers of any ``LightningModule`` on a probe set at the end of scheduled training epochs.

    Epoch numbering is that of `infoplane.nets.train`: epoch 0 is the model before its first update
    (recorded at ``on_train_start``), epoch ``e`` the model after ``e`` training epochs (recorded at the end
    of Lightning's epoch ``e - 1``, i.e. ``trainer.current_epoch + 1``). A probe pass hooks the module only
    while it runs, in eval mode under ``torch.inference_mode()``; every module's mode, and the RNG, are
    restored (`infoplane.Recorder`).

    Parameters
    ----------
    layers : name, glob, type, Layer or list of them
        As for `infoplane.Recorder`, resolved on the ``LightningModule`` at ``setup``: a missing layer raises
        KeyError listing the module's ``named_modules()`` names before training starts.
    probe : array, tensor, tuple or dict of them
        The fixed probe inputs (N rows), passed to the module's ``forward``.
    labels : array of int, optional
        (N,) labels of the probe rows, for I(T;Y).
    schedule : Schedule, int, list of int or None
        Which epochs to record (None: every epoch).
    store : None, path or store
        Where activations go; a path is a resumable `ZarrStore`.
    estimators : estimator, preset name, list or dict, optional
        When given, each recording is estimated on rank 0 (`infoplane.information_plane`) and logged
        through ``trainer.logger`` with `infoplane.integrations.log_to`: scalars
        ``infoplane/<estimator>/<layer>/I_XT`` and ``.../I_TY`` (bits, step = epoch) and, where the logger
        takes images (TensorBoard, MLflow, W&B), the plane so far as ``infoplane/<estimator>/plane``.
        ``callback.results`` holds the table.
    distributed : {"rank0", "gather"}, default "rank0"
        Under DDP: rank 0 records the whole probe, or every rank its shard, gathered on rank 0
        (`infoplane.integrations.DistributedRecorder`). Only rank 0 writes the store.
    batch_size : int, default 1024
        Probe rows per forward pass.
    figure : bool, default True
        Log the plane figure (only with ``estimators``).

    Notes
    -----
    Resuming: the callback's ``state_dict`` (in every Lightning checkpoint) holds the store's path, layers
    and recorded epochs. ``Trainer.fit(..., ckpt_path=...)`` with a callback on the same store continues the
    trajectory: the store is reopened (``mode="a"``), epochs already there are kept and not recorded again;
    a store without the checkpoint's epochs, or other layers, raise ValueError.
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
        distributed: Literal["rank0", "gather"] = "rank0",
        batch_size: int = 1024,
        figure: bool = True,
    ) -> None:
        super().__init__()
        self.core = RecordingCore(
            "InformationPlaneCallback", layers=layers, probe=probe, labels=labels, schedule=schedule,
            store=store, estimators=estimators, distributed=distributed, batch_size=batch_size, figure=figure,
        )

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self.core.start(pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # 0 on a fresh fit; after a resume the restored epoch, usually recorded already (then skipped).
        self.core.step(trainer.current_epoch, trainer.logger)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.core.step(trainer.current_epoch + 1, trainer.logger)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self.core.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.core.close()  # release the store's writer lock; its completed epochs stay readable

    def state_dict(self) -> dict[str, Any]:
        return self.core.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.core.load_state_dict(state_dict)

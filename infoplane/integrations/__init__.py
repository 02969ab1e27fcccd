"""Attach infoplane to the trainers and loggers people use; each needs its optional extra.

* `infoplane.integrations.lightning.InformationPlaneCallback` — a Lightning ``Callback``
  (``pip install 'infoplane[lightning]'``);
* `infoplane.integrations.huggingface.InformationPlaneCallback` — a ``transformers.TrainerCallback``
  (``pip install 'infoplane[hf]'``);
* `log_to` — scalars and plane figures to a TensorBoard ``SummaryWriter``, MLflow or Weights & Biases
  (``pip install 'infoplane[loggers]'``), for a plain PyTorch loop with the `Recorder`;
* `DistributedRecorder` — recording under ``torch.distributed`` with one writer per store (torch only).

Importing this package (or ``infoplane``) imports none of Lightning, transformers, TensorBoard, MLflow or
wandb: the two callback modules import their trainer when they are imported, and `log_to` touches a logger
library only through the object it is given.
"""
from __future__ import annotations

from ._logging import log_to
from .distributed import DistributedRecorder

__all__ = ["log_to", "DistributedRecorder"]

"""infoplane.integrations without the heavy libraries: optional imports, dict probes, DistributedRecorder, log_to checks."""
from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import infoplane
from infoplane.integrations import DistributedRecorder, log_to

HEAVY = ("lightning", "pytorch_lightning", "transformers", "mlflow", "wandb", "tensorboard", "torch.utils.tensorboard")


def test_importing_infoplane_imports_no_trainer_or_logger():
    code = (
        "import sys, infoplane, infoplane.integrations; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module, blocked, extra",
    [
        ("infoplane.integrations.lightning", ("lightning", "lightning.pytorch"), "lightning"),
        ("infoplane.integrations.huggingface", ("transformers",), "hf"),
    ],
)
def test_a_missing_trainer_names_the_extra(monkeypatch, module, blocked, extra):
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)  # what an absent package looks like to import
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=rf"pip install 'infoplane\[{extra}\]'"):
        importlib.import_module(module)


@pytest.mark.parametrize("name", ["mlflow", "wandb"])
def test_a_missing_logger_names_the_loggers_extra(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)
    row = {"epoch": 0, "layer": "a", "estimator": "binning", "I_XT": 1.0, "I_TY": 0.5}
    with pytest.raises(ImportError, match=rf"{name}.*pip install 'infoplane\[loggers\]'"):
        log_to(name, row)


def _table(runs=("0",)):
    rows = [
        {"run": r, "epoch": e, "layer": "a", "estimator": "binning", "I_XT": 1.0 + e, "I_TY": 0.5}
        for r in runs for e in (0, 1)
    ]
    return pd.DataFrame(rows)


def test_log_to_rejects_what_it_cannot_log():
    with pytest.raises(TypeError, match="logger must be a TensorBoard SummaryWriter.*Got object"):
        log_to(object(), _table())
    with pytest.raises(ValueError, match="logger must be 'mlflow', 'wandb'"):
        log_to("tensorboard", _table())
    with pytest.raises(ValueError, match="holds 2 runs; log one run at a time"):
        log_to("mlflow", _table(runs=("0", "1")))
    with pytest.raises(ValueError, match=r"missing \['I_TY'\]"):
        log_to("mlflow", _table().drop(columns="I_TY"))
    with pytest.raises(TypeError, match="df_or_row must be a DataFrame"):
        log_to("mlflow", [1, 2])


class _Recording:
    """A stand-in TensorBoard writer that keeps what it is given (add_scalar/add_figure are the interface)."""

    def __init__(self):
        self.scalars, self.figures = [], []

    def add_scalar(self, tag, value, global_step=None):
        self.scalars.append((tag, value, global_step))

    def add_figure(self, tag, figure, global_step=None, close=True):
        self.figures.append((tag, global_step, len(figure.axes)))


def test_log_to_names_steps_and_epochs_filter():
    writer = _Recording()
    log_to(writer, _table(), epochs=[1])
    assert writer.scalars == [("infoplane/binning/a/I_XT", 2.0, 1), ("infoplane/binning/a/I_TY", 0.5, 1)]
    assert [f[:2] for f in writer.figures] == [("infoplane/binning/plane", 1)]  # the plane of all rows
    row_writer = _Recording()
    log_to(row_writer, _table().iloc[0])  # one row: scalars only
    assert len(row_writer.scalars) == 2 and row_writer.figures == []


# ------------------------------------------------------------------------------------------ dict probes
class _Keywords(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.act = nn.Tanh()

    def forward(self, *, features, scale):
        return self.act(self.lin(features) * scale)


def test_a_dict_probe_is_passed_by_keyword():
    torch.manual_seed(0)
    model = _Keywords()
    features, scale = torch.randn(10, 3), torch.full((10, 1), 2.0)
    out = infoplane.record(model, {"features": features, "scale": scale}, "act", batch_size=4)
    with torch.no_grad():
        expected = torch.tanh(model.lin(features) * 2.0).numpy()
    np.testing.assert_array_equal(out["act"], expected)
    with infoplane.Recorder(model, "act", {"features": features, "scale": scale}) as rec:
        rec.step(0)
    np.testing.assert_array_equal(rec.store.activations(0, "act"), expected)
    assert rec.store.metadata["probe_keys"] == ["features", "scale"]
    with pytest.raises(ValueError, match="a dict probe must map keyword names"):
        infoplane.record(model, {0: features}, "act")


# ------------------------------------------------------------------------------------------ one process
@pytest.mark.parametrize("mode", ["rank0", "gather"])
def test_distributed_recorder_in_one_process_is_a_recorder(mode, make_mlp):
    model, X = make_mlp(4, 3, 2), torch.randn(20, 4)
    rec = DistributedRecorder(model, "1", X, labels=np.arange(20) % 2, schedule=2, mode=mode)
    assert rec.is_writer and rec.world_size == 1
    assert [rec.step(e) for e in range(5)] == [True, False, True, False, True]
    assert rec.step(4) is False  # a repeated epoch is a no-op
    assert rec.store.epochs == [0, 2, 4]
    np.testing.assert_array_equal(rec.store.activations(4, "1"), infoplane.record(model, X, "1")["1"])
    with pytest.raises(ValueError, match="must not decrease"):
        rec.step(1)


def test_distributed_recorder_checks_its_arguments(make_mlp):
    with pytest.raises(ValueError, match="'mode' parameter of DistributedRecorder must be one of 'rank0', 'gather'"):
        DistributedRecorder(make_mlp(4, 3, 2), "1", torch.randn(4, 4), mode="all")
    with pytest.raises(KeyError, match=r"no module named '9'.*Available named_modules\(\) names: '0', '1', '2'"):
        DistributedRecorder(make_mlp(4, 3, 2), "9", torch.randn(4, 4))


def test_gather_shards_cover_the_rows_in_order():
    from infoplane.integrations.distributed import shard_bounds

    assert shard_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_bounds(1, 2) == [(0, 1), (1, 1)]  # a rank may get no rows

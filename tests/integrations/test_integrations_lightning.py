"""The Lightning callback against a hand-written loop with the Recorder (real Lightning, no mocks)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

import infoplane

pl = pytest.importorskip("lightning.pytorch")
pytest.importorskip("tensorboard")

pytestmark = pytest.mark.slow  # importing Lightning alone takes ~8 s here

LAYERS = ["act1", "act2"]


class Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(12, 6), nn.Tanh()
        self.fc2, self.act2 = nn.Linear(6, 4), nn.Tanh()
        self.fc3 = nn.Linear(4, 2)
        self.modes: list[bool] = []

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))

    def training_step(self, batch, batch_idx):
        self.modes.append(self.training)
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _data():
    X, y = infoplane.nets.load_szt(return_X_y=True)
    X, y = torch.as_tensor(X[::16]), torch.as_tensor(y[::16])  # 256 rows
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64, shuffle=False)
    return X, y, loader


def _trainer(tmp_path, max_epochs, callbacks, logger=False):
    return pl.Trainer(
        max_epochs=max_epochs, accelerator="cpu", devices=1, callbacks=callbacks, logger=logger,
        default_root_dir=tmp_path, enable_progress_bar=False, enable_model_summary=False,
    )


def _manual(path, epochs):
    """The same run by hand: same seed (same init), same batches in the same order, the Recorder."""
    X, y, loader = _data()
    torch.manual_seed(0)
    model = Module()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with infoplane.Recorder(model, LAYERS, X, labels=y, store=path) as rec:
        rec.step(0)
        for epoch in range(1, epochs + 1):
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
            rec.step(epoch)
    return infoplane.open_store(path)


def _assert_same_store(a, b):
    assert a.epochs == b.epochs
    assert a.layers == b.layers
    np.testing.assert_array_equal(a.labels, b.labels)
    for epoch in a.epochs:
        for layer in a.layers:
            np.testing.assert_array_equal(a.activations(epoch, layer), b.activations(epoch, layer))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Three epochs under Lightning with a TensorBoardLogger, a checkpoint per epoch and the binning plane."""
    tmp = tmp_path_factory.mktemp("pl")
    X, y, loader = _data()
    torch.manual_seed(0)
    module = Module()
    from infoplane.integrations.lightning import InformationPlaneCallback

    cb = InformationPlaneCallback(layers=LAYERS, probe=X, labels=y, store=tmp / "cb.zarr", estimators="binning")
    logger = pl.loggers.TensorBoardLogger(tmp / "tb", name="run", version=0)
    trainer = _trainer(tmp, 3, [cb], logger)
    trainer.fit(module, loader)
    return tmp, cb, module, trainer


def test_fit_writes_the_store_of_a_manual_recorder_run(fitted, tmp_path):
    tmp, cb, module, _ = fitted
    store = infoplane.open_store(tmp / "cb.zarr")
    assert store.epochs == [0, 1, 2, 3]
    _assert_same_store(store, _manual(tmp_path / "manual.zarr", 3))
    assert not np.array_equal(store.activations(0, "act2"), store.activations(3, "act2"))  # it trained
    assert module.modes and all(module.modes)  # the probe passes left the module in training mode


def test_scalars_and_figure_reach_tensorboard(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp, cb, _, _ = fitted
    events = EventAccumulator(str(tmp / "tb" / "run" / "version_0"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    df = cb.results
    for layer in LAYERS:
        for column in ("I_XT", "I_TY"):
            logged = events.Scalars(f"infoplane/binning/{layer}/{column}")
            assert [e.step for e in logged] == [0, 1, 2, 3]
            expected = df[df.layer == layer].sort_values("epoch")[column].to_numpy()
            np.testing.assert_allclose([e.value for e in logged], expected, rtol=1e-6)  # float32 in the file
    images = events.Images("infoplane/binning/plane")
    assert [e.step for e in images] == [0, 1, 2, 3]
    # 256 distinct inputs: I(T;X) of a binned layer is at most log2(256) = 8 bits.
    assert df["I_XT"].max() <= 8.0 + 1e-12


def test_resume_from_checkpoint_continues_the_same_store(fitted, tmp_path):
    tmp, _, _, trainer = fitted
    ckpt = trainer.checkpoint_callback.best_model_path
    assert ckpt.endswith("epoch=2-step=12.ckpt")
    X, y, loader = _data()
    from infoplane.integrations.lightning import InformationPlaneCallback

    # A copy of the store as it was at the checkpoint, so that the module fixture's store stays intact.
    shutil.copytree(tmp / "cb.zarr", tmp_path / "resumed.zarr")
    torch.manual_seed(123)  # a different init: the checkpoint's weights must win
    cb = InformationPlaneCallback(layers=LAYERS, probe=X, labels=y, store=tmp_path / "resumed.zarr")
    with pytest.raises(ValueError, match=r"epochs \[0, 1, 2, 3\] were recorded, but the store"):  # another store cannot continue it
        other = InformationPlaneCallback(layers=LAYERS, probe=X, labels=y, store=tmp_path / "other.zarr")
        _trainer(tmp_path, 5, [other]).fit(Module(), loader, ckpt_path=ckpt)
    _trainer(tmp_path, 5, [cb]).fit(Module(), loader, ckpt_path=ckpt)
    store = infoplane.open_store(tmp_path / "resumed.zarr")
    assert store.epochs == [0, 1, 2, 3, 4, 5]
    _assert_same_store(store, _manual(tmp_path / "manual5.zarr", 5))


def test_missing_layer_fails_at_setup_listing_names(tmp_path):
    from infoplane.integrations.lightning import InformationPlaneCallback

    X, y, loader = _data()
    cb = InformationPlaneCallback(layers=["act1", "act9"], probe=X, labels=y, store=tmp_path / "s.zarr")
    module = Module()
    with pytest.raises(KeyError, match=r"'act9'.*Available named_modules\(\) names: .*'fc1'"):
        _trainer(tmp_path, 3, [cb]).fit(module, loader)
    assert module.modes == []  # not one training step ran
    assert not (tmp_path / "s.zarr").exists()

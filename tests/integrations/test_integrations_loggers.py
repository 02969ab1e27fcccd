"""log_to with the real TensorBoard, MLflow (file store) and W&B (offline) libraries, files in tmp dirs."""
from __future__ import annotations

import numpy as np
import pytest

import infoplane
from infoplane.integrations import log_to

pytestmark = pytest.mark.slow  # each library takes seconds to import (W&B also starts its service)


@pytest.fixture(scope="module")
def plane():
    """A plane with known values: layer 'a' takes 2**e distinct codes at epoch e (I(T;X) = e bits)."""
    store = infoplane.MemoryStore()
    y = np.arange(16) % 2
    store.set_labels(y)
    for epoch in range(4):
        codes = (np.arange(16) % 2**epoch).astype(np.float32)
        store.write_epoch(epoch, {"a": codes[:, None], "b[0]": np.zeros((16, 1))})
    df = infoplane.information_plane(store, estimators={"bins": infoplane.estimators.BinningEstimator(bin_width=1.0)},
                                     progress=False)
    np.testing.assert_allclose(df[df.layer == "a"]["I_XT"], [0.0, 1.0, 2.0, 3.0], atol=1e-12)
    return df


def _expected(df, layer, column):
    return df[df.layer == layer].sort_values("epoch")[column].to_numpy()


def test_tensorboard_event_files_hold_the_scalars_and_figure(plane, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path)) as writer:
        log_to(writer, plane)
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    for layer in ("a", "b[0]"):
        for column in ("I_XT", "I_TY"):
            logged = events.Scalars(f"infoplane/bins/{layer}/{column}")
            assert [e.step for e in logged] == [0, 1, 2, 3]
            np.testing.assert_allclose([e.value for e in logged], _expected(plane, layer, column), atol=1e-6)
    assert [e.step for e in events.Images("infoplane/bins/plane")] == [3]


def test_mlflow_file_store_holds_the_scalars_and_figure(plane, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store in maintenance mode
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run_id = client.create_run(client.create_experiment("infoplane")).info.run_id
    log_to((client, run_id), plane)
    client.set_terminated(run_id)
    # A fresh client on the same directory reads what was written to disk.
    reader = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    history = sorted(reader.get_metric_history(run_id, "infoplane/bins/a/I_XT"), key=lambda m: m.step)
    assert [m.step for m in history] == [0, 1, 2, 3]
    np.testing.assert_allclose([m.value for m in history], [0.0, 1.0, 2.0, 3.0], atol=1e-12)
    # "b[0]" is not a valid MLflow name: logged as "b_0_".
    assert len(reader.get_metric_history(run_id, "infoplane/bins/b_0_/I_TY")) == 4
    artifacts = [a.path for a in reader.list_artifacts(run_id, "infoplane/bins/plane")]
    assert artifacts == ["infoplane/bins/plane/epoch_000003.png"]


def test_wandb_offline_run_holds_the_scalars(plane, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="infoplane-test", dir=str(tmp_path), mode="offline")
    try:
        run.log({"train/loss": 1.0})  # the run's own step moves on; infoplane's epochs have their own axis
        log_to(run, plane)
        assert run.summary["infoplane/bins/a/I_XT"] == pytest.approx(3.0)
        assert run.summary["infoplane/epoch"] == 3
        assert "infoplane/bins/plane" in run.summary.keys()
    finally:
        run.finish()
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))

"""Recorder / record: any nn.Module, hooks always come off, modes restored, schedules, resume after a kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from infoplane.recording import Layer, Recorder, Schedule, record, resolve_layers
from infoplane.store import MemoryStore, StoreLockedError, ZarrStore, open_store

REPO = Path(__file__).resolve().parents[2]


class Pair(nn.Module):
    """Returns a tuple: (features, their square)."""

    def forward(self, x):
        return x, x * x


class Heads(nn.Module):
    """Returns a dict of two linear heads."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.a = nn.Linear(d, 3)
        self.b = nn.Linear(d, 2)

    def forward(self, x):
        return {"a": self.a(x), "b": self.b(x)}


class GaussianHead(nn.Module):
    """Returns a torch.distributions.Normal over 2 units."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.mu = nn.Linear(d, 2)
        self.rho = nn.Linear(d, 2)

    def forward(self, x):
        return torch.distributions.Normal(self.mu(x), nn.functional.softplus(self.rho(x)) + 1e-3)


class MeanLogVar(nn.Module):
    """Returns a (mean, log-variance) tuple."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, 4)

    def forward(self, x):
        h = self.lin(x)
        return h[:, :2], h[:, 2:]


class ConvNet(nn.Module):
    """A small custom model (not from infoplane.nets): conv, BN, dropout, linear and odd outputs."""

    def __init__(self, fail_at: str | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU(inplace=True)  # overwrites bn's output in place: the recorder must have copied it
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(3 * 4 * 4, 6)
        self.pair = Pair()
        self.heads = Heads(6)
        self.gauss = GaussianHead(6)
        self.mlv = MeanLogVar(6)
        self.unused = nn.Linear(6, 6)
        self.fail_at = fail_at

    def forward(self, x):
        h = self.relu(self.bn(self.conv(x)))
        if self.fail_at == "after_conv":
            raise RuntimeError("boom mid-forward")
        h = self.fc(self.drop(h.flatten(1)))
        h, _ = self.pair(h)
        out = self.heads(h)
        self.gauss(h)
        self.mlv(h)
        return out["a"]


def make_model(seed: int = 0, **kw) -> ConvNet:
    torch.manual_seed(seed)
    model = ConvNet(**kw)
    with torch.no_grad():  # non-trivial running statistics so eval-mode BN differs from train mode
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model


X = np.random.default_rng(1).normal(size=(37, 1, 4, 4)).astype(np.float32)  # 37: batches don't divide it
Y = np.arange(37) % 3


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def modes(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


# ------------------------------------------------------------------------------------------ capture
def test_custom_model_conv_tuple_dict_and_gaussian_outputs_match_a_manual_forward():
    model = make_model()
    layers = [
        "conv", "bn", "fc", Layer("pair", output=1), Layer("heads", output="a"), Layer("heads", output="b", name="hb"),
        "gauss",
        Layer("mlv", gaussian=True),
    ]
    got = record(model, X, layers, batch_size=8)
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(X)
        conv = model.conv(x)
        bn = model.bn(conv)
        fc = model.fc(torch.relu(bn).flatten(1))
        dist = model.gauss(fc)
        mlv = model.mlv.lin(fc)
    # Tolerance: batch 8 vs batch 37 may change float32 summation order (~1 ulp); 1e-6 absolute is far below.
    close = dict(rtol=0, atol=1e-6)
    assert got["conv"].shape == (37, 3 * 4 * 4) and got["conv"].dtype == np.float32  # (N, C·H·W)
    np.testing.assert_allclose(got["conv"], conv.reshape(37, -1).numpy(), **close)
    np.testing.assert_allclose(got["bn"], bn.reshape(37, -1).numpy(), **close)  # eval-mode BN, pre-ReLU
    assert (got["bn"] < 0).any()  # the in-place ReLU after bn did not reach the stored copy
    np.testing.assert_allclose(got["fc"], fc.numpy(), **close)
    np.testing.assert_allclose(got["pair[1]"], (fc * fc).numpy(), **close)
    np.testing.assert_allclose(got["heads['a']"], model.heads.a(fc).detach().numpy(), **close)
    np.testing.assert_allclose(got["hb"], model.heads.b(fc).detach().numpy(), **close)
    assert set(got["gauss"]) == {"mu", "log_var"}  # a Normal output is Gaussian without being declared
    np.testing.assert_allclose(got["gauss"]["mu"], dist.loc.numpy(), **close)
    np.testing.assert_allclose(got["gauss"]["log_var"], 2 * np.log(dist.scale.numpy()), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["mlv"]["mu"], mlv[:, :2].numpy(), **close)
    np.testing.assert_allclose(got["mlv"]["log_var"], mlv[:, 2:].numpy(), **close)


def test_gaussian_std_and_var_parameterisations():
    model = make_model()
    log_var = record(model, X, Layer("mlv", gaussian=True))["mlv"]["log_var"]

    class Std(nn.Module):
        def forward(self, x):
            return x, torch.exp(0.5 * x)

    seq = nn.Sequential(nn.Linear(16, 3), Std())
    flat = X.reshape(37, 16)
    lin = seq[0](torch.from_numpy(flat)).detach().numpy()
    std = record(seq, flat, Layer("1", gaussian="std"))["1"]
    np.testing.assert_allclose(std["log_var"], lin, atol=1e-5)  # 2 ln(exp(x/2)) = x
    assert log_var.shape == (37, 2)


def test_selection_by_glob_type_module_and_layer_specs():
    model = make_model()
    names = [r.name for r in resolve_layers(model, ["heads.*", nn.Conv2d, model.fc, "fc"])]
    assert names == ["heads.a", "heads.b", "conv", "fc"]  # glob in module order; duplicates dropped
    # An output element is a Layer spec; its stored name shows the selector. A string is a name or a glob.
    assert [r.name for r in resolve_layers(model, [Layer("pair", output=1), Layer(model.heads, output="a")])] == [
        "pair[1]", "heads['a']"]
    with pytest.raises(ValueError, match=r"pattern 'pair\[1\]' matched no module.*Layer\(name, output=\.\.\.\)"):
        resolve_layers(model, "pair[1]")
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2), nn.Tanh())
    assert [r.name for r in resolve_layers(seq, "[!02]")] == ["1", "3"]
    assert [r.name for r in resolve_layers(seq, nn.Tanh)] == ["1", "3"]


def test_hooks_removed_and_modes_restored_after_a_forward_that_raises():
    model = make_model(fail_at="after_conv")
    model.train()
    model.bn.eval()  # nested, individually set modes must come back exactly
    before = modes(model)
    with pytest.raises(RuntimeError, match="boom mid-forward"):
        record(model, X, ["conv", "fc"])
    assert all_hooks(model) == 0
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    assert modes(model) == before
    rec = Recorder(model, ["conv", "fc"], X)
    with pytest.raises(RuntimeError, match="boom"):
        rec.step(0)
    assert all_hooks(model) == 0 and modes(model) == before and rec.epochs == []


def test_a_failed_forward_is_re_raised_from_the_original_with_epoch_and_layers():
    model = make_model(fail_at="after_conv")
    rec = Recorder(model, ["conv", "fc"], X, batch_size=10)
    with pytest.raises(RuntimeError) as info:
        rec.step(7)
    msg = str(info.value)
    assert "at epoch 7" in msg and "probe rows 0:10" in msg and "boom mid-forward" in msg
    assert "fired in this batch: ['conv']" in msg and "not reached: ['fc']" in msg
    assert isinstance(info.value.__cause__, RuntimeError) and str(info.value.__cause__) == "boom mid-forward"
    with pytest.raises(RuntimeError, match=r"in record\(\) \(no epoch\)") as info:
        record(model, X, ["conv", "fc"])
    assert info.value.__cause__ is not None
    # An output the hook cannot store keeps its own error (naming the layer), with the epoch as a note.
    with pytest.raises(TypeError, match=r"layer 'pair'") as info:
        Recorder(make_model(), "pair", X).step(3)
    assert any("at epoch 3" in note and "fired in this batch: ['pair']" in note for note in info.value.__notes__)


def test_hooks_only_during_the_probe_pass_and_state_untouched():
    model = make_model()
    model.train()
    model.drop.eval()
    before = modes(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with Recorder(model, ["conv", "fc"], X, schedule=Schedule.every(2)) as rec:
        assert all_hooks(model) == 0  # nothing attached between recordings
        assert rec.step(0) is True
        assert all_hooks(model) == 0 and modes(model) == before
        assert torch.equal(torch.rand(3), expected_next)  # the probe pass did not consume the RNG stream
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k  # eval mode: BN running stats not updated


def test_recorded_values_are_float32_numpy_on_cpu_without_gradients():
    model = make_model()
    out = record(model, torch.from_numpy(X).double(), "fc", device="cpu")  # float64 probe -> model dtype
    assert isinstance(out["fc"], np.ndarray) and out["fc"].dtype == np.float32
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------------------------------ schedules
def test_schedules():
    every3 = Schedule.every(3, start=1, stop=10)
    assert every3.epochs_until(100) == [1, 4, 7, 10] and 4 in every3 and 5 not in every3
    log = Schedule.log_spaced(1000, 50)
    epochs = log.epochs_until(1000)
    assert epochs[0] == 0 and epochs[-1] == 1000 and len(epochs) <= 50
    assert epochs[:5] == [0, 1, 2, 3, 4]  # dense early ...
    assert np.all(np.diff(epochs)[-5:] > 50)  # ... sparse late
    assert Schedule.log_spaced(5, 100).epochs_until(5) == [0, 1, 2, 3, 4, 5]
    explicit = Schedule.explicit([5, 1, 5, 0])
    assert explicit.epochs == (0, 1, 5)
    union = Schedule.every(10) | Schedule.explicit([999])
    assert union.epochs_until(1000)[-3:] == [990, 999, 1000]
    for s in (every3, log, explicit, union):
        assert Schedule.from_dict(s.to_dict()).epochs_until(1000) == s.epochs_until(1000)
    assert Schedule.coerce(4).epochs_until(9) == [0, 4, 8]
    assert Schedule.coerce([3, 2]).epochs == (2, 3)
    assert Schedule.coerce(None).epochs_until(3) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="'k' parameter of Schedule.every must be an int >= 1"):
        Schedule.every(0)
    with pytest.raises(ValueError, match="'epochs' parameter of Schedule.explicit"):
        Schedule.explicit([1, -2])
    with pytest.raises(ValueError, match="'schedule' parameter of Recorder"):
        Schedule.coerce("often")


@pytest.mark.parametrize(
    "schedule, expected",
    [
        (Schedule.every(4), [0, 4, 8, 12]),
        (Schedule.log_spaced(13, 6), Schedule.log_spaced(13, 6).epochs_until(13)),
        ([0, 2, 13], [0, 2, 13]),
    ],
)
def test_recorder_records_exactly_the_scheduled_epochs_with_train(schedule, expected):
    from infoplane.nets import SZTNet, train

    rng = np.random.default_rng(0)
    Xs = rng.integers(0, 2, size=(64, 12)).astype(np.float32)
    ys = rng.integers(0, 2, size=64)
    model = SZTNet(seed=0)
    with Recorder(model, model.layer_names, Xs, labels=ys, schedule=schedule) as rec:
        train(model, Xs, ys, epochs=13, batch_size=32, progress=False, callback=rec.step)
    assert rec.epochs == expected == rec.recorded
    assert Schedule.from_dict(rec.store.metadata["schedule"]).epochs_until(13) == expected
    assert rec.store.metadata["epochs"] == expected
    assert np.array_equal(rec.store.labels, ys)
    p = rec.store.activations(expected[-1], "softmax")
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)  # the softmax hook sees probabilities


def test_step_epoch_rules():
    model = make_model()
    rec = Recorder(model, "fc", X)
    assert rec.step(0) and not rec.step(0)  # a repeated epoch is a no-op
    assert rec.step(2)
    with pytest.raises(ValueError, match="must not decrease: got 1 after 2"):
        rec.step(1)
    with pytest.raises(ValueError, match="'epoch' parameter of Recorder.step must be an int >= 0"):
        rec.step(-1)
    rec2 = Recorder(model, "fc", X, schedule=[5], store=rec.store, on_existing="raise")
    assert not rec2.step(3) and rec2.step(3, force=True) is False  # repeated epoch, even forced
    with pytest.raises(ValueError, match="epoch 2 is already in the store"):
        Recorder(model, "fc", X, schedule=1, store=rec.store, on_existing="raise").step(2)
    rec3 = Recorder(model, "fc", X, schedule=1, store=rec.store)
    with pytest.warns(UserWarning, match="epoch 2 is already in the store"):
        assert rec3.step(2) is False and rec3.skipped == [2]
    assert rec3.step(4, force=True) and rec.store.epochs == [0, 2, 4]


# ------------------------------------------------------------------------------------------ bad input
def test_unknown_layer_lists_named_modules_closest_first():
    model = make_model()
    with pytest.raises(KeyError, match=r"no module named 'fcc'.*Closest: 'fc'.*'heads.a'"):
        Recorder(model, ["conv", "fcc"], X)
    with pytest.raises(KeyError, match="not a submodule"):
        record(model, X, nn.Linear(2, 2))


def test_empty_selections():
    model = make_model()
    with pytest.raises(ValueError, match=r"pattern 'block\*' matched no module \(empty selection\)"):
        record(model, X, "block*")
    with pytest.raises(ValueError, match="at least one module"):
        record(model, X, [])
    with pytest.raises(ValueError, match="no submodule of type LSTM"):
        record(model, X, nn.LSTM)


def test_layer_that_never_fired_is_named():
    model = make_model()
    with pytest.raises(RuntimeError, match=r"\['unused'\] never fired"):
        record(model, X, ["fc", "unused"])
    assert all_hooks(model) == 0


def test_probe_label_mismatch_and_bad_probes():
    model = make_model()
    with pytest.raises(ValueError, match="probe has 37 rows, labels has 36"):
        Recorder(model, "fc", X, labels=Y[:-1])
    with pytest.raises(ValueError, match="probe contains NaN or Inf"):
        record(model, np.full_like(X, np.nan), "fc")
    with pytest.raises(TypeError, match="probe must be a numeric array"):
        record(model, np.array(["a", "b"]), "fc")
    with pytest.raises(ValueError, match="'batch_size' parameter of Recorder"):
        Recorder(model, "fc", X, batch_size=0)


def test_nan_activations_name_epoch_layer_and_count():
    model = nn.Sequential(nn.Linear(16, 6), nn.Tanh(), nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight[2, 0] = float("nan")  # one unit goes NaN for every row: 37 of 37 x 6 values
    rec = Recorder(model, ["0", "2"], X.reshape(37, 16))
    with pytest.raises(ValueError, match=r"activations of layer '0' at epoch 7 contain NaN \(37 of 222 values\)"):
        rec.step(7)
    assert rec.epochs == [] and all_hooks(model) == 0


def test_outputs_that_need_a_selector_or_are_misused():
    model = make_model()
    with pytest.raises(TypeError, match=r"layer 'pair'.*tuple.*Layer\('pair', output=0"):
        record(model, X, "pair")
    with pytest.raises(IndexError, match=r"tuple of 2 elements; cannot take \[2\]"):
        record(model, X, Layer("pair", output=2))
    with pytest.raises(KeyError, match=r"dict without key"):
        record(model, X, Layer("heads", output="c"))
    with pytest.raises(TypeError, match="declared gaussian"):
        record(model, X, Layer("fc", gaussian=True))
    with pytest.raises(ValueError, match="'gaussian' parameter of Layer"):
        Layer("fc", gaussian="sigma")

    relu = nn.ReLU()
    reused = nn.Sequential(nn.Linear(16, 4), relu, nn.Linear(4, 4), relu)
    with pytest.raises(ValueError, match=r"layer '1' .* ran 2 times in one forward pass"):
        record(reused, X.reshape(37, 16), "1")


# ------------------------------------------------------------------------------------------ stores
def test_recorder_to_zarr_resumes_and_checks_compatibility(tmp_path):
    path = tmp_path / "run.zarr"
    model = make_model()
    with Recorder(model, ["conv", "gauss"], X, labels=Y, schedule=Schedule.every(2), store=path) as rec:
        for epoch in range(5):
            rec.step(epoch)
        with pytest.raises(StoreLockedError, match="already open for writing"):
            Recorder(model, ["conv", "gauss"], X, store=path)
    assert open_store(path).epochs == [0, 2, 4]
    # schedule=None keeps the stored schedule; stored epochs are skipped, new ones appended
    with Recorder(model, ["conv", "gauss"], X, labels=Y, store=path) as rec:
        assert rec.schedule.to_dict() == Schedule.every(2).to_dict()
        with pytest.warns(UserWarning, match="epoch 4 is already in the store"):
            for epoch in range(4, 9):
                rec.step(epoch)
        assert rec.skipped == [4] and rec.recorded == [6, 8]
    store = open_store(path)
    assert store.epochs == [0, 2, 4, 6, 8] and store.layer_kind("gauss") == "gaussian"
    meta = store.metadata
    assert meta["n_probe"] == 37 and meta["layer_specs"][0]["module_type"] == "Conv2d"
    assert "ConvNet" in meta["model_class"] and meta["model_repr"].startswith("ConvNet(")
    with pytest.raises(ValueError, match="differ from the layers already in the store"):
        Recorder(model, ["conv"], X, store=path)
    with pytest.raises(ValueError, match="probe differs"):
        Recorder(model, ["conv", "gauss"], X + 1, store=path)
    with pytest.raises(ValueError, match="labels differ"):
        Recorder(model, ["conv", "gauss"], X, labels=(Y + 1) % 3, store=path)
    ZarrStore(path, "a").close()  # every failed recorder released the lock


def test_recorder_with_a_given_store_object_leaves_it_open():
    store = MemoryStore()
    with Recorder(make_model(), "fc", X, store=store) as rec:
        rec.step(0)
    store.write_epoch(1, {"fc": store.activations(0, "fc")})
    assert store.epochs == [0, 1]


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time, pathlib
    import numpy as np, torch
    from infoplane.recording import Recorder
    from infoplane.store import ZarrStore

    path, ready, mode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
    X = np.random.default_rng(0).normal(size=(2000, 4)).astype(np.float32)
    store = ZarrStore(path, "a")
    commit = store._commit
    if mode == "loop":  # a plain writer, killed at whatever point of its writes
        from infoplane.recording import record
        data = record(model, X, ["0", "1", "2"])
        for epoch in range(10_000):
            store.write_epoch(epoch, data)
            if epoch == 2:
                ready.write_text("2")

    def commit_or_hang():
        if mode == "hang" and 3 in store._epochs:  # epoch 3's arrays are on disk, not yet committed
            ready.write_text("3")
            time.sleep(120)
        commit()

    store._commit = commit_or_hang
    with Recorder(model, ["0", "1", "2"], X, store=store) as rec:
        for epoch in range(10_000):
            rec.step(epoch)
    """
)


def _run_and_kill(tmp_path: Path, mode: str) -> tuple[Path, subprocess.Popen]:
    path, ready = tmp_path / "killed.zarr", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(path), str(ready), mode], env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"recording subprocess ended early (rc={proc.returncode})")
        time.sleep(0.02)
    if mode == "loop":
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return path, proc


def _expected(X_seed: int = 0) -> dict[str, np.ndarray]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
    X = np.random.default_rng(X_seed).normal(size=(2000, 4)).astype(np.float32)
    return model, X, record(model, X, ["0", "1", "2"])


@pytest.mark.slow  # a subprocess killed mid-write
def test_sigkill_mid_epoch_leaves_completed_epochs_and_resume_continues(tmp_path):
    path, _ = _run_and_kill(tmp_path, "hang")
    assert (path / "epochs" / "e000003").is_dir()  # the killed epoch's arrays were written ...
    assert (path / "infoplane.lock").exists()  # ... and the dead writer's lock file was left behind
    store = open_store(path)
    assert store.epochs == [0, 1, 2]  # ... but only committed epochs are visible
    model, X, expected = _expected()
    for epoch in store.epochs:
        for layer in ("0", "1", "2"):
            np.testing.assert_array_equal(store.activations(epoch, layer), expected[layer])
    with pytest.raises(KeyError, match="epoch 3 is not in the store"):
        store.activations(3, "1")
    # The kernel released the dead writer's lock: a new Recorder drops the partial epoch and resumes.
    with Recorder(model, ["0", "1", "2"], X, store=path) as rec, pytest.warns(UserWarning, match="already in"):
        for epoch in range(6):
            rec.step(epoch)
        assert rec.skipped == [0, 1, 2] and rec.recorded == [3, 4, 5]
    store = open_store(path)
    assert store.epochs == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(store.activations(3, "2"), expected["2"])


@pytest.mark.slow  # a subprocess killed mid-write
def test_sigkill_at_a_random_point_never_exposes_a_broken_epoch(tmp_path):
    path, _ = _run_and_kill(tmp_path, "loop")
    store = open_store(path)
    assert store.epochs[:3] == [0, 1, 2] and store.epochs == list(range(len(store.epochs)))
    _, _, expected = _expected()
    for epoch in store.epochs:
        for layer in ("0", "1", "2"):
            np.testing.assert_array_equal(store.activations(epoch, layer), expected[layer])
    with ZarrStore(path, "a") as resumed:  # resuming cleans up whatever was in flight
        on_disk = sorted(int(p.name[1:]) for p in (path / "epochs").iterdir() if p.name.startswith("e"))
        assert on_disk == resumed.epochs

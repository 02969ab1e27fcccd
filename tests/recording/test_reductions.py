"""Bounded recording: pooling, unit subsets, seeded random projection and float16 storage inside the hook."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from infoplane.estimators import KDEEstimator
from infoplane.recording import Layer, Recorder, record
from infoplane.recording._reductions import jl_epsilon, projection_kde_bracket
from infoplane.store import ZarrStore


class Conv(nn.Module):
    def __init__(self, channels: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.act = nn.Tanh()
        self.fc = nn.Linear(channels * 25, 3)

    def forward(self, x):
        h = self.act(self.conv(x))
        return self.fc(h.flatten(1))


def _probe(n=64, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 1, 5, 5)).astype(np.float32))


def test_pool_units_project_values_and_conventions():
    model, x = Conv(), _probe()
    full = model.act(model.conv(x)).detach()  # (64, 4, 5, 5)
    out = record(model, x, [Layer("act", name="g", pool="global"), Layer("act", name="p2", pool=2),
                            Layer("act", name="u", units=[3, 0, 99]), Layer("act", name="r", project=7, seed=5)])
    np.testing.assert_allclose(out["g"], full.mean(dim=(2, 3)).numpy(), rtol=1e-6, atol=1e-7)
    # pool=2 on 5x5: adaptive windows to ceil(5/2) = 3 per side; the corner window is rows/cols 0-1.
    assert out["p2"].shape == (64, 4 * 9)
    np.testing.assert_allclose(out["p2"][:, 0], full[:, 0, :2, :2].mean(dim=(1, 2)).numpy(), rtol=1e-6, atol=1e-7)
    flat = full.reshape(64, -1).numpy()
    np.testing.assert_array_equal(out["u"], flat[:, [3, 0, 99]])
    # The documented matrix: torch.Generator().manual_seed(seed), randn(d, k) / sqrt(k).
    r = torch.randn(100, 7, generator=torch.Generator().manual_seed(5)) / math.sqrt(7)
    np.testing.assert_allclose(out["r"], flat @ r.numpy(), rtol=1e-5, atol=1e-5)
    # Recorder defaults fill what a Layer leaves unset; the store's metadata says what was done.
    rec = Recorder(model, ["act", Layer("conv", name="c", project=3)], x, pool="global", project=2, seed=1)
    rec.step(0)
    red = rec.store.metadata["reductions"]
    assert red["act"]["project"] == 2 and red["act"]["pool"] == "global average per channel"
    assert red["c"]["project"] == 3 and red["c"]["seed"] == 1 and red["c"]["dtype"] == "float32"
    assert "N(0, 1/3)" in red["c"]["projection"]
    assert rec.store.activations(0, "act").shape == (64, 2)
    assert rec.store.metadata["layer_specs"][0]["reduction"] == red["act"]


def test_projection_and_pooling_deterministic_under_a_seed():
    model, x = Conv(), _probe()
    a = record(model, x, Layer("act", pool=2, project=5, seed=11))["act"]
    b = record(model, x, Layer("act", pool=2, project=5, seed=11))["act"]
    c = record(model, x, Layer("act", pool=2, project=5, seed=12))["act"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Batching does not change the projection (one matrix per layer, built once).
    d = record(model, x, Layer("act", pool=2, project=5, seed=11), batch_size=7)["act"]
    np.testing.assert_allclose(a, d, rtol=1e-5, atol=1e-6)


def test_float16_storage_round_trips_within_float16_precision(tmp_path):
    model, x = Conv(), _probe()
    exact = record(model, x, "act")["act"]
    with Recorder(model, Layer("act", dtype="float16"), x, store=tmp_path / "r.zarr") as rec:
        rec.step(0)
        rec.step(1)
    with ZarrStore(tmp_path / "r.zarr") as store:
        back = store.activations(1, "act")
        assert back.dtype == np.float32 and store.metadata["reductions"]["act"]["dtype"] == "float16"
    # Exactly the float16 rounding of the float32 values: relative error <= 2**-11 (half an ulp).
    np.testing.assert_array_equal(back, exact.astype(np.float16).astype(np.float32))
    assert np.max(np.abs(back - exact) / np.maximum(np.abs(exact), 6.1e-5)) <= 2.0**-11
    disk = sum(p.stat().st_size for p in (tmp_path / "r.zarr").rglob("*") if p.is_file() and "l000" in str(p))
    assert disk > 0


def test_projected_kde_bounds_within_the_stated_jl_bracket():
    # A fixed case: 200 inputs through a 512-unit tanh layer, projected to k = 256.
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(20, 512), nn.Tanh())
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(200, 20)).astype(np.float32))
    y = np.arange(200) % 2
    out = record(model, x, [Layer("1", name="full"), Layer("1", name="proj", project=256, seed=0)])
    h, z = out["full"].astype(np.float64), out["proj"].astype(np.float64)
    iu = np.triu_indices(200, 1)
    d_full = ((h[:, None] - h[None]) ** 2).sum(-1)[iu]
    d_proj = ((z[:, None] - z[None]) ** 2).sum(-1)[iu]
    eps = float(np.abs(d_proj / d_full - 1).max())  # the realised distortion of this seed
    assert eps <= jl_epsilon(200, 256) < 1  # Dasgupta-Gupta's guarantee (probability >= 1 - 1/N) holds here
    var = 15.0  # I_XT between 2.5 and 6.9 bits for both bounds: a non-trivial case
    for bound in ("upper", "lower"):
        proj = KDEEstimator(var, bound).estimate(z, y).I_XT
        lo_var, hi_var = projection_kde_bracket(var, eps)
        lo = KDEEstimator(hi_var, bound).estimate(h, y).I_XT  # more noise, less information
        hi = KDEEstimator(lo_var, bound).estimate(h, y).I_XT
        full = KDEEstimator(var, bound).estimate(h, y).I_XT
        assert lo - 1e-6 <= proj <= hi + 1e-6, (bound, lo, proj, hi)
        assert 0.5 < full < math.log2(200) - 0.5  # a non-trivial case: neither saturated nor zero
        # The stated tolerance: the bracket's width (here, in bits).
        assert abs(proj - full) <= hi - lo


_MEMORY_PROBE = """
import torch
from torch import nn
from infoplane import Layer, record

def kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU())
x = torch.zeros(3000, 1, 28, 28).normal_()
record(model, x[:10], Layer("1", pool="global"), batch_size=100)  # warm-up: kernels, allocator
before = kib("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
out = record(model, x, Layer("1", pool="global"), batch_size=100)
assert tuple(out["1"].shape) == (3000, 32)
print((kib("VmHWM") - before) / 1024)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (peak RSS)")
def test_probe_pass_memory_bounded_by_one_batch():
    # Full output: 3,000 x 32 x 28 x 28 float32 = 301 MB; with pool="global" the recording is 3,000 x 32.
    # Measured in a fresh process: inside the suite, the allocator's state left by earlier tests (and their
    # threads) moves the peak, and the test must not depend on what ran before it.
    import subprocess

    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, timeout=300,
                          check=True)
    extra_mb = float(done.stdout.strip().splitlines()[-1])
    # One batch's full output is 10 MB (the conv and the ReLU each hold one): far below the 301 MB of all.
    assert extra_mb < 100, extra_mb


@pytest.mark.parametrize(
    "spec, match",
    [
        (dict(project=0), r"'project' parameter of Layer must be an int >= 1. Got 0"),
        (dict(pool=0), r"'pool' parameter of Layer must be 'global' or an int k >= 1"),
        (dict(pool="max"), r"'pool' parameter of Layer must be 'global' or an int k >= 1"),
        (dict(dtype="int8"), r"'dtype' parameter of Layer must be one of 'float32', 'float16'. Got 'int8'"),
        (dict(units=[]), r"'units' parameter of Layer must be a non-empty 1-D sequence"),
        (dict(units=[1, 1]), r"'units' parameter of Layer must be distinct unit indices"),
    ],
)
def test_bad_reductions_named_at_construction(spec, match):
    with pytest.raises(ValueError, match=match):
        Layer("fc", **spec)


def test_bad_reductions_named_at_recording():
    model, x = Conv(), _probe(8)
    with pytest.raises(ValueError, match=r"'project' parameter of Layer 'fc' must be at most the layer's width 3"):
        record(model, x, Layer("fc", project=4))
    with pytest.raises(ValueError, match=r"'pool' parameter of Layer 'fc' needs a spatial output.*\(8, 3\)"):
        record(model, x, Layer("fc", pool="global"))
    with pytest.raises(ValueError, match=r"'units' parameter of Layer 'fc' must index the layer's 3 units"):
        record(model, x, Layer("fc", units=[0, 5]))
    with pytest.raises(ValueError, match=r"'dtype' parameter of Recorder must be one of"):
        Recorder(model, "fc", x, dtype="bfloat16")
    big = nn.Sequential(nn.Linear(1, 1))
    with torch.no_grad():
        big[0].weight.fill_(1e5)
    with pytest.raises(ValueError, match=r"dtype='float16' cannot hold its values"):
        record(big, torch.ones(4, 1), Layer("0", dtype="float16"))

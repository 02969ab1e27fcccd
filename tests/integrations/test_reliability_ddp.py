"""DDP gather refuses shards that do not belong together (issue 21): real gloo processes on the CPU.

Before: a rank that skipped ``step(1)`` had its epoch-2 shard stored as epoch 1; a rank holding another probe of
the same shape was merged unchecked; mismatched layer widths raised numpy's concatenate message.
"""
from __future__ import annotations

import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import infoplane
from infoplane.integrations import DistributedRecorder

pytestmark = pytest.mark.slow

WORLD = 2
N = 40


def _net(width: int = 6) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, width), nn.Tanh(), nn.Linear(width, 3), nn.Tanh())


def _attempt(tmp: Path, name: str, rank: int, action) -> None:
    try:
        action()
        (tmp / f"{name}.rank{rank}.txt").write_text("ok")
    except Exception as exc:  # what the rank saw, for the test to read
        (tmp / f"{name}.rank{rank}.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


def _worker(rank: int, world: int, tmp: str) -> None:
    tmp = Path(tmp)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp / 'rendezvous'}", rank=rank, world_size=world)
    try:
        X = torch.as_tensor(np.random.default_rng(0).normal(size=(N, 5)).astype(np.float32))
        y = torch.arange(N) % 3

        # 1. rank 1 skips step(1): its epoch-2 shard must not be stored as epoch 1.
        rec = DistributedRecorder(_net(), ["1", "3"], X, labels=y, store=tmp / "skip.zarr", mode="gather")
        rec.step(0)
        _attempt(tmp, "skip", rank, lambda: rec.step(1 if rank == 0 else 2))
        rec.close()
        dist.barrier()

        # 2. rank 1 holds another probe of the same shape.
        probe = X if rank == 0 else X + 1
        rec = DistributedRecorder(_net(), ["1", "3"], probe, labels=y, store=tmp / "probe.zarr", mode="gather")
        _attempt(tmp, "probe", rank, lambda: rec.step(0))
        rec.close()
        dist.barrier()

        # 3. rank 1's model has another width for layer "1".
        rec = DistributedRecorder(_net(6 if rank == 0 else 7), ["1", "3"], X, labels=y, store=tmp / "width.zarr",
                                  mode="gather")
        _attempt(tmp, "width", rank, lambda: rec.step(0))
        rec.close()
        dist.barrier()

        # 4. and the honest case still records, in row order.
        rec = DistributedRecorder(_net(), ["1", "3"], X, labels=y, store=tmp / "ok.zarr", mode="gather")
        _attempt(tmp, "ok", rank, lambda: [rec.step(e) for e in (0, 1)])
        rec.close()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _spawn(tmp: Path, timeout: float = 240.0) -> None:
    ctx = mp.spawn(_worker, args=(WORLD, str(tmp)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=2):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the {WORLD} gloo processes did not finish within {timeout} s (a rank hung)")


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    _spawn(tmp)
    return tmp


def _seen(tmp: Path, name: str) -> list[str]:
    return [(tmp / f"{name}.rank{r}.txt").read_text() for r in range(WORLD)]


def test_a_rank_that_skipped_an_epoch_is_refused_on_every_rank(attacked):
    for text in _seen(attacked, "skip"):
        assert text.startswith("ValueError"), text
        assert "rank 1" in text and "epoch 2" in text and "epoch 1" in text, text
    assert infoplane.open_store(attacked / "skip.zarr").epochs == [0]


def test_a_rank_with_another_probe_is_refused_on_every_rank(attacked):
    for text in _seen(attacked, "probe"):
        assert text.startswith("ValueError"), text
        assert "rank 1" in text and "probe" in text and "fingerprint" in text, text
    assert infoplane.open_store(attacked / "probe.zarr").epochs == []


def test_a_rank_with_another_layer_width_is_refused_naming_the_rank_and_layer(attacked):
    for text in _seen(attacked, "width"):
        assert text.startswith("ValueError"), text
        assert "rank 1" in text and "layer '1'" in text and "7" in text and "6" in text, text
        assert "concatenat" not in text.split("\n")[0]
    assert infoplane.open_store(attacked / "width.zarr").epochs == []


def test_honest_ranks_still_record(attacked):
    assert _seen(attacked, "ok") == ["ok", "ok"]
    store = infoplane.open_store(attacked / "ok.zarr")
    assert store.epochs == [0, 1]
    X = np.random.default_rng(0).normal(size=(N, 5)).astype(np.float32)
    expected = torch.tanh(_net()[0](torch.as_tensor(X))).detach().numpy()
    np.testing.assert_allclose(store.activations(0, "1"), expected, atol=1e-6)

"""Shared test fixtures: a seeded random generator, small toy models, and figures closed after every test.

Helpers that a test module needs at import time or in a subprocess (a worker cannot receive a fixture) stay
in that module.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh `numpy.random.Generator` seeded with 0: every test draws the same numbers on every run."""
    return np.random.default_rng(0)


@pytest.fixture
def make_mlp() -> Callable[..., object]:
    """``make_mlp(4, 3, 2)``: a seeded ``nn.Sequential`` of Linear layers with Tanh between them.

    The modules are named "0", "1", "2", ... as in any ``nn.Sequential`` (odd names: the Tanh layers).
    ``seed`` (default 0) seeds torch before the weights are drawn.
    """

    def make(*sizes: int, seed: int = 0):
        import torch
        from torch import nn

        if len(sizes) < 2:
            raise ValueError(f"make_mlp needs at least an input and an output size. Got {sizes}.")
        torch.manual_seed(seed)
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            modules += [nn.Linear(a, b)] + ([nn.Tanh()] if i < len(sizes) - 2 else [])
        return nn.Sequential(*modules)

    return make


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Close every Matplotlib figure a test left open (only when pyplot was imported: no import cost)."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")

"""The subject of study: reference networks, data sets, the training loop, noise, VIB β sweeps.

Nothing else in infoplane needs this folder: the recorder attaches to any model and any training loop.
"""
from __future__ import annotations

from .._core.noise_specs import GaussianDropout, GaussianNoise, noise_from_dict
from ._datasets import (
    load_digits,
    load_digits_augmented,
    load_idx,
    load_mnist_idx,
    load_szt,
    szt_label_rule,
    train_test_split,
)
from ._models import (
    ACTIVATIONS,
    ConvNet,
    GaussianEncoder,
    SZTNet,
    VIBClassifier,
    VIBOutput,
    VIBRegressor,
    accuracy,
    make_activation,
    mlp,
    train,
)
from ._noise import PropagatedLayer, add_noise, sample_propagation
from ._sweeps import beta_sweep

__all__ = [
    "SZTNet",
    "ConvNet",
    "GaussianEncoder",
    "VIBClassifier",
    "VIBRegressor",
    "VIBOutput",
    "mlp",
    "make_activation",
    "ACTIVATIONS",
    "train",
    "accuracy",
    "load_szt",
    "load_digits",
    "load_digits_augmented",
    "load_idx",
    "load_mnist_idx",
    "train_test_split",
    "szt_label_rule",
    "add_noise",
    "GaussianNoise",
    "GaussianDropout",
    "noise_from_dict",
    "sample_propagation",
    "PropagatedLayer",
    "beta_sweep",
]

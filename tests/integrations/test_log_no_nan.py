"""log_to (and so the Lightning and Hugging Face callbacks) logs no NaN scalar and no empty plane image."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from infoplane.integrations import log_to


class FakeWriter:
    """The TensorBoard SummaryWriter interface log_to uses (add_scalar, add_figure)."""

    def __init__(self):
        self.scalars, self.figures = {}, []

    def add_scalar(self, tag, value, global_step=None):
        self.scalars[(tag, global_step)] = value

    def add_figure(self, tag, fig, global_step=None, close=True):
        self.figures.append(tag)


def test_no_nan_scalars_and_no_empty_planes():
    rows = []
    for epoch in (0, 1):
        for layer in ("a", "b"):
            rows.append({"epoch": epoch, "layer": layer, "estimator": "knn", "I_XT": math.nan, "I_TY": 0.5 + epoch,
                         "bound_XT": "estimate", "bound_TY": "estimate", "n_samples": 10})
            rows.append({"epoch": epoch, "layer": layer, "estimator": "noisy", "I_XT": 2.0 - epoch, "I_TY": 0.4,
                         "I_XT_se": 0.05, "I_TY_se": 0.02, "bound_XT": "estimate", "bound_TY": "estimate",
                         "n_samples": 10})
    writer = FakeWriter()
    log_to(writer, pd.DataFrame(rows))
    assert writer.scalars and all(np.isfinite(v) for v in writer.scalars.values())
    assert ("infoplane/knn/a/I_TY", 1) in writer.scalars and ("infoplane/knn/a/I_XT", 1) not in writer.scalars
    assert ("infoplane/noisy/b/I_XT_se", 0) in writer.scalars
    assert writer.figures == ["infoplane/noisy/plane"]  # none for the I(T;Y)-only estimator

"""log_to checks everything before logging anything (issue 21, item 7).

The MLflow client here enforces MLflow's own rule (a metric key is at most 250 characters, as in
``mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH``) and records every call, so a half-logged run is visible.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from infoplane.integrations import log_to


class StrictMlflowClient:
    """Raises as MLflow does on a key over 250 characters; remembers what was logged."""

    MAX_KEY = 250

    def __init__(self) -> None:
        self.metrics: list[tuple[str, float, int]] = []
        self.figures: list[str] = []

    def log_metric(self, run_id, key, value, step=None):
        if len(key) > self.MAX_KEY:
            raise Exception(f"INVALID_PARAMETER_VALUE: Metric name '{key[:30]}...' exceeds the maximum length")
        self.metrics.append((key, value, step))

    def log_figure(self, run_id, fig, path):
        self.figures.append(path)


def _table(layers=("a", "b"), epochs=(0, 1, 2), value=1.0) -> pd.DataFrame:
    rows = [{"epoch": e, "layer": la, "estimator": "bins", "I_XT": value + e, "I_TY": value / 2}
            for e in epochs for la in layers]
    return pd.DataFrame(rows)


def test_a_too_long_name_is_refused_before_anything_is_logged():
    # Before: a 230-character layer name raised midway: epochs 0 and 1 of layer 'a' logged, the run half done.
    client = StrictMlflowClient()
    long = "encoder." + "x" * 230
    with pytest.raises(ValueError, match=r"layer 'encoder\.x+'.*250 characters"):
        log_to((client, "run-1"), _table(layers=("a", long)), figure=True)
    assert client.metrics == [] and client.figures == []


def test_non_finite_values_are_skipped_with_a_warning():
    client = StrictMlflowClient()
    df = _table()
    df.loc[(df.epoch == 1) & (df.layer == "a"), "I_XT"] = np.nan
    df.loc[(df.epoch == 2) & (df.layer == "b"), "I_TY"] = np.inf
    with pytest.warns(RuntimeWarning, match=r"2 values .* not finite.*infoplane/bins/a/I_XT at epoch 1"):
        log_to((client, "run-1"), df, figure=False)
    logged = {(k, s) for k, _v, s in client.metrics}
    assert ("infoplane/bins/a/I_XT", 1) not in logged and ("infoplane/bins/b/I_TY", 2) not in logged
    assert len(client.metrics) == 3 * 2 * 2 - 2
    assert all(np.isfinite(v) for _k, v, _s in client.metrics)


@pytest.mark.parametrize("epoch", [1.5, np.nan, "2", -1])
def test_a_non_integer_epoch_is_refused_before_anything_is_logged(epoch):
    # Before: epoch 1.5 was logged at step int(1.5) = 1, silently.
    client = StrictMlflowClient()
    df = _table().astype({"epoch": object})
    df.loc[df.index[-1], "epoch"] = epoch
    with pytest.raises(ValueError, match=r"'epoch'.*integer"):
        log_to((client, "run-1"), df, figure=False)
    assert client.metrics == []


def test_honest_table_is_logged_whole():
    client = StrictMlflowClient()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_to((client, "run-1"), _table(), figure=False)
    assert len(client.metrics) == 12

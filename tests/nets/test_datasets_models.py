"""Small tests of infoplane.nets and infoplane.nets against exact, known values."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from infoplane.nets import (
    SZTNet,
    accuracy,
    load_digits,
    load_szt,
    make_activation,
    szt_label_rule,
    train,
    train_test_split,
)

VAR_U = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "var_u.mat"


def entropy_bits(y: np.ndarray) -> float:
    p = np.bincount(y) / len(y)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


# ------------------------------------------------------------------------------------------ SZT data
def test_load_szt_is_the_exact_12_bit_task():
    X, y = load_szt(return_X_y=True)
    assert X.shape == (4096, 12) and X.dtype == np.float32
    assert y.shape == (4096,) and y.dtype == np.int64
    # Counting order: row r holds the binary digits of r, most significant bit in column 0.
    assert np.array_equal(X @ (2.0 ** np.arange(11, -1, -1)), np.arange(4096))
    assert int(y.sum()) == 2118
    # 0.9992 is the published value rounded to 4 decimals: allow half a unit of the last place.
    assert entropy_bits(y) == pytest.approx(0.9992, abs=5e-5)
    assert np.array_equal(szt_label_rule(X), y)
    bunch = load_szt()
    assert np.array_equal(bunch.data, X) and np.array_equal(bunch.target, y)
    assert len(bunch.feature_names) == 12 and "2118" in bunch.DESCR


@pytest.mark.skipif(not VAR_U.is_file(), reason="../shared/data/var_u.mat not available")
def test_load_szt_matches_the_original_var_u_mat_label_for_label():
    from scipy.io import loadmat

    original = loadmat(VAR_U)
    X, y = load_szt(return_X_y=True)
    assert np.array_equal(original["F"].astype(np.float32), X)
    assert np.array_equal(original["y"].ravel().astype(np.int64), y)


def test_szt_label_rule_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 12\)"):
        szt_label_rule(np.zeros((3, 11)))


def test_load_digits():
    X, y = load_digits(return_X_y=True)
    assert X.shape == (1797, 64) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0  # 0..16 scaled by 1/16
    assert np.array_equal(np.unique(y), np.arange(10))
    raw = load_digits(return_X_y=True, scale=False)[0]
    assert raw.max() == 16.0 and np.array_equal(raw / 16.0, X)
    assert load_digits().images.shape == (1797, 8, 8)


def test_split_is_seeded_and_stratified():
    X, y = load_szt(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=0)
    assert len(X_te) == int(np.ceil(0.2 * 4096)) and len(X_tr) + len(X_te) == 4096
    again = train_test_split(X, y, test_size=0.2, seed=0)
    assert np.array_equal(again[1], X_te)  # same seed, same split
    other = train_test_split(X, y, test_size=0.2, seed=1)
    assert not np.array_equal(other[1], X_te)
    # Stratified: each side's positive fraction within one sample of the whole set's (2118/4096).
    for part in (y_tr, y_te):
        assert abs(part.sum() - len(part) * 2118 / 4096) <= 1
    # Disjoint and complete: every input appears exactly once.
    codes = np.concatenate([X_tr, X_te]) @ (2.0 ** np.arange(12))
    assert np.array_equal(np.sort(codes), np.arange(4096))
    with pytest.raises(ValueError, match="'test_size' parameter of train_test_split must be in"):
        train_test_split(X, y, test_size=1.5)


# ------------------------------------------------------------------------------------------ SZTNet
def test_sztnet_layers_and_shapes():
    model = SZTNet(seed=0)
    assert model.layer_names == ["act1", "act2", "act3", "act4", "act5", "softmax"]
    widths = (12, 10, 7, 5, 4, 3, 2)
    for i in range(1, 7):
        fc = getattr(model, f"fc{i}")
        assert (fc.in_features, fc.out_features) == (widths[i - 1], widths[i])
    assert all(isinstance(getattr(model, f"act{i}"), nn.Tanh) for i in range(1, 6))
    logits = model(torch.zeros(5, 12))
    assert logits.shape == (5, 2)


def test_sztnet_init_is_truncated_normal_with_std_one_over_sqrt_fan_in():
    weights = [SZTNet(seed=s).fc2.weight.detach().numpy().ravel() for s in range(200)]
    w = np.concatenate(weights)  # 200 x 70 = 14,000 draws, fan_in = 10
    sigma = 1 / np.sqrt(10)
    assert np.abs(w).max() <= 2 * sigma + 1e-7  # cut at two standard deviations
    # A normal truncated at +-2 sigma has std 0.8796 sigma; the sample std's relative standard error is
    # about 1/sqrt(2n) = 0.6%, so 3% is a 5-sigma tolerance.
    assert w.std() == pytest.approx(0.8796 * sigma, rel=0.03)
    assert abs(w.mean()) < 4 * sigma / np.sqrt(len(w))
    assert all(torch.count_nonzero(getattr(SZTNet(seed=0), f"fc{i}").bias) == 0 for i in range(1, 7))


def test_sztnet_seed_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    a, b = SZTNet(seed=3), SZTNet(seed=3)
    assert torch.equal(torch.rand(2), expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(SZTNet(seed=4).fc1.weight, a.fc1.weight)


def test_activation_by_name_factory_and_unknown_name():
    assert isinstance(SZTNet("relu").act3, nn.ReLU)
    assert isinstance(SZTNet("ReLU").act1, nn.ReLU)  # names are case-insensitive
    assert isinstance(SZTNet(nn.ELU).act2, nn.ELU)
    assert isinstance(make_activation("linear"), nn.Identity)
    with pytest.raises(ValueError, match=r"'activation' parameter must be one of .*Got 'swish'"):
        SZTNet("swish")
    with pytest.raises(TypeError, match="must return an nn.Module"):
        make_activation(lambda: 3)


# ------------------------------------------------------------------------------------------ train
def _small_task():
    X, y = load_szt(return_X_y=True)
    return X[::8], y[::8]  # 512 rows keep the test fast


def test_train_is_seeded_calls_back_at_every_epoch_and_reports():
    X, y = _small_task()
    seen: list[int] = []
    model_a = SZTNet(seed=0)
    hist_a = train(model_a, X, y, epochs=3, batch_size=128, seed=7, progress=False, X_test=X[:50],
                   y_test=y[:50], callback=lambda e, m: seen.append(e))
    assert seen == [0, 1, 2, 3]  # the untrained network first, then after each epoch
    assert isinstance(hist_a, pd.DataFrame)
    assert list(hist_a.columns) == ["epoch", "train_loss", "train_accuracy", "test_accuracy"]
    assert hist_a.epoch.tolist() == [1, 2, 3]
    model_b = SZTNet(seed=0)
    hist_b = train(model_b, X, y, epochs=3, batch_size=128, seed=7, progress=False, X_test=X[:50], y_test=y[:50])
    pd.testing.assert_frame_equal(hist_a, hist_b)  # same seeds: bit-identical run
    assert all(torch.equal(p, q) for p, q in zip(model_a.parameters(), model_b.parameters()))
    model_c = SZTNet(seed=0)
    train(model_c, X, y, epochs=3, batch_size=128, seed=8, progress=False)
    assert not torch.equal(model_c.fc1.weight, model_a.fc1.weight)  # another shuffling seed
    assert hist_a.train_accuracy.iloc[-1] == pytest.approx(accuracy(model_a, X, y))


def test_train_rejects_bad_arguments():
    X, y = _small_task()
    with pytest.raises(ValueError, match="'epochs' parameter of train must be an int >= 0"):
        train(SZTNet(), X, y, epochs=-1, progress=False)
    with pytest.raises(ValueError, match="must have the same number of rows"):
        train(SZTNet(), X, y[:-1], epochs=1, progress=False)

"""A wide network end to end: augmented digits, the IDX reader, the ConvNet recorded with reductions."""
from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch

from infoplane import Layer, Recorder, information_plane
from infoplane.estimators import BinningEstimator, KDEEstimator, KNNEstimator
from infoplane.nets import ConvNet, load_digits, load_digits_augmented, load_idx, load_mnist_idx


def test_augmented_digits_seeded_and_documented():
    X, y = load_digits_augmented(3000, seed=0)
    assert X.shape == (3000, 1, 8, 8) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    X0, y0 = load_digits(return_X_y=True)
    np.testing.assert_array_equal(X[:1797].reshape(1797, 64), X0)  # the originals first, unchanged
    np.testing.assert_array_equal(y[:1797], y0)
    X2, y2 = load_digits_augmented(3000, seed=0)
    np.testing.assert_array_equal(X, X2)
    X3, _ = load_digits_augmented(3000, seed=1)
    assert not np.array_equal(X[1797:], X3[1797:])
    # No shift, rotation or noise: every augmented image is its source digit exactly.
    Xi, yi = load_digits_augmented(2500, seed=0, max_shift=0, max_rotation=0, noise=0)
    src = np.array([np.flatnonzero((X0 == row).all(1))[0] for row in Xi[1797:].reshape(-1, 64)])
    np.testing.assert_array_equal(yi[1797:], y0[src])
    big, _ = load_digits_augmented(10, size=28)
    assert big.shape == (10, 1, 28, 28)
    with pytest.raises(ValueError, match=r"'noise' parameter of load_digits_augmented must be a finite float >= 0"):
        load_digits_augmented(10, noise=-1.0)
    with pytest.raises(ValueError, match=r"'n' parameter of load_digits_augmented must be an int >= 1"):
        load_digits_augmented(0)


def _write_idx(path, array: np.ndarray, code: int, gz: bool = False) -> None:
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def test_idx_reader_on_files_the_test_writes(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 3)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    _write_idx(tmp_path / "img.idx3-ubyte.gz", images, 0x08, gz=True)
    _write_idx(tmp_path / "lab.idx1-ubyte", labels, 0x08)
    np.testing.assert_array_equal(load_idx(tmp_path / "img.idx3-ubyte.gz"), images)
    X, y = load_mnist_idx(tmp_path / "img.idx3-ubyte.gz", tmp_path / "lab.idx1-ubyte")
    assert X.shape == (5, 1, 4, 3) and X.dtype == np.float32 and y.tolist() == [3, 1, 4, 1, 5]
    np.testing.assert_allclose(X[:, 0], images / 255.0, rtol=1e-7)
    floats = rng.normal(size=(2, 3)).astype(np.float64)
    _write_idx(tmp_path / "f.idx", floats, 0x0E)
    np.testing.assert_array_equal(load_idx(tmp_path / "f.idx"), floats)  # big-endian float64 read exactly
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match=r"is not an IDX file: expected two zero bytes"):
        load_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(bytes([0, 0, 8, 1]) + np.array([10], ">u4").tobytes() + b"\x00" * 3)
    with pytest.raises(ValueError, match=r"shape \(10,\) of uint8 needs 10 data bytes; the file holds 3"):
        load_idx(tmp_path / "short.idx")
    with pytest.raises(ValueError, match=r"images must be \(n, h, w\) and labels \(n,\) with the same n"):
        load_mnist_idx(tmp_path / "lab.idx1-ubyte", tmp_path / "lab.idx1-ubyte")


def test_convnet_blocks_shapes_and_seed():
    m, m2 = ConvNet(image_size=16, seed=3), ConvNet(image_size=16, seed=3)
    x = torch.zeros(2, 1, 16, 16).normal_()
    assert m(x).shape == (2, 10) and torch.equal(m(x), m2(x))
    assert m.block1(x).shape == (2, 16, 8, 8) and m.block3(m.block2(m.block1(x))).shape == (2, 64, 4, 4)
    with pytest.raises(ValueError, match=r"'channels' parameter of ConvNet must hold 3 ints"):
        ConvNet(channels=(8, 8))


@pytest.mark.slow
def test_conv_network_end_to_end_with_reductions_and_three_estimators():
    X, y = load_digits_augmented(400, seed=0)
    model = ConvNet(seed=0)
    layers = [Layer("block1", project=32), Layer("block2", pool="global"), Layer("block3", pool="global"),
              "dense1", "dense2"]
    with Recorder(model, layers, X, labels=y, dtype="float16", batch_size=128) as rec:
        rec.step(0)
        widths = {name: rec.store.activations(0, name).shape[1] for name in rec.layers}
        df = information_plane(rec.store, estimators={"bins": BinningEstimator(n_bins=30, strategy="adaptive"),
                                                      "kde": KDEEstimator(0.1, "both"), "knn": KNNEstimator(k=3)},
                               progress=False)
    assert widths == {"block1": 32, "block2": 32, "block3": 64, "dense1": 64, "dense2": 10}
    assert len(df) == 15 and df.loc[df.estimator != "knn", "I_XT"].between(0, math.log2(400) + 1e-9).all()
    assert df["I_TY"].between(0, math.log2(10) + 1e-9).all()
    assert df.loc[df.estimator == "knn", "I_XT"].isna().all()  # k-NN reports I(T;Y) only

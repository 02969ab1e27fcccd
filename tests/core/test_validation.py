"""The shared input checks: each bad input gets a message naming the argument, expectation and value."""
import json

import numpy as np
import pytest
import torch

from infoplane._core.types import MIResult, json_safe
from infoplane._core.units import entropy_bits, nats_to_bits
from infoplane._core.validation import (
    check_activations,
    check_choice,
    check_estimate_inputs,
    check_float_param,
    check_input_ids,
    check_int_param,
    check_labels,
    check_same_length,
)


def test_nan_message_names_layer_epoch_and_count():
    t = np.zeros((4096, 3))
    t[:4, 0] = np.nan
    with pytest.raises(ValueError, match=r"activations of layer 'fc2' at epoch 3 contain NaN \(4 of 12,288 values\)"):
        check_activations(t, name="activations", layer="fc2", epoch=3)


def test_inf_is_rejected_for_torch_too():
    t = torch.zeros(5, 2)
    t[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"t contain Inf \(1 of 10 values\)"):
        check_activations(t)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros(5), r"t must be 2-D \(n_samples, n_units\)\. Got shape \(5,\)"),
        (np.zeros((0, 3)), r"t must be non-empty .* Got shape \(0, 3\)"),
        (np.zeros((3, 0)), r"t must be non-empty .* Got shape \(3, 0\)"),
        (np.array([["a"]]), r"t must hold real numbers"),
    ],
)
def test_bad_activation_shapes_and_types(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_activations(bad)


def test_activations_integer_input_becomes_float_and_torch_stays_torch():
    assert check_activations(np.ones((2, 2), dtype=int)).dtype == np.float64
    out = check_activations(torch.ones(2, 2, dtype=torch.int64))
    assert isinstance(out, torch.Tensor) and out.is_floating_point()


def test_labels_checks():
    assert check_labels([0, 1, 1], 3).dtype == np.int64
    with pytest.raises(ValueError, match=r"y must have one label per row of the activations \(4\)\. Got 3"):
        check_labels([0, 1, 1], 4)
    with pytest.raises(TypeError, match=r"y must hold integer class labels\. Got dtype float64 \(use y.astype"):
        check_labels(np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match=r"y must hold at least 2 distinct classes\. Got 1"):
        check_labels([1, 1, 1], 3)
    with pytest.raises(ValueError, match=r"y must be 1-D"):
        check_labels(np.zeros((2, 2), dtype=int), 2)


def test_input_ids_group_equal_rows():
    ids = check_input_ids(np.array([[0, 1], [1, 0], [0, 1]]), 3)
    assert ids[0] == ids[2] != ids[1]
    assert check_input_ids(None, 3) is None
    with pytest.raises(ValueError, match=r"x must be .* n_samples = 3\. Got shape \(2,\)"):
        check_input_ids(np.arange(2), 3)


def test_param_checks_use_one_sentence_shape():
    with pytest.raises(ValueError, match=r"The 'n_bins' parameter of BinningEstimator must be an int >= 2\. Got 0 instead\."):
        check_int_param(0, "n_bins", "BinningEstimator", minimum=2)
    with pytest.raises(ValueError, match=r"'noise_variance' parameter of KDEEstimator must be a finite float > 0\. Got -1"):
        check_float_param(-1.0, "noise_variance", "KDEEstimator", positive=True)
    with pytest.raises(ValueError, match=r"must be one of 'upper', 'lower'\. Got 'middle'"):
        check_choice("middle", "bound", "KDEEstimator", ("upper", "lower"))
    assert check_int_param(3, "k", "f", minimum=1) == 3
    with pytest.raises(ValueError, match=r"an int"):
        check_int_param(True, "k", "f")


def test_same_length():
    assert check_same_length(a=[1, 2], b=[3, 4]) == 2
    with pytest.raises(ValueError, match=r"a and b must have the same number of rows: a has 2, b has 3"):
        check_same_length(a=[1, 2], b=[1, 2, 3])


def test_units_entropy_in_bits():
    # A fair coin carries 1 bit, a fair 8-sided die 3 bits; ln 2 nats is 1 bit.
    assert entropy_bits([5, 5]) == pytest.approx(1.0, abs=1e-15)
    assert entropy_bits(np.ones(8)) == pytest.approx(3.0, abs=1e-15)
    assert entropy_bits([0, 7]) == 0.0
    assert nats_to_bits(np.log(2.0)) == pytest.approx(1.0, abs=1e-15)


def test_result_serialises_to_json():
    r = MIResult(1.0, 0.5, "estimate", "lower", "binning", 10, {"edges": np.linspace(0, 1, 3)})
    d = r.to_dict()
    assert json.loads(json.dumps(json_safe(d)))["conventions"]["edges"] == [0.0, 0.5, 1.0]
    with pytest.raises(AttributeError):
        r.I_XT = 2.0  # frozen


def test_check_estimate_inputs_is_the_three_checks_in_one():
    t = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = [0, 1, 0, 1, 1, 0]
    t2, y2, x2, n = check_estimate_inputs(t, y, None, layer="fc", epoch=3)
    assert n == 6 and x2 is None and y2.dtype == np.int64 and np.array_equal(y2, y) and t2 is not None
    _, _, ids, _ = check_estimate_inputs(t, y, ["a", "b", "a", "c", "c", "b"])
    np.testing.assert_array_equal(ids, check_input_ids(["a", "b", "a", "c", "c", "b"], 6))
    with pytest.raises(ValueError, match="y"):
        check_estimate_inputs(t, y[:5])
    with pytest.raises(ValueError, match="x"):
        check_estimate_inputs(t, y, np.arange(5))
    with pytest.raises(ValueError, match="fc"):
        check_estimate_inputs(np.full((6, 2), np.nan), y, layer="fc", epoch=3)
    assert isinstance(check_estimate_inputs(torch.zeros(6, 2), y)[0], torch.Tensor)
    assert isinstance(check_estimate_inputs(torch.zeros(6, 2), y, allow_torch=False)[0], np.ndarray)

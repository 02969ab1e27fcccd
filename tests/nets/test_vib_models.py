"""The Gaussian encoder and the VIB models: outputs, gradients, seeding, recording, training, bounds."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from infoplane.estimators.variational import RateEstimator, barber_agakov, gaussian_rate
from infoplane.nets import (
    GaussianEncoder,
    VIBClassifier,
    VIBOutput,
    VIBRegressor,
    accuracy,
    load_digits,
    train,
    train_test_split,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train faster on one thread; restore the setting for other tests."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_gaussian_encoder_returns_a_normal_with_mu_and_log_var_from_its_head():
    enc = GaussianEncoder(5, 3, hidden=(8,), seed=0)
    x = torch.randn(4, 5)
    dist = enc(x)
    mu, log_var = enc.params(x)
    assert isinstance(dist, Normal) and dist.loc.shape == (4, 3)
    torch.testing.assert_close(dist.loc, mu)
    # The recorder's convention: log_var = 2 log scale.
    torch.testing.assert_close(2 * dist.scale.log(), log_var, atol=1e-6, rtol=1e-6)
    pair = GaussianEncoder(5, 3, hidden=(8,), seed=0, return_distribution=False)(x)
    torch.testing.assert_close(pair[0], mu)
    torch.testing.assert_close(pair[1], log_var)


def test_reparameterised_sample_carries_gradients_to_the_encoder():
    enc = GaussianEncoder(4, 2, hidden=(6,), seed=1)
    enc(torch.randn(3, 4)).rsample().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.head.parameters())


def test_seed_makes_models_identical_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = VIBClassifier(6, 3, z_dim=2, hidden=(5,), seed=7), VIBClassifier(6, 3, z_dim=2, hidden=(5,), seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_vib_classifier_forward_in_training_and_eval_mode():
    model = VIBClassifier(6, 3, z_dim=2, hidden=(5,), seed=0, n_samples=4)
    x = torch.randn(10, 6)
    out = model(x)
    assert isinstance(out, VIBOutput) and out.pred.shape == (4, 10, 3) and out.z.shape == (4, 10, 2)
    model.eval()
    out = model(x)
    assert out.pred.shape == (10, 3)
    torch.testing.assert_close(out.z, out.dist.loc)  # eval decodes the mean
    torch.testing.assert_close(out.pred, model.decoder(out.dist.loc))


def test_training_loss_is_cross_entropy_plus_beta_rate_and_has_gradients():
    model = VIBClassifier(6, 3, z_dim=2, hidden=(5,), seed=0, beta=0.5)
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    torch.manual_seed(0)
    loss = model.training_loss(x, y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.manual_seed(0)
    out = model(x)
    mu, lv = model.encoder.params(x)
    rate_nats = gaussian_rate(mu.detach(), lv.detach()) * math.log(2)
    ce = torch.nn.functional.cross_entropy(out.pred, y)
    assert float(loss.detach()) == pytest.approx(float(ce.detach()) + 0.5 * rate_nats, rel=1e-5)


def test_recorder_sees_the_encoder_as_a_gaussian_layer():
    recording = pytest.importorskip("infoplane.recording")
    model = VIBClassifier(6, 3, z_dim=2, hidden=(5,), seed=0)
    probe = torch.randn(20, 6)
    acts = recording.record(model, probe, ["encoder"])
    mu, lv = model.encoder.params(probe)
    np.testing.assert_allclose(acts["encoder"]["mu"], mu.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(acts["encoder"]["log_var"], lv.detach().numpy(), atol=1e-5)


def test_vib_classifier_trains_on_digits_and_its_decoder_gives_a_ba_bound():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, seed=0)
    model = VIBClassifier(64, 10, z_dim=4, hidden=(64,), beta=1e-3, seed=0)
    hist = train(model, X_tr, y_tr, epochs=8, batch_size=64, lr=3e-3, loss_fn=VIBClassifier.training_loss,
                 X_test=X_te, y_test=y_te, progress=False)
    # Chance is 0.1; eight epochs of this small model reach ~0.9. 0.7 is a safe floor that still catches a
    # loss that does not train the decoder through z.
    assert hist["test_accuracy"].iloc[-1] > 0.7 and accuracy(model, X_te, y_te) > 0.7
    dist = model.eval().encoder(torch.as_tensor(X))
    mu, lv = dist.loc.detach(), 2 * dist.scale.log().detach()
    ba = barber_agakov(mu, lv, y, model.decoder, n_samples=2)
    assert 1.5 < ba.value <= ba.h_y == pytest.approx(math.log2(10), abs=0.01)
    res = RateEstimator(model.decoder, n_samples=2, beta=1e-3).estimate(mu, y, log_var=lv)
    assert res.I_TY == pytest.approx(ba.value, abs=0.05) and res.I_XT > 0
    assert res.conventions["decoder"] == "module:Sequential" and res.conventions["beta"] == 1e-3


def test_vib_regressor_learns_a_linear_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5])).astype(np.float32)
    model = VIBRegressor(3, z_dim=3, hidden=(16,), beta=1e-4, seed=0)
    hist = train(model, X, y, epochs=30, batch_size=64, lr=1e-2, loss_fn=VIBRegressor.training_loss,
                 progress=False)
    # Var(y) = 5.25: a trained model's squared error must be far below it.
    assert hist["train_loss"].iloc[-1] < 0.5 < 5.25
    dist = model.eval().encoder(torch.as_tensor(X))
    ba = barber_agakov(dist.loc.detach(), 2 * dist.scale.log().detach(), y, model.decoder, task="regression")
    assert ba.value > 1.0  # ½ log2(5.25 / 0.5) ≈ 1.7 bits for a 0.5 residual variance


def test_bad_parameters_name_the_argument():
    with pytest.raises(ValueError, match="'z_dim' parameter of GaussianEncoder must be an int >= 1"):
        GaussianEncoder(3, 0)
    with pytest.raises(ValueError, match="'beta' parameter of VIBClassifier"):
        VIBClassifier(3, 2, beta=-1.0)
    with pytest.raises(ValueError, match="'n_classes' parameter of VIBClassifier must be an int >= 2"):
        VIBClassifier(3, 1)

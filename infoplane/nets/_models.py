"""Reference networks and a small training loop.

`SZTNet` is the Shwartz-Ziv & Tishby (2017) 12-10-7-5-4-3-2 MLP. `train` is a seeded Adam loop that calls
back once per epoch; nothing in infoplane needs it (the recorder attaches to any model and any loop).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.distributions import Normal
from tqdm.auto import tqdm

from .._core.threads import torch_threads
from .._core.validation import as_numpy, check_float_param, check_int_param, check_labels, check_same_length
from ..estimators import vib_loss

__all__ = ["ACTIVATIONS", "SZTNet", "ConvNet", "make_activation", "train", "accuracy"]

#: Hidden activations by name.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softsign": nn.Softsign,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "hardtanh": nn.Hardtanh,
    "linear": nn.Identity,
}


def make_activation(activation: str | Callable[[], nn.Module]) -> nn.Module:
    """A fresh activation module from a name in `ACTIVATIONS` or a zero-argument module factory."""
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation.lower()]()
        except KeyError:
            raise ValueError(
                f"The 'activation' parameter must be one of {sorted(ACTIVATIONS)} or a module class. "
                f"Got {activation!r} instead."
            ) from None
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation() must return an nn.Module. Got {type(module).__name__}.")
        return module
    raise TypeError(f"activation must be a name or a module class. Got {type(activation).__name__}.")


def _truncated_normal_(linear: nn.Linear) -> None:
    # As in the original code: weights ~ truncated normal, std 1/sqrt(fan_in), cut at two std; zero bias.
    std = 1.0 / math.sqrt(linear.in_features)
    nn.init.trunc_normal_(linear.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(linear.bias)


class SZTNet(nn.Module):
    """The SZT MLP: 12-10-7-5-4-3-2 with a chosen hidden activation and a softmax output.

    Modules ``fc1``…``fc6`` are the linear maps, ``act1``…``act5`` the hidden activations and ``softmax`` the
    output probabilities; `layer_names` lists the six representations the information plane uses
    (``act1``…``act5``, ``softmax``). ``forward`` returns logits (for ``nn.CrossEntropyLoss``); it also runs
    ``softmax`` so that a forward hook on it sees the output layer, as in the original.

    Parameters
    ----------
    activation : str or module class, default "tanh"
        Hidden activation, by name (see `ACTIVATIONS`) or a zero-argument factory such as ``nn.ReLU``.
    widths : sequence of int, default (12, 10, 7, 5, 4, 3, 2)
        Input width, hidden widths, number of classes.
    seed : int or None
        Seed for the truncated-normal initialisation (std 1/sqrt(fan_in)).
    """

    def __init__(
        self,
        activation: str | Callable[[], nn.Module] = "tanh",
        widths: Sequence[int] = (12, 10, 7, 5, 4, 3, 2),
        seed: int | None = None,
    ) -> None:
        super().__init__()
        widths = tuple(check_int_param(w, "widths", "SZTNet", minimum=1) for w in widths)
        if len(widths) < 2:
            raise ValueError(f"The 'widths' parameter of SZTNet must list >= 2 widths. Got {widths!r} instead.")
        self.widths = widths
        self.activation_name = activation if isinstance(activation, str) else getattr(
            activation, "__name__", repr(activation)
        )
        generator_state = torch.random.get_rng_state()
        if seed is not None:
            torch.manual_seed(seed)
        try:
            n = len(widths) - 1
            for i in range(1, n + 1):
                linear = nn.Linear(widths[i - 1], widths[i])
                _truncated_normal_(linear)
                self.add_module(f"fc{i}", linear)
                if i < n:
                    self.add_module(f"act{i}", make_activation(activation))
        finally:
            if seed is not None:
                torch.random.set_rng_state(generator_state)
        self.softmax = nn.Softmax(dim=1)
        self._n_linear = n

    @property
    def layer_names(self) -> list[str]:
        """The representations of the information plane: every hidden activation, then the softmax."""
        return [f"act{i}" for i in range(1, self._n_linear)] + ["softmax"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(1, self._n_linear):
            h = getattr(self, f"act{i}")(getattr(self, f"fc{i}")(h))
        logits = getattr(self, f"fc{self._n_linear}")(h)
        self.softmax(logits)  # computed for hooks only: the loss takes logits
        return logits


class ConvNet(nn.Module):
    """A small convolutional network: three conv blocks and two dense layers, for image probe sets.

    ``block1``-``block3``: 3×3 convolution (padding 1) and the activation; blocks 1 and 2 end with a 2×2
    max pool. Then ``dense1`` (flatten, linear to ``hidden``, activation) and ``dense2`` (linear to
    ``n_classes`` logits). Every block is a named module, so ``layers=["block1", "block2", "block3",
    "dense1", "dense2"]`` records them all; the conv blocks are (N, C, H, W) maps that ``pool=``/``project=``
    reduce while recording. Widths per input at ``image_size`` s: block1 c₁·s², block2 c₂·(s/2)²,
    block3 c₃·(s/4)².
    """

    def __init__(self, *, in_channels: int = 1, image_size: int = 8, channels: Sequence[int] = (16, 32, 64),
                 hidden: int = 64, n_classes: int = 10, activation: str | Callable[[], nn.Module] = "relu",
                 seed: int | None = 0) -> None:
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"The 'channels' parameter of ConvNet must hold 3 ints. Got {list(channels)}.")
        image_size = check_int_param(image_size, "image_size", "ConvNet", minimum=4)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(check_int_param(seed, "seed", "ConvNet", minimum=0))
            c1, c2, c3 = (check_int_param(c, "channels", "ConvNet", minimum=1) for c in channels)
            self.block1 = nn.Sequential(nn.Conv2d(in_channels, c1, 3, padding=1), make_activation(activation),
                                        nn.MaxPool2d(2))
            self.block2 = nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1), make_activation(activation),
                                        nn.MaxPool2d(2))
            self.block3 = nn.Sequential(nn.Conv2d(c2, c3, 3, padding=1), make_activation(activation))
            side = image_size // 4
            self.dense1 = nn.Sequential(nn.Flatten(), nn.Linear(c3 * side * side, hidden),
                                        make_activation(activation))
            self.dense2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense2(self.dense1(self.block3(self.block2(self.block1(x)))))


def accuracy(model: nn.Module, X, y, *, batch_size: int = 4096) -> float:
    """Classification accuracy of ``model`` (logits out) on ``(X, y)``, in eval mode, without gradients."""
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            correct = sum(
                int((_logits(model(X[i : i + batch_size])).argmax(1) == y[i : i + batch_size]).sum())
                for i in range(0, len(X), batch_size)
            )
    finally:
        model.train(was_training)
    return correct / max(len(X), 1)


def _logits(output):
    """The logits of a model output: the tensor itself, or the first element of a tuple/list."""
    return output[0] if isinstance(output, (tuple, list)) else output


def train(
    model: nn.Module,
    X_train,
    y_train,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 4e-4,
    seed: int = 0,
    X_test=None,
    y_test=None,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
    progress: bool = True,
    threads: int | None = 1,
) -> pd.DataFrame:
    """Train ``model`` with Adam on minibatches, seeded, calling ``callback(epoch, model)`` once per epoch.

    ``callback(0, model)`` runs before the first update (the untrained network, as SZT record epoch 0), then
    ``callback(e, model)`` after each epoch ``e = 1..epochs``: pass ``recorder.step`` to record.

    Parameters
    ----------
    loss_fn : callable, optional
        ``loss_fn(model, xb, yb) -> scalar``. Default: cross-entropy on ``model(xb)`` logits.
    seed : int
        Seeds the minibatch order and, inside a forked RNG (the caller's torch RNG is left untouched), every
        random draw of the model during training (dropout, the reparameterised samples of a VIB layer).
    threads : int or None, default 1
        torch intra-op threads while training (restored afterwards). Networks as small as the reference ones
        train about 4x faster on one thread than on two (thread start-up dominates their tiny matrix
        products); pass None to keep torch's setting for a large model.

    Returns
    -------
    DataFrame with one row per epoch: ``epoch, train_loss, train_accuracy`` (and ``test_accuracy``).
    """
    epochs = check_int_param(epochs, "epochs", "train", minimum=0)
    batch_size = check_int_param(batch_size, "batch_size", "train", minimum=1)
    lr = check_float_param(lr, "lr", "train", positive=True)
    n = check_same_length(X_train=X_train, y_train=y_train)
    y_np = as_numpy(y_train)
    if np.issubdtype(y_np.dtype, np.integer):
        y_np = check_labels(y_np, n, name="y_train")
    X = torch.as_tensor(np.asarray(X_train), dtype=torch.float32)
    y = torch.as_tensor(y_np)
    if loss_fn is None:
        cross_entropy = nn.CrossEntropyLoss()

        def loss_fn(m, xb, yb):
            return cross_entropy(_logits(m(xb)), yb)

    if threads is not None:
        threads = check_int_param(threads, "threads", "train", minimum=1)
    with torch.random.fork_rng(devices=[]), torch_threads(threads):
        torch.manual_seed(seed)
        return _train_epochs(model, X, y, n, epochs, batch_size, lr, seed, X_test, y_test, loss_fn,
                             callback, progress)


def _train_epochs(model, X, y, n, epochs, batch_size, lr, seed, X_test, y_test, loss_fn, callback, progress):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rows = []
    if callback is not None:
        callback(0, model)
    for epoch in tqdm(range(1, epochs + 1), desc="training", unit="epoch", disable=not progress, leave=False):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, X[idx], y[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        row = {"epoch": epoch, "train_loss": total / n}
        if not torch.is_floating_point(y):
            row["train_accuracy"] = accuracy(model, X, y)
            if X_test is not None:
                row["test_accuracy"] = accuracy(model, X_test, y_test)
        rows.append(row)
        if callback is not None:
            callback(epoch, model)
    return pd.DataFrame(rows)


# --- Variational models ---
# Gaussian encoder and the variational information bottleneck (Alemi et al. 2017). The loss math lives beside
# the Gaussian kernels (infoplane.estimators.vib_loss); estimators never import models.


__all__ += ["GaussianEncoder", "VIBOutput", "VIBClassifier", "VIBRegressor", "mlp"]


def mlp(widths: Sequence[int], activation: str | Callable[[], nn.Module] = "relu") -> nn.Sequential:
    """Linear layers through ``widths`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(1, len(widths)):
        layers.append(nn.Linear(widths[i - 1], widths[i]))
        if i < len(widths) - 1:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """A stochastic layer p(z|x) = N(μ(x), diag σ²(x)): features → (μ, log σ²) → ``torch.distributions.Normal``.

    An MLP body (``hidden`` widths, ``activation``) then one linear head with 2·``z_dim`` outputs, split into
    μ and log σ². ``forward`` returns ``Normal(loc=μ, scale=exp(½ log σ²))`` (event shape: the last axis holds
    the ``z_dim`` independent coordinates), which the recorder stores as a Gaussian layer
    (mu = loc, log_var = 2·log scale); draw the reparameterised sample with ``dist.rsample()``. With
    ``return_distribution=False`` it returns the pair ``(mu, log_var)`` instead. Use it inside any model.

    Parameters
    ----------
    in_features, z_dim : int
        Input width and the dimension K of z.
    hidden : sequence of int
        Widths of the body's hidden layers (empty: the head is applied to the input directly).
    activation : str or module class
        Body activation (see `ACTIVATIONS`).
    return_distribution : bool
        Return a ``Normal`` (default) or ``(mu, log_var)``.
    seed : int or None
        Seed of the initialisation (the global torch RNG is left untouched).
    """

    def __init__(
        self,
        in_features: int,
        z_dim: int,
        hidden: Sequence[int] = (),
        activation: str | Callable[[], nn.Module] = "relu",
        *,
        return_distribution: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        in_features = check_int_param(in_features, "in_features", "GaussianEncoder", minimum=1)
        self.z_dim = check_int_param(z_dim, "z_dim", "GaussianEncoder", minimum=1)
        hidden = tuple(check_int_param(h, "hidden", "GaussianEncoder", minimum=1) for h in hidden)
        self.return_distribution = bool(return_distribution)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            widths = (in_features, *hidden)
            body = mlp(widths, activation)
            if hidden:
                body.append(make_activation(activation))
            self.body = body
            self.head = nn.Linear(widths[-1], 2 * self.z_dim)

    def params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²), each (B, z_dim)."""
        mu, log_var = self.head(self.body(x)).chunk(2, dim=-1)
        return mu, log_var

    def forward(self, x: torch.Tensor):
        mu, log_var = self.params(x)
        if not self.return_distribution:
            return mu, log_var
        return Normal(mu, torch.exp(0.5 * log_var))


class VIBOutput(NamedTuple):
    """What a VIB model's forward returns: predictions first (so ``accuracy``/``train`` read them), then the
    encoder's distribution and the z the predictions were decoded from."""

    pred: torch.Tensor
    dist: Normal
    z: torch.Tensor


class _VIBBase(nn.Module):
    task = "classification"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        z_dim: int,
        hidden: Sequence[int],
        decoder_hidden: Sequence[int],
        activation: str | Callable[[], nn.Module],
        beta: float,
        n_samples: int,
        seed: int | None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.beta = check_float_param(beta, "beta", owner, minimum=0.0)
        self.n_samples = check_int_param(n_samples, "n_samples", owner, minimum=1)
        out_features = check_int_param(out_features, "out_features", owner, minimum=1)
        decoder_hidden = tuple(check_int_param(h, "decoder_hidden", owner, minimum=1) for h in decoder_hidden)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.encoder = GaussianEncoder(in_features, z_dim, hidden, activation)
            self.decoder = mlp((z_dim, *decoder_hidden, out_features), activation)

    def forward(self, x: torch.Tensor) -> VIBOutput:
        """Training mode: decode ``n_samples`` reparameterised z ~ p(z|x) (pred (B, out), or (S, B, out) when
        ``n_samples`` > 1). Eval mode: decode the mean z = μ(x) (a deterministic prediction)."""
        dist = self.encoder(x)
        if self.training:
            z = dist.rsample() if self.n_samples == 1 else dist.rsample((self.n_samples,))
        else:
            z = dist.mean
        return VIBOutput(self.decoder(z), dist, z)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``vib_loss`` (nats) of one batch with this model's β: pass ``loss_fn=type(model).training_loss``
        to `train`."""
        out = self(x)
        log_var = 2.0 * torch.log(out.dist.scale)
        return vib_loss(out.pred, y, out.dist.loc, log_var, beta=self.beta, task=self.task)


class VIBClassifier(_VIBBase):
    """Variational information bottleneck classifier: encoder → K-dim Gaussian z → decoder → logits.

    ``encoder`` (a `GaussianEncoder`; record it with ``layers=["encoder"]``) gives p(z|x) = N(μ(x), diag σ²(x));
    ``decoder`` maps z (B, K) to class logits (a ``nn.Sequential``, linear by default as in Alemi et al. 2017)
    and is what `barber_agakov` / `RateEstimator(decoder=model.decoder)` use as q(y|z).

    ``forward(x)`` returns ``VIBOutput(pred, dist, z)``: in training mode ``pred`` are the logits of
    reparameterised samples (so gradients flow through z), in eval mode the logits of z = μ(x). The loss
    ``training_loss(x, y)`` = cross-entropy (nats) + β · rate (nats), the VIB objective.

    Parameters
    ----------
    in_features, n_classes : int
    z_dim : int
        K, the bottleneck dimension.
    hidden, decoder_hidden : sequence of int
        Hidden widths of the encoder body and of the decoder (empty: linear decoder).
    activation : str or module class
    beta : float >= 0
        β of the objective (attribute, may be changed between epochs).
    n_samples : int
        z samples per input in training mode.
    seed : int or None
        Initialisation seed (global RNG untouched).

    Examples
    --------
    >>> model = VIBClassifier(64, 10, z_dim=8, beta=1e-3, seed=0)
    >>> history = train(model, X, y, epochs=30, loss_fn=VIBClassifier.training_loss)  # doctest: +SKIP
    """

    task = "classification"

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        *,
        z_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        decoder_hidden: Sequence[int] = (),
        activation: str | Callable[[], nn.Module] = "relu",
        beta: float = 1e-3,
        n_samples: int = 1,
        seed: int | None = None,
    ) -> None:
        n_classes = check_int_param(n_classes, "n_classes", "VIBClassifier", minimum=2)
        super().__init__(
            in_features, n_classes, z_dim=z_dim, hidden=hidden, decoder_hidden=decoder_hidden,
            activation=activation, beta=beta, n_samples=n_samples, seed=seed,
        )
        self.n_classes = n_classes


class VIBRegressor(_VIBBase):
    """Variational information bottleneck regressor: encoder → K-dim Gaussian z → decoder → predictions.

    As `VIBClassifier` but the decoder outputs ``out_features`` real values and the loss is the squared
    error summed over outputs (nats-scale distortion, i.e. a Gaussian q(y|z) of fixed variance ½ up to a
    constant) + β · rate. ``barber_agakov(..., task="regression", decoder=model.decoder)`` bounds I(Z;Y).
    """

    task = "regression"

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        *,
        z_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        decoder_hidden: Sequence[int] = (),
        activation: str | Callable[[], nn.Module] = "relu",
        beta: float = 1e-3,
        n_samples: int = 1,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            in_features, out_features, z_dim=z_dim, hidden=hidden, decoder_hidden=decoder_hidden,
            activation=activation, beta=beta, n_samples=n_samples, seed=seed,
        )
        self.out_features = out_features

"""Neural critic bounds on mutual information (InfoNCE, NWJ, SMILE), in torch, in bits.

A critic f(a, b) scores pairs; the bounds compare its value on the B true pairs of a batch with its value on
the B² pairings of the batch (Poole et al. 2019 review them):

- InfoNCE (van den Oord et al. 2018): I >= mean_i [f(a_i, b_i) − ln (1/B) Σ_j e^{f(a_i, b_j)}], a lower bound,
  never above ln B;
- NWJ (Nguyen, Wainwright & Jordan 2010): I >= E_p[f] − e^{−1} E_{p⊗p}[e^f], a lower bound (f shifted by +1,
  the usual "f − 1" parametrisation, so a critic near the log density ratio is optimal);
- SMILE (Song & Ermon 2020): E_p[f] − ln E_{p⊗p}[clip(e^f, e^{−τ}, e^τ)], an *estimate* (not a bound), reported
  for a critic trained on the Jensen-Shannon bound −E_p softplus(−f) − E_{p⊗p} softplus(f), as Song & Ermon do
  (training on the clipped objective itself lets f grow without limit on the true pairs);

The default critic is separable, f(a, b) = g(a) · h(b) with small MLPs g and h, so a batch costs two
forward passes and one (B, B) matrix product. Training uses a share of the rows; the value reported is the
bound on the other rows (held out), and training stops when the held-out training objective (the bound itself;
JS for SMILE) has not improved for ``patience`` epochs (the critic of the best epoch is kept). Seeded (CPU generator), with an optional tqdm progress bar.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from .._core.threads import seeded_global_rng, torch_threads
from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.units import LN2, entropy_bits
from .._core.validation import (
    check_activations,
    check_choice,
    check_continuous,
    check_device,
    check_estimate_inputs,
    check_float_param,
    check_int_param,
    param_error,
)
from ._base import BaseEstimator
from ._kernels import reliability as R
from ._kernels.critic_objectives import batches, evaluate, held_out_stats, train_objective
from ._kernels.rows import NO_I_XT, as_tensor64, canonical_order
from ._kernels.warm import Run, chain_split, chain_state, warm_or_cold

__all__ = ["CriticResult", "critic_mi", "CriticEstimator", "BOUND_KINDS"]

#: What each critic objective is relative to the true mutual information.
BOUND_KINDS = {"infonce": "lower", "nwj": "lower", "smile": "estimate"}


@dataclass(frozen=True)
class CriticResult:
    """A critic bound in bits: the held-out ``value`` and how it was obtained.

    ``bound`` is "lower" (InfoNCE, NWJ) or "estimate" (SMILE); ``cap`` is ln B / ln 2 for InfoNCE (the
    most it can report), else inf; ``train_value`` is the same bound on the training rows (its excess over
    ``value`` shows over-fitting); ``epochs`` run, ``best_epoch``, ``seconds``; ``se``: the standard error of
    the held-out value (bits, from its per-row terms); ``converged``: whether early stopping ended training
    (False: the epoch budget ran out first) and ``rise``: then, how much the held-out value rose over the last
    ``patience`` epochs (bits; 0 when converged); ``log_partition`` (SMILE only, else NaN): the held-out
    log-partition it subtracts, bits (0 for a critic at the optimum of its JS training objective).
    """

    value: float
    bound: str
    objective: str
    train_value: float
    cap: float
    epochs: int
    best_epoch: int
    seconds: float
    n_train: int
    n_test: int
    se: float = math.nan
    converged: bool = True
    rise: float = 0.0
    log_partition: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mlp(d_in: int, hidden: tuple[int, ...], d_out: int) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for h in hidden:
        layers += [torch.nn.Linear(d_in, h), torch.nn.ReLU()]
        d_in = h
    layers.append(torch.nn.Linear(d_in, d_out))
    return torch.nn.Sequential(*layers)


class SeparableCritic(torch.nn.Module):
    """f(a, b) = g(a) · h(b) / sqrt(embed): returns the (B, B) matrix of scores f(a_i, b_j)."""

    def __init__(self, d_a: int, d_b: int, hidden: tuple[int, ...], embed: int) -> None:
        super().__init__()
        self.g, self.h = _mlp(d_a, hidden, embed), _mlp(d_b, hidden, embed)
        self.scale = 1.0 / math.sqrt(embed)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (self.g(a) @ self.h(b).T) * self.scale


def _split(n: int, train_fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    n_train = min(max(2, int(round(train_fraction * n))), n - 2)
    return perm[:n_train], perm[n_train:]


def critic_mi(
    a: Any,
    b: Any,
    *,
    objective: str = "infonce",
    hidden: tuple[int, ...] = (64,),
    embed: int = 32,
    epochs: int = 200,
    batch_size: int = 256,
    lr: float = 1e-3,
    train_fraction: float = 0.5,
    patience: int = 20,
    tau: float = 5.0,
    seed: int | None = 0,
    progress: bool = False,
    device: Any = None,
) -> CriticResult:
    """A neural critic bound on I(A;B) in bits, trained on ``train_fraction`` of the rows, reported on the rest.

    Rows are first put in a canonical order (sorted by value) and then split with ``seed``, so the result
    does not depend on the order of the rows. The critic (`SeparableCritic`, float32, on ``device`` or
    ``a``'s device) is trained with Adam on mini-batches of ``batch_size`` rows; after every epoch the
    objective is evaluated on the held-out rows in batches of ``batch_size`` and training stops after
    ``patience`` epochs without improvement; the held-out value of the best epoch's critic is returned.
    SMILE trains on the Jensen-Shannon bound (`js_bound`) and reports the clipped Donsker-Varadhan value
    (Song & Ermon 2020); epochs are then chosen by the held-out JS bound, so the reported value is not the
    maximum of a noisy sequence. On the CPU it trains on
    one thread (restored afterwards): faster for such small matrices. InfoNCE is then at most
    ln(batch_size) (less on a smaller last batch).

    Cost per epoch: O(N (d_a + d_b) · hidden + N · batch_size · embed) multiply-adds; at most ``epochs``
    epochs. Memory: the rows plus one (batch, batch) score matrix.

    Parameters
    ----------
    a, b : array-like or tensor, (N,) or (N, d)
        Paired samples (for class labels pass a one-hot matrix; `CriticEstimator` does it).
    objective : {"infonce", "nwj", "smile"}
    hidden, embed : MLP widths of g and h, and the embedding size.
    epochs, batch_size (>= 2), lr, train_fraction (in (0, 1)), patience (>= 1), tau (> 0, SMILE's clip).
    seed : int or None
    progress : bool
        Show a tqdm progress bar over epochs.

    Returns
    -------
    CriticResult (bits).
    """
    owner = "critic_mi"
    objective = check_choice(objective, "objective", owner, tuple(BOUND_KINDS))
    batch_size = check_int_param(batch_size, "batch_size", owner, minimum=2)
    train_fraction = check_float_param(train_fraction, "train_fraction", owner, positive=True)
    if not train_fraction < 1.0:
        raise param_error(owner, "train_fraction", "a float in (0, 1)", train_fraction)
    a_t, b_t, _ = _prepare(a, b, device)
    hp = _Hyper(objective, tuple(hidden), int(embed), int(epochs), batch_size, float(lr), int(patience),
                float(tau), train_fraction, seed, bool(progress))
    return _train(a_t, b_t, hp)


def _prepare(a: Any, b: Any, device: Any) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Checked float32 tensors on the device, rows in the canonical order (`critic_mi`), and that order."""
    a_t = as_tensor64(check_activations(_col(a), name="a"))
    n = int(a_t.shape[0])
    b_t = as_tensor64(check_continuous(b, n, name="b"))
    if n < 4:
        raise ValueError(f"a must have at least 4 rows (2 to train, 2 to evaluate). Got {n}.")
    order = canonical_order(a_t.cpu().numpy(), b_t.cpu().numpy())
    dev = torch.device(device) if device is not None else a_t.device
    rows = torch.as_tensor(order)
    return a_t.cpu()[rows].float().to(dev), b_t.cpu()[rows].float().to(dev), order


def _col(a: Any) -> Any:
    return a[:, None] if getattr(a, "ndim", np.ndim(a)) == 1 else a


@dataclass(frozen=True)
class _Hyper:
    objective: str
    hidden: tuple[int, ...]
    embed: int
    epochs: int
    batch_size: int
    lr: float
    patience: int
    tau: float
    train_fraction: float
    seed: int | None
    progress: bool


def _train(a: torch.Tensor, b: torch.Tensor, hp: _Hyper) -> CriticResult:
    return _train_run(a, b, hp).result


def _train_run(a: torch.Tensor, b: torch.Tensor, hp: _Hyper, init: dict | None = None,
               split: tuple | None = None) -> Run:
    """One training run (`Run`: the result, (the best critic's weights, the held-out positions), the held-out
    objective and its standard error), from the seeded initialisation or from ``init`` (a previous run's
    weights: a warm start); ``split``: (train, held-out) positions to use instead of the seeded split."""
    # Small matrices: one CPU thread is faster than several, and far faster on a loaded machine (threads
    # that wait for each other); the caller's setting is restored afterwards.
    with torch_threads(1 if a.device.type == "cpu" else None):
        return _train_loop(a, b, hp, init, split)


def _train_loop(a: torch.Tensor, b: torch.Tensor, hp: _Hyper, init: dict | None, split: tuple | None) -> Run:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    gen = torch.Generator()
    gen.manual_seed(0 if hp.seed is None else int(hp.seed))
    tr, te = _split(a.shape[0], hp.train_fraction, gen)  # drawn even when given: the generator stays in step
    tr, te = split if split is not None else (tr, te)
    tr, te = tr.to(a.device), te.to(a.device)
    with seeded_global_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen))):  # one thread at a time
        critic = SeparableCritic(a.shape[1], b.shape[1], hp.hidden, hp.embed).to(a.device)
    if init is not None:  # a warm start: the previous epoch's critic (the seeded draw above keeps the RNG in step)
        critic.load_state_dict(init)
    opt = torch.optim.Adam(critic.parameters(), lr=hp.lr, foreach=True)  # one kernel per step: same bits
    best, best_value, best_state, best_epoch, epoch = -math.inf, -math.inf, None, 0, 0
    history: list[float] = []  # held-out value per epoch (nats)
    bar = tqdm(range(hp.epochs), desc=f"critic {hp.objective}", disable=not hp.progress, leave=False)
    for epoch in bar:  # loop over epochs; each epoch is a loop over mini-batches
        critic.train()
        for idx in batches(tr.numel(), hp.batch_size, gen):
            rows = tr[idx.to(a.device)]
            loss = -train_objective(critic(a[rows], b[rows]), hp.objective, hp.tau)
            opt.zero_grad()
            loss.backward()
            opt.step()
        critic.eval()
        crit, value = evaluate(critic, a[te], b[te], hp.objective, hp.tau, hp.batch_size)
        bar.set_postfix(held_out_bits=f"{value / LN2:.3f}")
        history.append(value)
        if crit > best:  # early stopping on the held-out training objective (JS for SMILE)
            best, best_value, best_epoch = crit, value, epoch
            best_state = {k: v.detach().clone() for k, v in critic.state_dict().items()}
        elif epoch - best_epoch >= hp.patience:
            break
    bar.close()
    critic.load_state_dict(best_state)
    critic.eval()
    train_value = evaluate(critic, a[tr], b[tr], hp.objective, hp.tau, hp.batch_size)[1]
    se, objective_se, log_z = held_out_stats(critic, a[te], b[te], hp.objective, hp.tau, hp.batch_size)
    cap = math.log(min(hp.batch_size, te.numel())) / LN2 if hp.objective == "infonce" else math.inf
    converged = epoch - best_epoch >= hp.patience  # early stopping ended it (else the budget ran out)
    result = CriticResult(
        value=best_value / LN2, bound=BOUND_KINDS[hp.objective], objective=hp.objective, train_value=train_value / LN2,
        cap=cap, epochs=epoch + 1, best_epoch=best_epoch + 1, seconds=time.perf_counter() - start,
        n_train=int(tr.numel()), n_test=int(te.numel()), se=se / LN2, converged=converged,
        rise=0.0 if converged else _rise(history, hp.patience) / LN2, log_partition=log_z,
    )
    return Run(result=result, state=(best_state, te), objective=best, se=objective_se, epochs=epoch + 1,
               stopped_early=converged)


def _rise(history: list[float], patience: int) -> float:
    """How much the best held-out value of the last ``patience`` epochs exceeds the best before them (>= 0;
    the whole rise from the first epoch when there were no more epochs than that)."""
    if len(history) <= patience:
        return max(max(history) - history[0], 0.0)
    return max(max(history[-patience:]) - max(history[:-patience]), 0.0)


class CriticEstimator(BaseEstimator):
    """I(T;Y) of a layer from a neural critic (InfoNCE, NWJ or SMILE), in bits; I(T;X) not reported (NaN).

    The critic scores (activations, one-hot label) pairs (`critic_mi`); ``I_TY`` is its held-out value,
    clipped to [0, H(Y)] (raw value in ``conventions["I_TY_raw"]``, ``conventions["clipped"]`` says when: SMILE
    is an estimate, not a bound; trained on its own clipped objective it overshot H(Y) by millions of bits on
    many small classes, and the cap stays as a guard), labelled ``"lower"`` (InfoNCE, NWJ) or
    ``"estimate"`` (SMILE). With class labels, InfoNCE cannot exceed the batch's label entropy (≈ H(Y))
    nor ln(batch_size). ``I_XT`` is NaN with the reason in ``conventions["I_XT_note"]``.

    Self-check (`infoplane.estimators._kernels.reliability`, no extra training): ``conventions["reliable"]``
    is False, with the reasons in ``reliability_note``, when the critic over-fits (its value on the training
    rows, ``train_value_bits``, exceeds the held-out one by more than ``reliability_tol``, 0.25 bits:
    ``overfit_gap_bits``), when the held-out value is within 2 standard errors of 0 (``I_TY_se``; nothing
    found), when 2 SE exceed the tolerance, or when the epoch budget ran out while the held-out value still
    rose by more than 2 SE over the last ``patience`` epochs (``converged``, ``still_rising_bits``); SMILE
    also when its critic is not self-normalised: SMILE reports E_p[f] − ln Z, Z the (clipped) mean of e^f over
    the product of the marginals, which is 1 for the critic its JS training aims at (the log density ratio);
    abs(ln Z) above the tolerance (``log_partition_bits``) means the critic is not that ratio and E_p[f] and
    the reported value, two readings of the same critic, disagree by that much. Costs one more pass over the
    held-out rows.

    Cost: at most ``epochs`` epochs of a two-MLP critic on ``train_fraction`` · N rows (see `critic_mi`);
    about a second per 10 epochs at N = 4,096, d = 100 on 2 CPU cores.

    Parameters
    ----------
    objective : {"infonce", "nwj", "smile"}
    hidden, embed, epochs, batch_size, lr, train_fraction, patience, tau, seed, progress
        As in `critic_mi`.
    device : str or None
        Where the critic trains (default: the device of the activations).
    warm_start : bool
        In `information_plane`, start each epoch's critic from the one reached at the previous recorded epoch
        of the same run and layer (default True), kept only when it passes the held-out check of
        `infoplane.estimators._kernels.warm` (a cold start trained for as many epochs must not beat it by
        more than its standard error; otherwise the cold estimate is reported). The held-out rows of the
        chain's first epoch stay held out at every later epoch (row i the same input at every epoch, as
        `information_plane` passes them), so no critic is scored on rows it was trained on.
        ``conventions["warm_start"]`` says whether this estimate was warm-started, ``conventions["warm_check"]``
        what the check found (objectives in nats).
    """

    name = "critic"
    y_kinds = ("labels",)
    supports_warm_start = True

    def __init__(
        self,
        objective: str = "infonce",
        *,
        hidden: tuple[int, ...] = (64,),
        embed: int = 32,
        epochs: int = 200,
        batch_size: int = 256,
        lr: float = 1e-3,
        train_fraction: float = 0.5,
        patience: int = 20,
        tau: float = 5.0,
        seed: int | None = 0,
        progress: bool = False,
        device: str | None = None,
        warm_start: bool = True,
    ) -> None:
        owner = "CriticEstimator"
        self.objective = check_choice(objective, "objective", owner, tuple(BOUND_KINDS))
        if not (isinstance(hidden, tuple) and all(isinstance(h, int) and h >= 1 for h in hidden)):
            raise param_error(owner, "hidden", "a tuple of ints >= 1", hidden)
        self.hidden = hidden
        self.embed = check_int_param(embed, "embed", owner, minimum=1)
        self.epochs = check_int_param(epochs, "epochs", owner, minimum=1)
        self.batch_size = check_int_param(batch_size, "batch_size", owner, minimum=2)
        self.lr = check_float_param(lr, "lr", owner, positive=True)
        self.train_fraction = check_float_param(train_fraction, "train_fraction", owner, positive=True)
        if not self.train_fraction < 1.0:
            raise param_error(owner, "train_fraction", "a float in (0, 1)", train_fraction)
        self.patience = check_int_param(patience, "patience", owner, minimum=1)
        self.tau = check_float_param(tau, "tau", owner, positive=True)
        self.seed = None if seed is None else check_int_param(seed, "seed", owner)
        self.progress = bool(progress)
        if device is not None:
            check_device(device, "device", owner)  # a device this torch cannot use fails here, not mid-fit
        self.device = device
        self.warm_start = bool(warm_start)

    def conventions(self) -> dict[str, Any]:
        out = {k: v for k, v in self.get_params().items() if k not in ("progress", "device")}
        return json_safe({"estimator": self.name, **out, "bound": BOUND_KINDS[self.objective],
                          "critic": "separable MLP g(t).h(y)", "I_XT_note": NO_I_XT})

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """I(T;Y) in bits for activations ``t`` (N, d) and class labels ``y``; ``x`` unused."""
        return self.estimate_with_state(t, y, x, layer=layer, epoch=epoch)[0]

    def estimate_with_state(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, state: Any = None,
                            **kwargs: Any) -> tuple[MIResult, Any]:
        """`estimate`, the critic warm-started from ``state`` (the previous epoch's critic, checked against a
        cold start: class docstring), and the state to pass on; keywords ``layer`` and ``epoch``."""
        layer, epoch = kwargs.pop("layer", None), kwargs.pop("epoch", None)
        if kwargs:
            raise TypeError(f"CriticEstimator.estimate_with_state got unexpected keywords {sorted(kwargs)}.")
        t, y_np, _, n = check_estimate_inputs(t, y, x, layer=layer, epoch=epoch)  # x unused but checked
        _, y_ids = np.unique(y_np, return_inverse=True)
        onehot = np.eye(int(y_ids.max()) + 1)[y_ids.reshape(-1)]
        a_t, b_t, order = _prepare(t, onehot, self.device)
        hp = _Hyper(self.objective, tuple(self.hidden), self.embed, self.epochs, self.batch_size, self.lr,
                    self.patience, self.tau, self.train_fraction, self.seed, self.progress)
        shapes, ids = (int(a_t.shape[1]), int(b_t.shape[1])), y_ids.reshape(-1)
        split = chain_split(state, order, ids, shapes, a_t.device) if self.warm_start else None
        warm = None if split is None else state["weights"]  # the chain's held-out rows stay held out
        run, info = warm_or_cold(lambda init, budget: _train_run(a_t, b_t, replace(hp, epochs=budget), init, split),
                                 warm, self.epochs)
        res = run.result
        conv = self.conventions()
        h_y = entropy_bits(np.bincount(y_ids.reshape(-1)))
        # I(T;Y) <= H(Y) for class labels; SMILE (an estimate, not a bound) may still exceed it (less since it
        # trains on the JS bound). Report the value within [0, H(Y)], say so, keep the raw value.
        value = min(max(res.value, 0.0), h_y)
        clipped = None if value == res.value else ("at 0" if res.value < 0 else "at H(Y)")
        conv.update(n_samples=n, n_units=int(t.shape[1]), units="bits", I_TY_raw=res.value, clipped=clipped,
                    train_value_bits=res.train_value, cap_bits=res.cap, epochs_run=res.epochs,
                    best_epoch=res.best_epoch, n_train=res.n_train, n_test=res.n_test, H_Y_bits=h_y,
                    I_TY_se=res.se, overfit_gap_bits=res.train_value - res.value, converged=res.converged,
                    still_rising_bits=res.rise, **info)
        notes = R.learned_bound_notes(res.value, res.train_value, res.se, self.reliability_tol,
                                      converged=res.converged, rise=res.rise)
        if self.objective == "smile":
            conv["log_partition_bits"] = res.log_partition
            notes += R.smile_notes(res.log_partition, self.reliability_tol)
        conv.update(R.verdict(notes))
        return (MIResult(I_XT=math.nan, I_TY=value, bound_XT="estimate", bound_TY=res.bound,
                         estimator=self.name, n_samples=n, conventions=json_safe(conv)),
                chain_state(run.state[0], run.state[1], order, ids, shapes))

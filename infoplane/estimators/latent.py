"""Latent mutual information (LMI, Gowri et al. 2024): I(T;Y) of wide layers through learned low-dimensional codes.

Each continuous side is compressed by a cross-predictive autoencoder to ``latent_dim`` coordinates (class labels
stay labels; a continuous y no wider than ``latent_dim`` is kept as it is), trained on one part of the rows with
early stopping on the other; then KSG (continuous y) or Ross (labels) is run on the held-out latents. As the
encoders are fixed functions of T (and Y) on the held-out rows, I(Z_T; Z_Y) <= I(T;Y) by the data-processing
inequality, with equality when the codes keep everything the two sides share.

Known failure (the paper's, section 5): the cross-prediction losses are mean squared errors, so the encoders
only learn dependence that moves the conditional mean. When E[T|Y] = E[T] and E[Y|T] = E[Y] (symmetric
dependence: a ring, a variance that depends on the other side), the codes need not keep the shared information
and the estimate can fall far below the truth. The estimator measures how much of each held-out latent the
other side predicts (``cross_r2``); when neither direction predicts anything it reports ``reliable=False`` with
the reason (a true zero is then flagged too: LMI cannot tell it from the failure).

References
----------
Gowri, Lun, Klein & Yin (2024), Approximating mutual information of high-dimensional variables using learned
representations, NeurIPS (arXiv:2409.02732).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .._core.threads import torch_threads
from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.units import entropy_bits
from .._core.validation import (
    check_activations,
    check_choice,
    check_class_sizes,
    check_continuous,
    check_float_param,
    check_input_ids,
    check_int_param,
    check_labels,
    param_error,
    where,
)
from ._base import BaseEstimator
from ._kernels.latent import LatentHyper, _skill, fit_latents, split_rows
from ._kernels.rows import NO_I_XT, as_numpy, canonical_order
from ._kernels.warm import Run, chain_split, chain_state, warm_or_cold
from .knn import ksg_mi, ross_mi

__all__ = ["LatentMIEstimator", "latent_mi"]

_TARGETS = ("labels", "continuous")


def _standardise(a: np.ndarray) -> np.ndarray:
    """Columns to mean 0 and variance 1 (constant columns to 0), as float32."""
    a = np.asarray(a, dtype=np.float64)
    sd = a.std(axis=0)
    return ((a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


class LatentMIEstimator(BaseEstimator):
    """Latent MI (Gowri et al. 2024): k-NN mutual information between learned codes of T and Y, in bits.

    1. Rows are put in a canonical order and split with ``seed`` (stratified by class for labels): a fraction
       ``holdout`` is held out. Columns are standardised.
    2. A cross-predictive autoencoder is trained on the other rows (Adam, mini-batches of ``batch_size``; loss =
       reconstruction MSE + ``cross_weight`` × (MSE of predicting each side's code from the other's; for labels
       the T→Y predictor is a softmax classifier, cross-entropy)), stopping after ``patience`` epochs without
       improvement of the held-out loss (best weights restored). T's code has ``latent_dim`` unit-variance
       coordinates; a continuous y is encoded likewise when wider than ``latent_dim``, else kept (standardised).
    3. ``I_TY`` = KSG(Z_T, Z_Y) (`ksg_mi`, ``target="continuous"``) or Ross(Z_T, y) (`ross_mi`, labels) on the
       held-out rows, clipped to [0, H(Y)] for labels (raw value in ``conventions["I_TY_raw"]``).

    ``bound_TY="estimate"``: I(Z_T;Z_Y) <= I(T;Y) by the data-processing inequality, but its k-NN estimate has its
    own bias. ``I_XT`` is NaN (``conventions["I_XT_note"]``). ``conventions["reliable"]`` is False, with the reason
    in ``conventions["reliability_note"]``, when neither held-out cross-prediction explains at least
    ``min_skill`` of the other side's code (``cross_r2_ty``, ``cross_r2_yt``; labels: the held-out Barber–Agakov
    bound H(Y) − CE as a fraction of H(Y)): then the codes were not shaped by any dependence, which is LMI's known
    failure under symmetric dependence (E[T|Y] = E[T]) as much as a true zero; it is also False when the k-NN
    stage breaks `knn_dimension_rule` (2^D > n_test / k, D = ``latent_dim`` + the columns of y's code).

    Cost: at most ``max_epochs`` epochs, each O(N (d + d_y) · hidden + N hidden²) multiply-adds in float32 (on
    ``device``, default the device of ``t``), then one k-NN estimate on ``holdout`` · N rows of ``latent_dim``
    (+ d_y) columns, O((holdout N)² latent_dim). Memory O(N d) for the standardised copy plus the network
    (O(d · hidden) weights). Measured in benchmarks/bench_latent.py (docs/notes/wide_layers.md).

    Parameters
    ----------
    latent_dim : int >= 1
        Coordinates of T's code (default 8, the paper's); at most the width of t.
    target : {"labels", "continuous"}
        Class labels (Ross on the code) or a real-valued y of shape (N,) or (N, k) (KSG on both codes).
    k : int >= 1
        Neighbours of the k-NN estimate.
    hidden : int >= 1
        Width of the hidden layers (two per encoder, decoder and cross-predictor).
    max_epochs, patience, batch_size (>= 2), lr (> 0), cross_weight (> 0)
        Training; ``patience`` epochs without a better held-out loss stop it.
    holdout : float in (0, 1)
        Fraction of rows held out for early stopping and the estimate.
    min_skill : float in [0, 1)
        Held-out cross-prediction skill below which the result says ``reliable=False``.
    seed : int
        Seeds the split, the initial weights and the mini-batches (the global torch RNG is left untouched).
    device : str or None
        Where the autoencoders train (default: the device of ``t``).
    progress : bool
        A tqdm progress bar over the training epochs.
    warm_start : bool
        In `information_plane`, start each epoch's autoencoders from those reached at the previous recorded
        epoch of the same run and layer (default True), kept only when they pass the held-out check of
        `infoplane.estimators._kernels.warm`: a cold start trained for as many epochs must not reach a higher
        held-out cross-prediction skill (the larger of ``cross_r2_ty`` and ``cross_r2_yt``; for labels the
        held-out Barber–Agakov bound of the code as a fraction of H(Y)) by more than its standard error,
        otherwise the cold estimate is reported. Not the training loss: a collapsed code (constant latents)
        scored within 0.003 of a trained one's held-out loss while carrying no information. The held-out rows
        of the chain's first epoch stay held out at every later epoch (row i the same input at every epoch, as
        `information_plane` passes them), so no code is scored on rows its encoder was trained on.
        ``conventions["warm_start"]`` says whether this estimate was warm-started, ``conventions["warm_check"]``
        what the check found.
    """

    name = "latent"
    supports_warm_start = True

    def __init__(
        self,
        latent_dim: int = 8,
        *,
        target: str = "labels",
        k: int = 3,
        hidden: int = 128,
        max_epochs: int = 200,
        patience: int = 10,
        batch_size: int = 256,
        lr: float = 1e-3,
        cross_weight: float = 1.0,
        holdout: float = 0.5,
        min_skill: float = 0.02,
        seed: int = 0,
        device: str | None = None,
        progress: bool = False,
        warm_start: bool = True,
    ) -> None:
        owner = "LatentMIEstimator"
        self.latent_dim = check_int_param(latent_dim, "latent_dim", owner, minimum=1)
        self.target = check_choice(target, "target", owner, _TARGETS)
        self.k = check_int_param(k, "k", owner, minimum=1)
        self.hidden = check_int_param(hidden, "hidden", owner, minimum=1)
        self.max_epochs = check_int_param(max_epochs, "max_epochs", owner, minimum=1)
        self.patience = check_int_param(patience, "patience", owner, minimum=1)
        self.batch_size = check_int_param(batch_size, "batch_size", owner, minimum=2)
        self.lr = check_float_param(lr, "lr", owner, positive=True)
        self.cross_weight = check_float_param(cross_weight, "cross_weight", owner, positive=True)
        self.holdout = check_float_param(holdout, "holdout", owner, positive=True)
        if not self.holdout < 1.0:
            raise param_error(owner, "holdout", "a float in (0, 1)", holdout)
        self.min_skill = check_float_param(min_skill, "min_skill", owner, minimum=0.0)
        if not self.min_skill < 1.0:
            raise param_error(owner, "min_skill", "a float in [0, 1)", min_skill)
        self.seed = check_int_param(seed, "seed", owner, minimum=0)
        self.device = device
        self.progress = bool(progress)
        self.warm_start = bool(warm_start)

    @property
    def y_kinds(self) -> tuple[str, ...]:
        """What ``y`` it takes (the ground-truth suite skips other tasks)."""
        return (self.target,)

    def conventions(self) -> dict[str, Any]:
        """Every parameter that changes the answer (``device`` and ``progress`` do not), and the method."""
        out = {k: v for k, v in self.get_params().items() if k not in ("device", "progress")}
        form = "Ross 2014" if self.target == "labels" else "KSG algorithm 1"
        return json_safe({"estimator": self.name, **out, "form": f"LMI (Gowri et al. 2024): {form} on held-out codes",
                          "I_XT_note": NO_I_XT})

    # ---------------------------------------------------------------------------------------------
    def _check(self, t: Any, y: Any, layer: str | None, epoch: int | None) -> tuple[np.ndarray, np.ndarray]:
        owner = "LatentMIEstimator"
        t = as_numpy(check_activations(t, name="t", layer=layer, epoch=epoch))
        n, d = int(t.shape[0]), int(t.shape[1])
        if self.latent_dim > d:
            raise param_error(owner, "latent_dim", f"at most the width of {where('t', layer, epoch)} ({d} columns)",
                              self.latent_dim)
        y_arr = as_numpy(y)
        is_int = np.issubdtype(y_arr.dtype, np.integer) or y_arr.dtype == bool
        if self.target == "labels" and not is_int:
            raise TypeError(f"y must hold integer class labels. Got dtype {y_arr.dtype} ({owner}(target='labels'); "
                            "for a real-valued y use target='continuous').")
        if self.target == "continuous" and is_int:
            raise TypeError(f"y holds integers (dtype {y_arr.dtype}), which look like class labels; "
                            f"{owner}(target='continuous') needs a real-valued y: use target='labels', or pass "
                            "y.astype(float) if the values are measurements.")
        y_np = check_labels(y_arr, n) if self.target == "labels" else check_continuous(y_arr, n)
        n_test = round(n * self.holdout)
        if n_test < self.k + 1 or n - n_test < 2:
            raise ValueError(
                f"t has {n:,} rows; {owner}(holdout={self.holdout}, k={self.k}) needs at least {self.k + 1} held-out "
                f"rows for the k-NN estimate and 2 training rows. Got {n_test} held out and {n - n_test} to train."
            )
        if self.target == "labels":
            need = math.ceil((self.k + 1) / self.holdout) + 1
            check_class_sizes(y_np, need, owner, f"every class needs k + 1 = {self.k + 1} held-out rows")
        return t, y_np

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """I(T;Y) in bits for activations ``t`` (N, d) and ``y`` (labels or real-valued); ``x`` unused."""
        return self.estimate_with_state(t, y, x, layer=layer, epoch=epoch)[0]

    def estimate_with_state(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, state: Any = None,
                            **kwargs: Any) -> tuple[MIResult, Any]:
        """`estimate`, the autoencoders warm-started from ``state`` (the previous epoch's, checked against a
        cold start: class docstring), and the state to pass on; keywords ``layer`` and ``epoch``."""
        layer, epoch = kwargs.pop("layer", None), kwargs.pop("epoch", None)
        if kwargs:
            raise TypeError(f"LatentMIEstimator.estimate_with_state got unexpected keywords {sorted(kwargs)}.")
        t_np, y_np = self._check(t, y, layer, epoch)
        n = int(t_np.shape[0])
        check_input_ids(x, n)  # unused, but a malformed x is still an error
        labels = self.target == "labels"
        order = canonical_order(t_np[:, :16], y_np)
        y_in, (t_np, y_np) = y_np, (t_np[order], y_np[order])
        dev = torch.device(self.device) if self.device is not None else (
            t.device if isinstance(t, torch.Tensor) else torch.device("cpu"))
        a = torch.as_tensor(_standardise(t_np), device=dev)
        h_y = 0.0
        if labels:
            _, ids = np.unique(y_np, return_inverse=True)
            b = torch.as_tensor(ids.reshape(-1).astype(np.int64), device=dev)
            h_y, b_mode = entropy_bits(np.bincount(ids.reshape(-1))), "labels"
        else:
            b = torch.as_tensor(_standardise(y_np), device=dev)
            b_mode = "encode" if y_np.shape[1] > self.latent_dim else "keep"
        hp = LatentHyper(self.latent_dim, self.hidden, self.max_epochs, self.patience, self.batch_size, self.lr,
                         self.cross_weight, self.seed, self.progress)
        gen = torch.Generator().manual_seed(self.seed)
        train, test = split_rows(n, b.cpu() if labels else None, self.holdout, gen)
        shapes = (int(a.shape[1]), int(b.max()) + 1 if labels else int(b.shape[1]), b_mode)
        chain = chain_split(state, order, y_in, shapes, "cpu") if self.warm_start else None
        if chain is not None:  # a warm start: the chain's held-out rows stay held out
            train, test = chain
        warm = None if chain is None else state["weights"]
        # Small matrices: one CPU thread is faster than several on a shared machine (as for the critics).
        with torch_threads(1 if dev.type == "cpu" else None):
            fit, warm_info, weights = self._fit(a, b, b_mode, train.to(dev), test.to(dev), hp, h_y, warm)
        new_state = chain_state(weights, test, order, y_in, shapes)
        z_a = fit.z_a.double().cpu().numpy()
        if labels:
            raw = ross_mi(z_a, y_np[test.numpy()], self.k)
            value = min(max(raw, 0.0), h_y)
        else:
            raw = ksg_mi(z_a, fit.z_b.double().cpu().numpy(), self.k)
            value = max(raw, 0.0)
        clipped = None if value == raw else ("at 0" if raw < 0 else "at H(Y)")
        return self._result(t_np, n, raw, value, clipped, fit, b_mode, h_y, warm_info), new_state

    def _fit(self, a: torch.Tensor, b: torch.Tensor, b_mode: str, train: torch.Tensor, test: torch.Tensor,
             hp: LatentHyper, h_y: float, warm: Any) -> tuple[Any, dict, dict]:
        """`fit_latents`, warm-started from the weights ``warm`` (`warm_or_cold`): (fit, info, weights reached)."""

        def train_run(init: Any, budget: int) -> Run:
            fit = fit_latents(a, b, b_mode, train, test, replace(hp, max_epochs=budget), h_b=h_y, init=init)
            se = _skill_se(fit.model, a[test], b[test], h_y)
            return Run(result=fit, state=fit.model.state_dict(), objective=max(fit.r2_ab, fit.r2_ba), se=se,
                       epochs=fit.epochs, stopped_early=fit.epochs < budget)

        run, info = warm_or_cold(train_run, warm, self.max_epochs)
        return run.result, info, run.state

    def _result(self, t_np: np.ndarray, n: int, raw: float, value: float, clipped: str | None, fit: Any,
                b_mode: str, h_y: float, warm_info: dict) -> MIResult:
        skill = max(fit.r2_ab, fit.r2_ba)
        notes = [] if skill >= self.min_skill else [
            f"neither held-out cross-prediction explains {self.min_skill:.0%} of the other side's code "
            f"(best {skill:.3f}): the codes were not shaped by any dependence of the conditional mean, so a "
            "symmetric dependence (E[T|Y] = E[T]) may be missed; the estimate may be far below I(T;Y)"]
        from .sample_size import knn_dimension_rule

        # the k-NN stage sees the codes: latent_dim (+ y's code or y itself for KSG) dimensions, n_test rows
        dims = self.latent_dim + (0 if fit.z_b is None else int(fit.z_b.shape[1]))
        rule = knn_dimension_rule(int(fit.z_a.shape[0]), dims, self.k)
        notes += [rule] if rule else []
        reliable, note = not notes, ("; ".join(notes) if notes else None)
        conv = self.conventions()
        conv.update(n_samples=n, n_units=int(t_np.shape[1]), units="bits", I_TY_raw=raw, clipped=clipped,
                    reliable=reliable, reliability_note=note, cross_r2_ty=fit.r2_ab, cross_r2_yt=fit.r2_ba,
                    y_code="labels" if b_mode == "labels" else ("encoded" if b_mode == "encode" else "kept"),
                    epochs_run=fit.epochs, best_epoch=fit.best_epoch, held_out_loss=fit.held_out_loss,
                    n_test=int(fit.z_a.shape[0]), n_train=n - int(fit.z_a.shape[0]), **warm_info)
        if b_mode == "labels":
            conv["H_Y_bits"] = h_y
        return MIResult(I_XT=math.nan, I_TY=value, bound_XT="estimate", bound_TY="estimate", estimator=self.name,
                        n_samples=n, conventions=json_safe(conv))


def _skill_se(model: Any, a: torch.Tensor, b: torch.Tensor, h_b: float, parts: int = 8) -> float:
    """Standard error of the held-out cross-prediction skill (the larger of ``cross_r2_ty`` and
    ``cross_r2_yt``): its spread over ``parts`` interleaved slices of the held-out rows, / √parts."""
    n = int(a.shape[0])
    if n < 4 * parts:
        return 0.0
    skills = [max(_skill(model, a[k::parts], b[k::parts], h_b)) for k in range(parts)]  # a few vectorised passes
    return float(np.std(skills, ddof=1) / math.sqrt(parts))


def latent_mi(t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None,
              **params: Any) -> MIResult:
    """Latent MI estimate of I(T;Y) in bits (the functional twin of `LatentMIEstimator`; ``params`` as its).

    ``latent_mi(t, y, target="continuous")`` for two real-valued arrays; the number is ``.I_TY`` and
    ``.conventions["reliable"]`` says whether to trust it.
    """
    return LatentMIEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)

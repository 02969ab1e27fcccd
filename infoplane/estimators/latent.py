"""Latent mutual information (LMI, Gowri et al. 2024): I(T;Y) of wide layers through learned low-dimensional codes.

Each continuous side is first reduced, losslessly, to its numerical rank (a layer that spans r < d directions is
rotated onto them); a side of rank at most ``latent_dim`` is its own code. A wider side is compressed by a
cross-predictive autoencoder to ``latent_dim`` coordinates (class labels stay labels), trained on one part of
the rows with early stopping on the other; its cross-predictions (continuous y) or a shrinkage linear
discriminant code (labels) compete with its codes.
Then KSG (continuous y) or Ross (labels) is run on the held-out codes (on all rows when no code was learned),
and two bounds that need no neighbour counts compete with it: for a continuous y the residual bound
h(B) − h_G(Cov(B − f(A))) of either side's code given a least-squares prediction from the other's
(`_kernels.residual_bound`: exact for additive Gaussian noise, where KSG undershoots strong dependence), for
labels the held-out Barber–Agakov bound H(Y) − CE of each code's classifier. The largest wins.
As the encoders are fixed functions of T (and Y) on the held-out rows, I(Z_T; Z_Y) <= I(T;Y) by the
data-processing inequality, with equality when the codes keep everything the two sides share.

Known failure (the paper's, section 5): the cross-prediction losses are mean squared errors, so the encoders
only learn dependence that moves the conditional mean. When E[T|Y] = E[T] and E[Y|T] = E[Y] (symmetric
dependence: a ring, a variance that depends on the other side), the codes need not keep the shared information
and the estimate can fall far below the truth. The estimator measures how much of each held-out code the
other side predicts (``cross_r2``); when no code predicts anything it reports ``reliable=False`` with the
reason (a true zero is then flagged too: LMI cannot tell it from the failure). It also says when the number is
not converged: the k-NN stage still rising with the rows, or the codes still improving with the training rows.

References
----------
Gowri, Lun, Klein & Yin (2024), Approximating mutual information of high-dimensional variables using learned
representations, NeurIPS (arXiv:2409.02732).
"""
from __future__ import annotations

import math
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
from ._kernels import reliability as R
from ._kernels.latent import LatentHyper, fit_latents, split_rows
from ._kernels.latent_linear import lda_code, reduce_columns
from ._kernels.residual_bound import residual_bound, residual_gap, ridge_predictions
from ._kernels.rows import NO_I_XT, as_numpy, canonical_order
from ._latent_candidates import Choice, convergence_curve, knn_bits, parts, pick

__all__ = ["LatentMIEstimator", "latent_mi"]

_TARGETS = ("labels", "continuous")
_DEFAULT_LATENT = 8  # the paper's
#: Bits per doubling of the rows by which an estimate may still rise before it is called unconverged: the k-NN
#: estimate on fixed codes (more rows to estimate on) and the codes (more rows to learn them from). Both approach
#: their limit slowly, as n^-a with a of about 0.2 to 0.5, so the shortfall left after a doubling that gained g is
#: about 1.4 g to 6 g: 0.05 bits keeps it near or below 0.25 bits.
MAX_GAIN = 0.05
#: The same for the residual bound (`residual_bound`), in either direction: its shortfall from a finite sample
#: (least-squares and covariance estimates) decays as 1/n, so what is left after a doubling that gained g is
#: about g; a bound that falls with the rows has an entropy term biased upward.
RESIDUAL_GAIN = 0.1


class LatentMIEstimator(BaseEstimator):
    """Latent MI (Gowri et al. 2024): k-NN mutual information between learned codes of T and Y, in bits.

    1. Rows are put in a canonical order. Each continuous side is standardised and, when its numerical rank r
       (singular values above max(N, d) · eps(float32) · σ_max) is below its width, rotated onto its r
       principal axes: an isometry of the rows, so nothing is lost (a linear embedding of an r-dimensional
       signal becomes the signal; directions below the float32 rounding level are dropped). A side with
       r <= ``latent_dim`` is kept as its own code (axes scaled to unit variance). When T and a continuous y
       are both kept, or T is kept and y holds labels, nothing is learned and step 3 uses all rows.
    2. Otherwise the rows are split with ``seed`` (stratified by class for labels), a fraction ``holdout`` held
       out, and a cross-predictive autoencoder is trained on the others (Adam, mini-batches of ``batch_size``;
       loss = reconstruction MSE + ``cross_weight`` × (MSE of predicting each side's code from the other's; for
       labels the T→Y predictor is a softmax classifier, cross-entropy)), stopping after ``patience`` epochs
       without improvement of the held-out loss (best weights restored; the codes' batch-norm statistics are
       those of all training rows). Wide sides get ``latent_dim`` unit-variance coordinates. For a continuous
       y the cross-predictions compete as codes (T's code's prediction of y's code, and y's code's prediction
       of T's, or y itself when it is kept: functions of T and of y alone, concentrated on what the two
       share). For labels a second code competes: shrinkage linear discriminant analysis (min(K − 1, ``latent_dim``) coordinates;
       the autoencoder overfits when the training rows are few against the width). The same is done with
       codes trained on half the training rows (``conventions["I_TY_half_train"]``), for the convergence check.
    3. Candidates on the held-out (or all) rows, the largest wins (``conventions["candidates"]``, bits, and
       ``["chosen"]``; a choice between estimates on the same rows can add about one standard deviation, some
       0.03 bits on 1,000 rows):

       - k-NN: KSG(Z_T, Z_Y) (`ksg_mi`, ``target="continuous"``; ``"knn"`` or ``"autoencoder"``, and
         ``"prediction"`` between the cross-predictions) or Ross(Z_T, y) (`ross_mi`, labels; ``"autoencoder"``
         and ``"linear"``, the LDA code);
       - continuous y, ``"residual_ty"`` / ``"residual_yt"``: I >= h(B') − h_G(Cov(B' − f(F))) for one side's
         code B given features F of the other (its code, and its cross-prediction when learned), both sides
         rank-gaussianized per coordinate, f least squares cross-fitted on two halves of the rows, h(B') =
         h_G − negentropy, the negentropy by k-NN entropies against Gaussian surrogates (`residual_bound`;
         parts in ``conventions["residual"]``). Exact for additive Gaussian noise on a regression, where KSG in
         several dimensions undershoots (5 Gaussian pairs at 3.68 bits: KSG 2.69, this bound 3.63 on 2,000
         rows); a bound, however loose, otherwise;
       - labels, ``"ba_autoencoder"`` / ``"ba_linear"``: the held-out Barber–Agakov bound H(Y) − CE (bits) of
         the autoencoder's softmax head and of the LDA posterior.

       ``I_TY`` is the winner, clipped to [0, H(Y)] for labels (raw value in ``conventions["I_TY_raw"]``). A
       k-NN or residual winner is estimated again on disjoint halves and quarters of these rows for its gain per
       doubling of the rows (``knn_gain``).

    ``bound_TY="estimate"``: I(Z_T;Z_Y) <= I(T;Y) by the data-processing inequality, but its k-NN, residual
    (negentropy) and Barber–Agakov (held-out mean) estimates have their own errors. ``I_XT`` is NaN (``conventions["I_XT_note"]``). ``conventions["reliable"]`` is False, with the
    reasons in ``conventions["reliability_note"]``, when

    - no held-out cross-prediction explains at least ``min_skill`` of the other side's code (``cross_r2_ty``,
      ``cross_r2_yt``; labels: the held-out Barber–Agakov bound H(Y) − CE as a fraction of H(Y), also of the
      linear code): the codes were not shaped by any dependence, which is LMI's known failure under symmetric
      dependence (E[T|Y] = E[T]) as much as a true zero;
    - the k-NN estimate still rises by more than `MAX_GAIN` (0.05) bits per doubling of the rows (it is biased
      toward 0 in many dimensions: KSG on the exact 5 + 5 coordinates of 5 Gaussian pairs, 3.68 bits, reads
      2.50 on 1,000 rows and 2.65 on 2,000), or codes trained on all training rows beat those trained on half
      of them by more than `MAX_GAIN` bits: not converged, likely below I(T;Y);
    - the residual bound won and may be loose by more than ``reliability_tol``: its gap to I(F;B'), which is
      exactly the residual's negentropy plus what the residual still shares with the prediction, estimated by
      k-NN (``conventions["residual"]["gap_bits"]``: heteroscedastic or bounded noise); or it still rises by
      more than `RESIDUAL_GAIN` (0.1) bits per doubling of the rows, or falls by more;
    - the k-NN estimate on the codes moves from k to 2k neighbours so that, extrapolated to radius 0, it would
      move by more than ``reliability_tol`` (within one standard error of that extrapolation) (`KNNEstimator`'s resolution check on the codes,
      ``conventions["resolution_bias_bits"]``: a curved density, e.g. a spiral, seen at too coarse a scale);
    - training reached ``max_epochs`` with the held-out loss still falling;
    - a code was learned from no more training rows than its side has dimensions (its numerical rank, or its
      width when that was not resolved): so under-determined an encoder can lose part of the shared
      information while every convergence check passes (10 tanh-embedded classes in 1,024 columns on 2,000
      rows read 0.11 to 0.26 bits low, converged by both checks).

    Cost: the rank search, O(N d min(N, d, 512)); when codes are learned, two trainings (all and half of the
    training rows) of at most ``max_epochs`` epochs, each O(N (d + d_y) · hidden + N hidden²) multiply-adds in
    float32 (on ``device``, default the device of ``t``), for labels a d × d covariance (O(N d² + d³)); then
    the k-NN estimate on the held-out (or all) rows and on their halves and quarters, and at k and 2k
    neighbours for the resolution check, about 3.75 times
    O(n² (code dims)); for a continuous y the residual bounds, about ten k-NN entropies of n rows each
    (Gaussian surrogates included). Memory O(N d) for the standardised copies plus the network (O(d · hidden) weights),
    O(d²) for labels. Measured in benchmarks/bench_latent.py (docs/notes/wide_layers.md).

    Parameters
    ----------
    latent_dim : int >= 1 or None
        Coordinates of a learned code (default None: 8, the paper's, or the width of t when it is narrower); an
        explicit value may not exceed the width of t. A side whose numerical rank is at most this is kept whole.
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
        Seeds the split, the rank sketch, the initial weights and the mini-batches (the global torch RNG is
        left untouched).
    device : str or None
        Where the autoencoders train (default: the device of ``t``).
    progress : bool
        A tqdm progress bar over the training epochs.
    """

    name = "latent"

    def __init__(
        self,
        latent_dim: int | None = None,
        *,
        target: str = "labels",
        k: int = 3,
        hidden: int = 128,
        max_epochs: int = 200,
        patience: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        cross_weight: float = 1.0,
        holdout: float = 0.5,
        min_skill: float = 0.02,
        seed: int = 0,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        owner = "LatentMIEstimator"
        self.latent_dim = None if latent_dim is None else check_int_param(latent_dim, "latent_dim", owner, minimum=1)
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
        if self.latent_dim is not None and self.latent_dim > d:
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
        t_np, y_np = self._check(t, y, layer, epoch)
        n = int(t_np.shape[0])
        check_input_ids(x, n)  # unused, but a malformed x is still an error
        labels = self.target == "labels"
        order = canonical_order(t_np[:, :16], y_np)
        t_np, y_np = t_np[order], y_np[order]
        dev = torch.device(self.device) if self.device is not None else (
            t.device if isinstance(t, torch.Tensor) else torch.device("cpu"))
        lat = self._code_dim(int(t_np.shape[1]))
        red_a = reduce_columns(t_np, lat, self.seed)
        a = torch.as_tensor(red_a.x, device=dev)
        h_y, red_b = 0.0, None
        if labels:
            _, ids = np.unique(y_np, return_inverse=True)
            ids = ids.reshape(-1).astype(np.int64)
            b = torch.as_tensor(ids, device=dev)
            h_y, b_mode = entropy_bits(np.bincount(ids)), "labels"
        else:
            red_b = reduce_columns(y_np, lat, self.seed)
            b = torch.as_tensor(red_b.x, device=dev)
            b_mode = "keep" if red_b.kept else "encode"
        modes = ("keep" if red_a.kept else "encode", b_mode)
        if "encode" in modes:
            fit, choice, record = self._learned(a, b, modes, lat, h_y, ids if labels else None)
        else:  # both codes are lossless functions of the rows, fixed without looking at y: all rows estimate
            fit, record = None, {}
            z_a = red_a.x.astype(np.float64)
            z_b = ids if labels else b.double().cpu().numpy()
            choice = Choice("knn", knn_bits(z_a, z_b, labels, self.k), (z_a, z_b))
            if not labels:  # cross-fitted least squares in each direction: the residual bounds compete
                choice = self._best_continuous([choice], z_a, z_b, z_a, z_b, record)
        raw, (z_a, z_b) = choice.bits, choice.codes
        if choice.kind == "residual":  # how loose the chosen bound may be (the reliability check)
            target, features = choice.codes
            record["residual"]["gap_bits"] = residual_gap(target, features, self.k, self.seed,
                                                          lambda e, p: knn_bits(e, p, False, self.k))
        curve = convergence_curve(choice, labels, self.k, self.seed)
        value = min(max(raw, 0.0), h_y) if labels else max(raw, 0.0)
        clipped = None if value == raw else ("at 0" if raw < 0 else "at H(Y)")
        return self._result(t_np, n, raw, value, clipped, fit, (red_a, red_b), (z_a, z_b), curve, h_y, record)

    def _learned(self, a: torch.Tensor, b: torch.Tensor, modes: tuple[str, str], lat: int, h_y: float,
                 ids: np.ndarray | None) -> tuple[Any, tuple[np.ndarray, np.ndarray], float, dict]:
        """Train on one part of the rows; (fit, held-out codes, k-NN estimate, a record of the candidates).

        For labels the larger of the autoencoder's and the linear discriminant code's estimates wins. The
        record holds the same estimate with the codes trained on half the training rows (``I_TY_half_train``).
        """
        labels = ids is not None
        hp = LatentHyper(lat, self.hidden, self.max_epochs, self.patience, self.batch_size, self.lr,
                         self.cross_weight, self.seed, self.progress)
        gen = torch.Generator().manual_seed(self.seed)
        train, test = split_rows(int(a.shape[0]), b.cpu() if labels else None, self.holdout, gen)
        half_train = parts(int(train.numel()), ids[train.numpy()] if labels else None, self.seed, 2)[0]
        record: dict = {"I_TY_half_train": None}
        if half_train.size >= 2:
            rows = train[torch.as_tensor(half_train)]
            record["I_TY_half_train"] = self._train_once(a, b, modes, hp, h_y, ids, rows, test, {})[1].bits
        fit, choice = self._train_once(a, b, modes, hp, h_y, ids, train, test, record)
        return fit, choice, record

    def _train_once(self, a: torch.Tensor, b: torch.Tensor, modes: tuple[str, str], hp: LatentHyper, h_y: float,
                    ids: np.ndarray | None, train: torch.Tensor, test: torch.Tensor, record: dict) -> tuple:
        """(fit, the chosen `Choice`) with the codes trained on ``train``: the largest held-out estimate of the
        autoencoder's codes, the cross-predictions and the residual bounds (continuous y), or of the autoencoder's
        and the shrinkage LDA code (labels, T encoded). The candidates go into ``record``."""
        labels = ids is not None
        # Small matrices: one CPU thread is faster than several on a shared machine (as for the critics).
        with torch_threads(1 if a.device.type == "cpu" else None):
            fit = fit_latents(a, b, modes, train.to(a.device), test.to(a.device), hp, h_b=h_y)
        z_a = fit.z_a.double().cpu().numpy()
        z_b = ids[test.numpy()] if labels else fit.z_b.double().cpu().numpy()
        codes = Choice("autoencoder", knn_bits(z_a, z_b, labels, self.k), (z_a, z_b))
        if not labels:  # the cross-predictions as codes (y's own values when y is kept), and as predictors
            p_a = fit.p_a.double().cpu().numpy()  # A's code's prediction of B's code
            p_b = fit.p_b.double().cpu().numpy()  # B's code's prediction of A's
            pair = (p_a, p_b if modes[1] == "encode" else z_b)
            pred = Choice("prediction", knn_bits(*pair, labels, self.k), pair)
            f_a, f_b = [z_a, p_a], [z_b, p_b]
            # a linear prediction of the other side's code from all columns of an encoded side, fitted on the
            # training rows: catches what a code lost when the shared part is linear in the columns
            tr_a, tr_b = (c.double().cpu().numpy() for c in fit.train_codes)
            rows_tr, rows_te = train.numpy(), test.numpy()
            for side, feats, target in ((0, f_a, tr_b), (1, f_b, tr_a)):
                if modes[side] == "encode":
                    full = (a if side == 0 else b).cpu().numpy()  # float32: the SVD's memory stays O(n d)
                    feats.append(ridge_predictions(full[rows_tr], target, full[rows_te]))
            return fit, self._best_continuous([codes, pred], z_a, z_b, np.hstack(f_a), np.hstack(f_b), record)
        # Labels (T encoded: a kept T learns nothing): Ross on each code, and the held-out Barber-Agakov bound
        # H(Y) - CE of each code's classifier (the autoencoder's softmax head, the shrinkage LDA's posterior).
        z_lin, skill = lda_code(a.cpu().numpy(), ids, train.numpy(), test.numpy(), hp.latent_dim, h_y)
        record["linear_code"] = {"skill": skill, "code_dim": int(z_lin.shape[1])}
        out = [codes, Choice("ba_autoencoder", fit.r2_ab * h_y, (z_a, z_b), "bound"),
               Choice("linear", knn_bits(z_lin, z_b, labels, self.k), (z_lin, z_b)),
               Choice("ba_linear", skill * h_y, (z_lin, z_b), "bound")]
        return fit, pick(out, record)

    def _best_continuous(self, knn: list[Choice], z_a: np.ndarray, z_b: np.ndarray, f_a: np.ndarray,
                         f_b: np.ndarray, record: dict) -> Choice:
        """The largest of the k-NN estimates ``knn`` and the residual bounds (`residual_bound`) of B's code given
        features of A (``f_a``: its code, and its prediction of B's code when one was learned) and of A's code
        given features of B (``f_b``); every candidate's bits go into ``record``."""
        out = list(knn)
        for name, target, features in (("residual_ty", z_b, f_a), ("residual_yt", z_a, f_b)):
            bound = residual_bound(target, features, self.k, self.seed)
            if bound is not None:
                out.append(Choice(name, bound["bits"], (target, features), "residual", bound))
        return pick(out, record)

    def _code_dim(self, width: int) -> int:
        return self.latent_dim if self.latent_dim is not None else min(_DEFAULT_LATENT, width)

    def _notes(self, fit: Any, n_est: int, curve: dict, raw: float, record: dict, reds: tuple,
               n_train: int) -> list[str]:
        """The reasons not to trust the estimate (empty when there are none)."""
        notes = []
        linear = record.get("linear_code")
        if fit is not None:
            for side, red in zip(("t", "y"), reds):
                dims = None if red is None or red.kept else (red.rank or int(red.x.shape[1]))
                if dims is not None and n_train <= dims:
                    notes.append(
                        f"the code of {side} was learned from {n_train:,} training rows, no more than its {dims:,} "
                        "dimensions: so under-determined an encoder can drop part of what the two sides share "
                        "while every convergence check passes (10 tanh-embedded classes in 1,024 columns, 2,000 "
                        "rows: -0.11 to -0.26 bits); more rows, or a layer of lower rank")
            skill = max(fit.r2_ab, fit.r2_ba, linear["skill"] if linear else -math.inf)
            if not skill >= self.min_skill:
                notes.append(
                    f"no held-out cross-prediction explains {self.min_skill:.0%} of the other side's code "
                    f"(best {skill:.3f}): the codes were not shaped by any dependence of the conditional mean, so a "
                    "symmetric dependence (E[T|Y] = E[T]) may be missed; the estimate may be far below I(T;Y)")
            if not fit.stopped_early:
                notes.append(f"training reached max_epochs={self.max_epochs} with the held-out loss still falling "
                             f"(best at epoch {fit.best_epoch}): the codes may not be converged")
            half_train = record["I_TY_half_train"]
            if half_train is not None and raw - half_train > MAX_GAIN:
                notes.append(f"the codes still improve with the training rows ({half_train:.3f} bits with codes trained "
                             f"on half of them, {raw:.3f} on all; more than {MAX_GAIN} bits per doubling): not "
                             "converged, likely below I(T;Y)")
        if curve["resolution"]:  # one standard error of margin: the codes are scored on the held-out rows only
            notes += R.resolution_notes(curve["resolution"], self.k, self.reliability_tol, margin_se=1.0)
        gain = curve["knn_gain"]
        residual = record.get("chosen", "").startswith("residual")
        gap = record["residual"]["gap_bits"] if residual else 0.0
        if not gap <= self.reliability_tol:  # NaN (not computed) flags too
            notes.append(f"the residual bound may be loose by about {gap:.2f} bits (more than {self.reliability_tol}): "
                         "its residual is not Gaussian noise independent of the prediction (estimated negentropy plus "
                         "k-NN dependence), so I(T;Y) is likely higher")
        if residual and gain is not None and gain < -RESIDUAL_GAIN:
            notes.append(f"the residual bound falls with the rows ({gain:.3f} bits per doubling, from "
                         f"{curve['knn_from_rows']:,} to {n_est:,} rows): its entropy term may be biased upward, the "
                         "value may be above I(T;Y)")
        limit, what = (RESIDUAL_GAIN, "residual bound") if residual else (MAX_GAIN, "k-NN estimate on the codes")
        if gain is not None and gain > limit:
            notes.append(f"the {what} still rises with the rows (+{gain:.3f} bits per doubling, more than {limit}, "
                         f"from {curve['knn_from_rows']:,} to {n_est:,} rows): not converged in N, likely below I(T;Y)")
        return notes

    def _result(self, t_np: np.ndarray, n: int, raw: float, value: float, clipped: str | None, fit: Any,
                reds: tuple, codes: tuple, curve: dict, h_y: float, record: dict) -> MIResult:
        (red_a, red_b), (z_a, _) = reds, codes
        n_est = int(z_a.shape[0])
        notes = self._notes(fit, n_est, curve, raw, record, reds, n - n_est)
        reliable, note = not notes, ("; ".join(notes) if notes else None)
        y_code = "labels" if red_b is None else ("kept" if red_b.kept else "encoded")
        conv = self.conventions()
        conv.update(n_samples=n, n_units=int(t_np.shape[1]), units="bits", I_TY_raw=raw, clipped=clipped,
                    reliable=reliable, reliability_note=note, code_dim=int(z_a.shape[1]),
                    t_code="kept" if red_a.kept else "encoded", y_code=y_code, rank_t=red_a.rank,
                    rotated_t=red_a.rotated, n_estimate=n_est,
                    n_train=0 if fit is None else n - n_est)
        if red_b is not None:
            conv.update(rank_y=red_b.rank, rotated_y=red_b.rotated)
        if fit is not None:
            conv.update(cross_r2_ty=fit.r2_ab, cross_r2_yt=fit.r2_ba, epochs_run=fit.epochs,
                        best_epoch=fit.best_epoch, held_out_loss=fit.held_out_loss, stopped_early=fit.stopped_early)
        conv.update(record)
        res = curve.pop("resolution")
        conv.update(curve, resolution_bias_bits=res["bias"] if res else math.nan,
                    resolution_bias_se=res["bias_se"] if res else math.nan)
        if h_y:
            conv["H_Y_bits"] = h_y
        return MIResult(I_XT=math.nan, I_TY=value, bound_XT="estimate", bound_TY="estimate", estimator=self.name,
                        n_samples=n, conventions=json_safe(conv))


def latent_mi(t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None,
              **params: Any) -> MIResult:
    """Latent MI estimate of I(T;Y) in bits (the functional twin of `LatentMIEstimator`; ``params`` as its).

    ``latent_mi(t, y, target="continuous")`` for two real-valued arrays; the number is ``.I_TY`` and
    ``.conventions["reliable"]`` says whether to trust it.
    """
    return LatentMIEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)

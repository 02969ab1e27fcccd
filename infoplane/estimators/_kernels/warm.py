"""Warm starts across epochs for estimators that train a network, with a held-out check (private).

`information_plane` hands a learned estimator the state it reached at the previous recorded epoch of the
same run and layer (`BaseEstimator.estimate_with_state`). A network trained from that state (a *warm
start*) usually needs far fewer epochs than one trained from its seeded initialisation (a *cold start*),
because consecutive epochs' activations differ little; but the objective is not convex, and a warm start
could sit in a worse optimum than a cold one would reach. `warm_or_cold` checks it on held-out rows:

1. train from the state (early stopping as usual): ``W`` epochs, held-out objective ``J_w`` (higher is
   better) with standard error ``se_w``;
2. train a cold start for the same ``W`` epochs (same seed, same split, same patience): ``J_c``;
3. if ``J_c > J_w + se_w`` (a cold start given the same epochs already beats the warm one by more than its
   standard error) the warm start is discarded and the cold start is run to its usual end (the check run
   itself when it stopped early or had the whole budget): the result is then exactly the cold estimate.
   Otherwise the warm result is kept.

So a warm start is never kept when a cold start with the same number of epochs is better by more than the
warm estimate's standard error; it costs about 2W epochs instead of the cold start's epochs (the speed-up is
cold epochs / 2W, measured in benchmarks/bench_warm.py). What is recorded (``info``): ``warm_start``
(whether the reported estimate was warm-started), ``warm_check`` (the two objectives, the standard error, the
epochs of the warm run and of the check, whether it fell back, and ``epochs_trained``: every epoch trained
for this estimate, the cold rerun included).

**The held-out rows stay held out along the chain.** These estimators split the rows at random after putting
them in a canonical order (sorted by value), so that one estimate does not depend on the order of the rows;
but the order, hence the split, changes from one epoch's activations to the next, and a network carried
over would then be scored on rows it was trained on at the previous epoch (measured: +0.07 bits for the
InfoNCE critic and +0.25 bits for the latent estimator when the state had trained on the same rows, against
one trained as long on other rows). So the chain keeps the held-out rows of its first (cold) epoch, by row
index (`chain_split`): row i must be the same input at every epoch, as `information_plane` passes them; the
labels are checked (a state whose labels differ row by row is not used). A warm-started estimate is
therefore not invariant to a permutation of the rows; a cold one (no state) still is.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Run", "warm_or_cold", "chain_state", "chain_split"]


@dataclass
class Run:
    """One training run: ``result`` (what the estimator reports from), ``state`` (what the next epoch
    starts from), the held-out ``objective`` (higher is better) and its standard error ``se``, ``epochs``
    run, and ``stopped_early`` (patience ended it before its budget)."""

    result: Any
    state: Any
    objective: float
    se: float
    epochs: int
    stopped_early: bool


def warm_or_cold(train: Callable[[Any, int], Run], state: Any, max_epochs: int) -> tuple[Run, dict]:
    """The run to report and what happened (module docstring).

    ``train(init, budget)`` trains from ``init`` (None: the seeded cold initialisation) for at most
    ``budget`` epochs; ``state``: the previous epoch's (None: a cold start, no check).
    """
    if state is None:
        return train(None, max_epochs), {"warm_start": False, "warm_check": None}
    warm = train(state, max_epochs)
    check = train(None, min(warm.epochs, max_epochs))
    fell_back = check.objective > warm.objective + warm.se
    info = {"warm_objective": warm.objective, "cold_objective": check.objective, "se": warm.se,
            "warm_epochs": warm.epochs, "check_epochs": check.epochs, "fell_back": fell_back,
            "epochs_trained": warm.epochs + check.epochs}
    if not fell_back:
        return warm, {"warm_start": True, "warm_check": info}
    complete = check.stopped_early or check.epochs >= max_epochs
    cold = check if complete else train(None, max_epochs)
    info["epochs_trained"] += 0 if complete else cold.epochs
    return cold, {"warm_start": False, "warm_check": info}


def _labels_key(y: np.ndarray) -> str:
    """A digest of the targets row by row (class ids or real values): the rows must stay aligned."""
    y = np.ascontiguousarray(y)
    return hashlib.sha1(str(y.dtype).encode() + str(y.shape).encode() + y.tobytes()).hexdigest()


def chain_state(weights: Any, held_out: torch.Tensor, order: np.ndarray, y: np.ndarray, shapes: tuple) -> dict:
    """The state to pass on: the ``weights`` reached, the held-out rows as row indices of the caller's
    arrays (``held_out``: positions in the canonical ``order``), the labels' digest and the ``shapes``."""
    rows = order[held_out.cpu().numpy()]
    return {"weights": weights, "held_out": rows, "n": len(order), "labels": _labels_key(y), "shapes": shapes}


def chain_split(state: Any, order: np.ndarray, y: np.ndarray, shapes: tuple,
                device: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(train, held-out) positions in the canonical ``order`` that keep the chain's held-out rows, or None
    when ``state`` does not belong to these rows (another row count, width or labels: then a cold start)."""
    if not (isinstance(state, dict) and state.get("n") == len(order) and state.get("shapes") == shapes
            and state.get("labels") == _labels_key(y)):
        return None
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    test = position[state["held_out"]]
    train = np.setdiff1d(np.arange(len(order)), test)  # ascending canonical positions
    return torch.as_tensor(train, device=device), torch.as_tensor(test, device=device)

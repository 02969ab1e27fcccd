"""Every input check of infoplane and its message, in one place.

Messages name the argument (and the layer and epoch where known), what was expected and what came, e.g.
``activations of layer 'fc2' at epoch 3 contain NaN (12 of 4,096 values)`` or
``The 'n_bins' parameter of BinningEstimator must be an int >= 2. Got 0 instead.``
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .types import ArrayLike, TensorLike

__all__ = [
    "check_bool_param", "check_path_param", "check_device",
    "as_numpy",
    "where",
    "check_activations",
    "check_estimate_inputs",
    "check_labels",
    "check_input_ids",
    "check_same_length",
    "check_int_param",
    "check_float_param",
    "check_choice",
    "check_n_jobs",
    "param_error",
    "as_tensor64",
    "check_gaussian",
    "check_regression_target",
]


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def as_numpy(value: Any) -> np.ndarray:
    """A numpy array of ``value``: torch tensors are detached and copied to the CPU, the rest `np.asarray`."""
    if _is_torch(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def where(name: str, layer: str | None = None, epoch: int | None = None) -> str:
    """Describe what is checked: ``"activations of layer 'fc2' at epoch 3"`` or just the argument name."""
    text = name
    if layer is not None:
        text += f" of layer {layer!r}"
    if epoch is not None:
        text += f" at epoch {epoch}"
    return text


def param_error(owner: str, param: str, expected: str, got: Any) -> ValueError:
    """The one sentence shape for a bad parameter, as in scikit-learn."""
    return ValueError(f"The {param!r} parameter of {owner} must be {expected}. Got {got!r} instead.")


def check_int_param(value: Any, param: str, owner: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as int, or raise naming ``param`` of ``owner``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or (minimum is not None and value < minimum):
        expected = "an int" if minimum is None else f"an int >= {minimum}"
        raise param_error(owner, param, expected, value)
    return int(value)


def check_float_param(
    value: Any, param: str, owner: str, *, positive: bool = False, minimum: float | None = None
) -> float:
    """Return ``value`` as a finite float, or raise naming ``param`` of ``owner``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and positive and value <= 0:
        ok = False
    if ok and minimum is not None and value < minimum:
        ok = False
    if not ok:
        expected = "a finite float"
        if positive:
            expected += " > 0"
        if minimum is not None:
            expected += f" >= {minimum}"
        raise param_error(owner, param, expected, value)
    return float(value)


def check_choice(value: Any, param: str, owner: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise param_error(owner, param, f"one of {listed}", value)
    return value


def check_activations(
    t: TensorLike,
    *,
    name: str = "t",
    layer: str | None = None,
    epoch: int | None = None,
    allow_torch: bool = True,
):
    """Check a layer's activations: 2-D (N, d) with N, d >= 1, real numbers, all finite.

    Returns a float numpy array, or the torch tensor itself (detached, floating) when ``allow_torch``
    and ``t`` is a tensor, so GPU tensors stay where they are.
    """
    label = where(name, layer, epoch)
    if _is_torch(t):
        if not allow_torch:
            t = t.detach().cpu().numpy()
        else:
            t = t.detach()
            if t.is_complex():
                raise TypeError(f"{label} must hold real numbers. Got dtype {t.dtype}.")
            if not t.is_floating_point():
                t = t.float()
    if not _is_torch(t):
        try:
            t = np.asarray(t)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"{label} must be array-like. Got {type(t).__name__}.") from exc
        if t.dtype == object or not (np.issubdtype(t.dtype, np.number) or t.dtype == bool):
            raise TypeError(f"{label} must hold real numbers. Got dtype {t.dtype}.")
        if np.iscomplexobj(t):
            raise TypeError(f"{label} must hold real numbers. Got dtype {t.dtype}.")
        if not np.issubdtype(t.dtype, np.floating):
            t = t.astype(np.float64)
    shape = tuple(t.shape)
    if len(shape) != 2:
        raise ValueError(f"{label} must be 2-D (n_samples, n_units). Got shape {shape}.")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{label} must be non-empty (n_samples, n_units >= 1). Got shape {shape}.")
    _check_finite(t, label)
    return t


def _check_finite(t: Any, label: str) -> None:
    # One pass on the common path; count NaN and Inf separately only to explain a failure.
    if _is_torch(t):
        import torch

        if bool(torch.isfinite(t).all()):
            return
        n_nan = int(torch.isnan(t).sum())
        n_inf = int(torch.isinf(t).sum())
        size = t.numel()
    else:
        if np.isfinite(t).all():
            return
        n_nan = int(np.isnan(t).sum())
        n_inf = int(np.isinf(t).sum())
        size = t.size
    if n_nan:
        raise ValueError(f"{label} contain NaN ({n_nan:,} of {size:,} values)")
    if n_inf:
        raise ValueError(f"{label} contain Inf ({n_inf:,} of {size:,} values)")


def check_labels(
    y: ArrayLike,
    n_rows: int | None = None,
    *,
    name: str = "y",
    min_classes: int = 2,
) -> np.ndarray:
    """Check class labels: 1-D integers (or bools), length ``n_rows``, at least ``min_classes`` values.

    Returns an int64 numpy array.
    """
    y = as_numpy(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,). Got shape {y.shape}.")
    if n_rows is not None and y.shape[0] != n_rows:
        raise ValueError(
            f"{name} must have one label per row of the activations ({n_rows:,}). Got {y.shape[0]:,}."
        )
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise TypeError(
            f"{name} must hold integer class labels. Got dtype {y.dtype}"
            + (" (use y.astype(int) if the values are whole numbers)." if y.dtype.kind == "f" else ".")
        )
    y = y.astype(np.int64, copy=False)
    n_classes = _n_distinct(y)
    if n_classes < min_classes:
        raise ValueError(
            f"{name} must hold at least {min_classes} distinct classes. Got {n_classes} "
            f"({np.unique(y).tolist()})."
        )
    return y


def _n_distinct(y: np.ndarray) -> int:
    """Distinct values of int64 labels: a bincount for small non-negative ones (O(N)), else np.unique."""
    if y.size and int(y.min()) >= 0 and int(y.max()) <= 4 * y.size + 1024:
        return int(np.count_nonzero(np.bincount(y)))
    return int(np.unique(y).size)


def check_input_ids(x: ArrayLike | None, n_rows: int, *, name: str = "x") -> np.ndarray | None:
    """Turn optional input identities into int64 ids per row (None means every row is its own input).

    ``x`` may be (N,) ids of any hashable-sortable dtype, or (N, k) input rows; equal rows share an id.
    """
    if x is None:
        return None
    x = as_numpy(x)
    if x.ndim not in (1, 2) or x.shape[0] != n_rows:
        raise ValueError(
            f"{name} must be (n_samples,) input ids or (n_samples, n_features) inputs with "
            f"n_samples = {n_rows:,}. Got shape {x.shape}."
        )
    if x.ndim == 2:
        _, ids = np.unique(x, axis=0, return_inverse=True)
    else:
        _, ids = np.unique(x, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def check_same_length(**arrays: Any) -> int:
    """Raise unless every named array has the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{k} has {n:,}" for k, n in lengths.items())
        raise ValueError(f"{' and '.join(lengths)} must have the same number of rows: {described}.")
    return next(iter(lengths.values()))


def check_n_jobs(n_jobs: Any, owner: str) -> int | None:
    """None or a non-zero int (joblib's meaning: -1 is every core), or raise naming ``owner``."""
    if n_jobs is None:
        return None
    if not (isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, bool)) or n_jobs == 0:
        raise param_error(owner, "n_jobs", "None or a non-zero int", n_jobs)
    return int(n_jobs)


def check_k_neighbours(k: int, n_rows: int, owner: str) -> int:
    """k of a k-nearest-neighbour estimator: an int with 1 <= k < N (a row is never its own neighbour)."""
    k = check_int_param(k, "k", owner, minimum=1)
    if k >= n_rows:
        raise ValueError(
            f"The 'k' parameter of {owner} must be < the number of rows ({n_rows:,}): a row has at most "
            f"N - 1 neighbours. Got k={k}."
        )
    return k


def check_continuous(value: Any, n_rows: int, *, name: str = "y") -> np.ndarray:
    """A continuous variable: (N,) or (N, k) finite real numbers; returned as float64 (N, k)."""
    arr = as_numpy(value)
    if arr.ndim not in (1, 2) or arr.shape[0] != n_rows:
        raise ValueError(f"{name} must have shape ({n_rows:,},) or ({n_rows:,}, k). Got shape {arr.shape}.")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold real numbers. Got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers. Got dtype {arr.dtype}.")
    arr = arr.astype(np.float64).reshape(n_rows, -1)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column. Got shape {arr.shape}.")
    _check_finite(arr, name)
    return arr


def check_class_sizes(y: np.ndarray, minimum: int, owner: str, why: str) -> np.ndarray:
    """Counts per class of int64 labels; raise naming the smallest class when one has fewer than ``minimum``."""
    values, counts = np.unique(y, return_counts=True)
    if counts.min() < minimum:
        c = int(np.argmin(counts))
        raise ValueError(
            f"y: class {values[c].item()!r} has {int(counts[c]):,} rows; {owner} needs at least {minimum} rows in "
            f"every class ({why})."
        )
    return counts


def as_tensor64(a: Any, device: Any = None):
    """A float64 torch tensor of ``a`` (detached; torch input stays on its device unless ``device`` is given,
    arrays go to the CPU); never a view of a read-only numpy array (torch warns about those)."""
    import torch

    if isinstance(a, torch.Tensor):
        out = a.detach().to(torch.float64)
    else:
        arr = np.asarray(a, dtype=np.float64)
        out = torch.as_tensor(arr if arr.flags.writeable else arr.copy())
    return out if device is None else out.to(device)


def check_gaussian(mu: TensorLike, log_var: TensorLike, *, name: str = "mu", layer: str | None = None, epoch: int | None = None):
    """Both finite, 2-D, the same shape; returned as float64 tensors on mu's device.

    ``name`` is what the mean is called in messages (``"t"`` for an estimator's first argument).
    """
    mu = check_activations(mu, name=name, layer=layer, epoch=epoch)
    log_var = check_activations(log_var, name="log_var", layer=layer, epoch=epoch)
    if tuple(mu.shape) != tuple(log_var.shape):
        raise ValueError(
            f"log_var must have the same shape as {name} {tuple(mu.shape)}. Got shape {tuple(log_var.shape)}."
        )
    mu_t = as_tensor64(mu)
    return mu_t, as_tensor64(log_var).to(mu_t.device)


def check_regression_target(y: ArrayLike, n: int) -> np.ndarray:
    """Real targets (N,) or (N, k), all finite, as a float64 (N, k) array."""
    y_np = as_numpy(y)
    if y_np.ndim not in (1, 2) or y_np.shape[0] != n:
        raise ValueError(f"y must have shape ({n:,},) or ({n:,}, k) for regression. Got shape {y_np.shape}.")
    if not np.issubdtype(y_np.dtype, np.number):
        raise TypeError(f"y must hold real numbers for regression. Got dtype {y_np.dtype}.")
    y_np = y_np.astype(np.float64).reshape(n, -1)
    if not np.isfinite(y_np).all():
        raise ValueError(f"y contain NaN or Inf ({int((~np.isfinite(y_np)).sum()):,} of {y_np.size:,} values)")
    return y_np


def check_bool_param(value: Any, param: str, owner: str) -> bool:
    """Return ``value`` as bool if it is True or False (numpy's too); a string such as "no" is refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise param_error(owner, param, "True or False", value)


def check_path_param(value: Any, param: str, owner: str) -> Any:
    """A str or os.PathLike without a NUL byte (which no file system accepts); returned unchanged."""
    import os

    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"The {param!r} parameter of {owner} must be a str or os.PathLike. Got {type(value).__name__}.")
    text = os.fspath(value)
    if "\0" in (text if isinstance(text, str) else text.decode(errors="replace")):
        raise param_error(owner, param, "a path without NUL bytes (no file system accepts one)", value)
    return value


def check_device(device: Any, param: str, owner: str) -> Any:
    """A torch device that exists here: the name parses and, for CUDA/MPS, this torch can use it.

    Returns the `torch.device`. Checked when an object is built, so a bad device fails before any work.
    """
    import torch

    if isinstance(device, bool) or not isinstance(device, (str, torch.device)):
        raise param_error(owner, param, "a torch device such as 'cpu' or 'cuda:0'", device)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise param_error(owner, param, f"a torch device such as 'cpu' or 'cuda:0' ({exc})", device) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise param_error(owner, param, "a device this torch can use (torch.cuda.is_available() is False "
                              f"here: torch {torch.__version__} has no usable CUDA)", device)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise param_error(owner, param, f"a CUDA device index below {torch.cuda.device_count()}", device)
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise param_error(owner, param, "a device this torch can use (MPS is not available)", device)
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise param_error(owner, param, "'cpu', 'cuda[:i]' or 'mps' (the devices infoplane runs on)", device)
    return dev


def check_estimate_inputs(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
    epoch: int | None = None, allow_torch: bool = True,
) -> tuple[Any, np.ndarray, np.ndarray | None, int]:
    """The prologue of an estimator's ``estimate``: ``(t, y, x_ids, n)`` checked against each other.

    ``t`` by `check_activations` (2-D, finite; numpy, or a torch tensor where ``allow_torch``), ``y`` by
    `check_labels` (N int labels), ``x`` by `check_input_ids` (None, or N input ids); ``n`` is the number of
    rows. ``layer`` / ``epoch`` name the data in the error messages.
    """
    t = check_activations(t, name="t", layer=layer, epoch=epoch, allow_torch=allow_torch)
    n = int(t.shape[0])
    return t, check_labels(y, n), check_input_ids(x, n), n

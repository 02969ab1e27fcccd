"""Record chosen layers of any ``torch.nn.Module`` on a fixed probe set, without touching the model's code.

A probe pass attaches forward hooks to the chosen modules, runs the probe set through the model in eval mode
under ``torch.inference_mode()`` in batches, and removes every hook and restores every module's own
``.training`` flag (and the RNG state) in ``finally`` — also when the forward raises. Between recordings no
hook is attached, so training runs at full speed.

Choosing layers (``layers=``, a single item or a list of them):

* ``"fc2"`` — a name from ``model.named_modules()``;
* ``"block*"`` / ``"encoder.?.conv"`` — an `fnmatch` glob over those names (all matches, in module order;
  the root module ``""`` is never matched by a glob or a type);
* ``nn.ReLU`` — every submodule of that type; ``model.fc2`` — a module itself;
* ``Layer("enc", output=0, gaussian=True, name="z")`` — the explicit spec (`Layer`), also the one way to
  record one element of a tuple/list/dict output (``Layer("heads", output="mu")``, stored as
  ``"heads['mu']"``). A string is always a name or a glob (``"act[1-3]"`` is a character class).

What is stored per layer and probe row: the output flattened to one row, ``(N, C·H·W)`` for a conv feature
map, float32 on the CPU (a copy: later in-place ops cannot change it). A module returning a
``torch.distributions.Normal`` (or ``Independent(Normal)``) is recorded as Gaussian, ``mu = loc`` and
``log_var = 2 ln(scale)``; a ``(mean, log-variance)`` pair or ``{"mu", "log_var"}`` dict is Gaussian when
the spec says ``gaussian=True`` (``gaussian="std"`` / ``"var"`` if the second element is a standard deviation
or a variance). Variational bounds use both parts later.

Schedules (`Schedule`): ``Schedule.every(k)``, ``Schedule.log_spaced(last, n)`` (dense early, sparse late, as
Shwartz-Ziv & Tishby 2017), ``Schedule.explicit([...])`` and unions ``a | b``. ``schedule=`` also takes an int
k (every k epochs), a list of epochs, or None (every epoch). The schedule and the epochs actually recorded are
stored.

Epoch rules of `Recorder.step`: epochs must not decrease within one recorder (ValueError: an accidental
restart of the epoch counter would corrupt the trajectory); calling it again with the same epoch is a no-op;
an epoch already in the store (e.g. after resuming) is skipped (``on_existing="skip"``, the default) or
raises (``on_existing="raise"``). Stored epochs are never overwritten.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .._core.rank import check_writer_rank
from .._core.types import ArrayLike
from .._core.validation import check_int_param, check_labels, param_error
from ..store import BaseStore, MemoryStore, ZarrStore
from ._layers import _Resolved, resolve_layers
from ._noisy import check_draws, propagate, recorder_pass, warn_bernoulli_dropout
from ._probe import as_device, as_probe, model_device, probe_keys, probe_pass
from ._reductions import Reduction
from ._schedule import Schedule

__all__ = ["Recorder", "record"]

_MODEL_REPR_CHARS = 20_000
_ANEW = "to record a new run, use a new path, store=ZarrStore(path, mode='w'), or --overwrite on the command line"


# ---------------------------------------------------------------------------------------------- one pass
def record(
    model: nn.Module,
    probe: Any,
    layers: Any,
    *,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    **reductions: Any,
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """One probe pass at a checkpoint: ``{layer: float32 (N, d)}``, or ``{"mu", "log_var"}`` for a Gaussian.

    ``probe`` is a numpy array or tensor (or a tuple of them: positional inputs; or a dict of them: keyword
    inputs); ``layers`` as for `Recorder`, and so are the default reductions ``pool``, ``project``,
    ``units``, ``dtype``, ``seed``. The model's modes, hooks and RNG state are left exactly as found.
    """
    resolved = _with_reductions(resolve_layers(model, layers), reductions, "record")
    batch_size = check_int_param(batch_size, "batch_size", "record", minimum=1)
    keys = probe_keys(probe)
    tensors, n = as_probe(probe, model)
    device = model_device(model) if device is None else as_device(device, "record")
    return probe_pass(model, resolved, tensors, n, batch_size=batch_size, device=device, epoch=None, keys=keys)


def _with_reductions(layers: list[_Resolved], defaults: dict[str, Any], owner: str) -> list[_Resolved]:
    """Each layer with the default reductions (keywords pool, project, units, dtype, seed) filling its own."""
    unknown = set(defaults) - {"pool", "project", "units", "dtype", "seed"}
    if unknown:
        raise TypeError(f"{owner} got unexpected keyword argument(s) {sorted(unknown)}.")
    default = Reduction.create(**defaults, owner=owner)
    return [layer.with_defaults(default) for layer in layers]


# ---------------------------------------------------------------------------------------------- recorder
def _fingerprint(tensors: tuple[torch.Tensor, ...]) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(str((tuple(t.shape), str(t.dtype))).encode())
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()


class Recorder:
    """Record chosen layers of ``model`` on ``probe`` at scheduled epochs, around your own training loop.

    Examples
    --------
    >>> with Recorder(model, layers=["fc1", "act*"], probe=X, labels=y,
    ...               schedule=Schedule.log_spaced(1000, 100), store="run.zarr") as rec:
    ...     rec.step(0)
    ...     for epoch in range(1, 1001):
    ...         train_one_epoch(model)
    ...         rec.step(epoch)          # records only when the schedule says so
    >>> infoplane.nets.train(model, X, y, epochs=1000, callback=rec.step)   # or as a callback

    Parameters
    ----------
    model : nn.Module
        Any module; its code is not touched. Hooks exist only during a probe pass.
    layers : name, glob, module, module type, Layer, or a list of them
        See the module docstring. Unknown names raise KeyError listing ``named_modules()``.
    probe : array or tensor (or a tuple of them, or a dict of them)
        The fixed inputs, N rows, run at every recording (batched by ``batch_size``): a tuple is passed
        positionally, a dict ``{name: array}`` by keyword (``model(**batch)``, e.g. a Hugging Face model's
        ``input_ids`` and ``attention_mask``).
    labels : array of int, optional
        (N,) labels of the probe rows, stored for the analysis of I(T;Y).
    schedule : Schedule, int, list of int or None
        When to record; None records every epoch. With a store that already has a schedule, None keeps it.
    store : None, path or store
        None: a fresh `MemoryStore`. A path: a `ZarrStore` opened with mode "a" (created, or resumed: its
        epochs are kept, new ones appended) and closed with the recorder. A store object: used as is.
    batch_size : int, default 1024
        Probe rows per forward pass.
    device : str or torch.device, optional
        Where to run the probe; default: where the model's parameters are at each recording.
    on_existing : {"skip", "raise"}, default "skip"
        What `step` does with a scheduled epoch the store already holds (after resuming).
    pool, project, units, dtype, seed : optional
        Default reductions for every layer that does not set its own (see `Layer`): applied inside the hook,
        so a conv layer of 10,000 x 25,088 values is never held in full, only one batch of it. Stored in the
        metadata (``"reductions"``, and each layer spec). A noisy layer refuses them.
    draws : int >= 2, default 8
        Noise draws per probe row for the noisy layers (``Layer(name, noise=GaussianNoise(std))`` or
        ``GaussianDropout(rate)``): each is recorded as its (N, draws · d) pre-noise outputs, row i holding
        its ``draws`` propagated draws one after the other (noise at every noisy layer upstream; what
        `infoplane.noise.sample_propagation` returns with the same seed and batch size); the other layers
        come from the plain, noise-free pass. The specs are in the metadata (``"noise"``).
    noise_seed : int or None, default 0
        Seed of the noise draws, the same at every epoch (common random numbers: epochs differ by the
        network only).
    probe_name : str, optional
        What this probe is, e.g. ``"train"`` or ``"held-out"``: stored in the metadata (``"probe_name"``) and
        written by `information_plane` into a ``probe`` column, so that a training-probe and a held-out-probe
        recording of one network (one Recorder per probe, each with its own store, stepped by the same
        callback) are compared and never averaged together. See ``docs/notes/plots.md``.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Any,
        probe: Any,
        *,
        labels: ArrayLike | None = None,
        schedule: Any = None,
        store: BaseStore | str | os.PathLike | None = None,
        batch_size: int = 1024,
        device: str | torch.device | None = None,
        on_existing: Literal["skip", "raise"] = "skip",
        pool: int | str | None = None,
        project: int | None = None,
        units: Sequence[int] | None = None,
        dtype: str | None = None,
        seed: int | None = None,
        draws: int = 8,
        noise_seed: int | None = 0,
        probe_name: str | None = None,
    ) -> None:
        self.model = model
        if probe_name is not None and (not isinstance(probe_name, str) or not probe_name.strip()):
            raise param_error("Recorder", "probe_name", "None or a non-empty str (e.g. 'train', 'held-out')",
                              probe_name)
        self.probe_name = probe_name
        self.layer_specs = _with_reductions(
            resolve_layers(model, layers),
            {"pool": pool, "project": project, "units": units, "dtype": dtype, "seed": seed}, "Recorder")
        self.draws = check_draws(draws, "Recorder")
        self.noise_seed = None if noise_seed is None else check_int_param(noise_seed, "noise_seed", "Recorder")
        if any(layer.noise is not None for layer in self.layer_specs):
            warn_bernoulli_dropout(model, "Recorder")
        self.batch_size = check_int_param(batch_size, "batch_size", "Recorder", minimum=1)
        self._probe_keys = probe_keys(probe)
        self._probe, self.n_probe = as_probe(probe, model)
        self.labels = None if labels is None else check_labels(labels, None, name="labels", min_classes=1)
        if self.labels is not None and len(self.labels) != self.n_probe:
            raise ValueError(
                f"labels must have one entry per probe row: probe has {self.n_probe:,} rows, labels has "
                f"{len(self.labels):,}."
            )
        self.device = None if device is None else as_device(device, "Recorder")
        if on_existing not in ("skip", "raise"):
            raise param_error("Recorder", "on_existing", "one of 'skip', 'raise'", on_existing)
        self.on_existing = on_existing
        if isinstance(store, (str, os.PathLike)) or (isinstance(store, ZarrStore) and store.mode != "r"):
            check_writer_rank("Recorder")  # one writer per store under torch.distributed: rank 0
        self._owns_store = store is None or isinstance(store, (str, os.PathLike))
        if store is None:
            self.store: BaseStore = MemoryStore()
        elif isinstance(store, (str, os.PathLike)):
            self.store = ZarrStore(store, mode="a")
        elif isinstance(store, BaseStore):
            self.store = store
        else:
            raise TypeError(f"store must be None, a path or a MemoryStore/ZarrStore. Got {type(store).__name__}.")
        try:
            self.schedule = self._setup_store(schedule)
        except BaseException:
            self.close()
            raise
        self.recorded: list[int] = []  # recorded by this recorder (the store may hold more, from before)
        self.skipped: list[int] = []  # scheduled but already in the store
        self._last_step: int | None = None
        self._device_probe: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    @property
    def layers(self) -> list[str]:
        """Logical names of the recorded layers."""
        return [layer.name for layer in self.layer_specs]

    @property
    def epochs(self) -> list[int]:
        """Every epoch in the store, ascending (including those from before a resume)."""
        return self.store.epochs

    def _setup_store(self, schedule: Any) -> Schedule:
        store = self.store
        previous = store.metadata
        fingerprint = _fingerprint(self._probe)
        if store.layers:  # resuming: the same layers and the same probe, or the trajectory means nothing
            if sorted(store.layers) != sorted(self.layers):
                raise ValueError(
                    f"layers {self.layers} differ from the layers already in the store {store.layers}; record "
                    "into a new store."
                )
            if store.n_probe != self.n_probe:
                raise ValueError(
                    f"probe has {self.n_probe:,} rows but the store was recorded with {store.n_probe:,}; record "
                    "into a new store."
                )
        if previous.get("probe_sha256") not in (None, fingerprint):
            raise ValueError(
                f"probe differs from the probe the store was recorded with (its SHA-256 fingerprint "
                f"{fingerprint[:12]}... is not the stored {str(previous['probe_sha256'])[:12]}...); {_ANEW}."
            )
        if schedule is None and "schedule" in previous:
            sched = Schedule.from_dict(previous["schedule"])
        else:
            sched = Schedule.coerce(schedule)
        if self.labels is not None:
            store.set_labels(self.labels)
        store.set_metadata(
            schedule=sched.to_dict(),
            layer_specs=[layer.to_dict() for layer in self.layer_specs],
            reductions={layer.name: layer.reduction.to_dict() for layer in self.layer_specs},
            n_probe=self.n_probe,
            probe_shape=[list(t.shape) for t in self._probe],
            probe_keys=None if self._probe_keys is None else list(self._probe_keys),
            probe_dtype=[str(t.dtype).replace("torch.", "") for t in self._probe],
            probe_sha256=fingerprint,
            batch_size=self.batch_size,
            noise={layer.name: {"spec": layer.noise.to_dict(), "draws": self.draws, "seed": self.noise_seed}
                   for layer in self.layer_specs if layer.noise is not None},
            model_class=f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            model_repr=repr(self.model)[:_MODEL_REPR_CHARS],
            torch_version=torch.__version__,
            **({} if self.probe_name is None else {"probe_name": self.probe_name}),
        )
        return sched

    def due(self, epoch: int) -> bool:
        """Whether the schedule records ``epoch`` (regardless of what the store holds)."""
        return epoch in self.schedule

    def _probe_on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device.type == "cpu":
            return self._probe
        if device not in self._device_probe:  # moved once, reused at every recording
            self._device_probe[device] = tuple(t.to(device) for t in self._probe)
        return self._device_probe[device]

    def step(self, epoch: int, model: nn.Module | None = None, *, force: bool = False) -> bool:
        """Record ``epoch`` if the schedule (or ``force``) says so; return whether it was recorded.

        Accepts ``(epoch, model)`` so that it can be passed as ``callback=rec.step`` to
        `infoplane.nets.train`. Epochs must not decrease; a repeated epoch is a no-op; an epoch already
        in the store is skipped or raises, per ``on_existing``.
        """
        epoch = check_int_param(epoch, "epoch", "Recorder.step", minimum=0)
        if model is not None and model is not self.model:
            raise ValueError("Recorder.step got a model other than the one the recorder was built for.")
        if self._last_step is not None and epoch < self._last_step:
            raise ValueError(
                f"epochs passed to Recorder.step must not decrease: got {epoch} after {self._last_step}."
            )
        repeated = epoch == self._last_step
        self._last_step = epoch
        if repeated or not (force or epoch in self.schedule):
            return False
        if epoch in self.store:
            if self.on_existing == "raise":
                raise ValueError(f"epoch {epoch} is already in the store (on_existing='raise').")
            if not self.skipped:
                self._check_stored_shapes()
                warnings.warn(
                    f"epoch {epoch} is already in the store {self.store!r}: Recorder.step skips it and every other "
                    f"stored epoch (resuming the run recorded there); {_ANEW}.", UserWarning, stacklevel=2,
                )
            self.skipped.append(epoch)
            return False
        device = self.device if self.device is not None else model_device(self.model)
        plain = [layer for layer in self.layer_specs if layer.noise is None]
        noisy = [layer for layer in self.layer_specs if layer.noise is not None]
        kwargs = {"batch_size": self.batch_size, "device": device, "epoch": epoch, "keys": self._probe_keys}
        with recorder_pass():  # add_noise's training hooks stand aside while recording
            data = probe_pass(self.model, plain, self._probe_on(device), self.n_probe, **kwargs) if plain else {}
            if noisy:  # the noisy network's draws, stored (N, draws * d)
                draws = propagate(self.model, self._probe, self.n_probe, noisy, draws=self.draws,
                                  seed=self.noise_seed, **kwargs)
                data.update({name: v.reshape(self.n_probe, -1) for name, v in draws.items()})
        self.store.write_epoch(epoch, {layer.name: data[layer.name] for layer in self.layer_specs})
        self.recorded.append(epoch)
        return True

    def _check_stored_shapes(self) -> None:
        """Before the first skipped epoch: two probe rows through the model; its layer widths must be the store's.

        A model that cannot run on two rows (batch-size dependent code) is not checked here; its first recorded
        epoch is (`write_epoch` refuses other shapes).
        """
        device = self.device if self.device is not None else model_device(self.model)
        rows = min(2, self.n_probe)
        head = tuple(t[:rows] for t in self._probe_on(device))
        try:
            data = probe_pass(self.model, self.layer_specs, head, rows, batch_size=rows, device=device, epoch=None,
                              keys=self._probe_keys)
        except Exception:  # noqa: BLE001 - only a check: the full pass of the next recording reports any error
            return
        shapes = self.store.metadata["shapes"]
        for name, value in data.items():
            width = (value["mu"] if isinstance(value, dict) else value).shape[1]
            if name in shapes and width != shapes[name][1]:
                raise ValueError(
                    f"layer {name!r} of this model has width {width:,}, but the store holds {shapes[name][1]:,} for "
                    f"it: the store at {self.store!r} holds another run; {_ANEW}."
                )

    def close(self) -> None:
        """Close a store the recorder opened from a path (releases its writer lock)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Recorder(layers={self.layers!r}, n_probe={self.n_probe}, schedule={self.schedule.to_dict()!r}, "
            f"store={self.store!r})"
        )

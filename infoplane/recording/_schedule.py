"""Which epochs to record: `Schedule` (see `infoplane.recording`)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._core.validation import check_int_param, param_error

__all__ = ["Schedule", "every", "log_spaced", "explicit"]

#: Bounds of `Schedule.log_spaced`: at most this many epochs, and a last epoch that float64 holds exactly.
_MAX_LOG_POINTS = 100_000
_MAX_LAST = 10**15


@dataclass(frozen=True)
class Schedule:
    """Which epochs to record. Build with `every`, `log_spaced`, `explicit`, or ``a | b`` (union).

    ``epoch in schedule`` tells whether an epoch is recorded; `epochs_until(last)` lists them;
    `to_dict`/`from_dict` round-trip through JSON (the store keeps it).
    """

    kind: Literal["every", "explicit", "union"]
    k: int = 1
    start: int = 0
    stop: int | None = None
    epochs: tuple[int, ...] = ()
    parts: tuple[Schedule, ...] = ()
    label: str | None = None  # how it was made, e.g. "log_spaced(last=1000, n=100)"

    @classmethod
    def every(cls, k: int = 1, *, start: int = 0, stop: int | None = None) -> Schedule:
        """Epochs ``start, start + k, start + 2k, ...`` (up to ``stop`` inclusive, if given)."""
        k = check_int_param(k, "k", "Schedule.every", minimum=1)
        start = check_int_param(start, "start", "Schedule.every", minimum=0)
        if stop is not None:
            stop = check_int_param(stop, "stop", "Schedule.every", minimum=start)
        return cls("every", k=k, start=start, stop=stop)

    @classmethod
    def log_spaced(cls, last: int, n: int = 100) -> Schedule:
        """At most ``n`` epochs in [0, last], log-spaced (dense early, sparse late), always with 0 and ``last``.

        ``unique(round(logspace(0, log10(last + 1), n)) - 1)``: rounding merges the first points, so fewer
        than ``n`` epochs come out when early epochs collide (all of 0..last when ``n > last``).
        """
        last = check_int_param(last, "last", "Schedule.log_spaced", minimum=0)
        n = check_int_param(n, "n", "Schedule.log_spaced", minimum=2)
        if n > _MAX_LOG_POINTS:
            raise param_error("Schedule.log_spaced", "n", f"an int in 2..{_MAX_LOG_POINTS:,} (epochs to record)", n)
        if last > _MAX_LAST:  # beyond, last + 1 is not exact in float64 and the epochs would be rounded
            raise param_error("Schedule.log_spaced", "last", f"an int in 0..{_MAX_LAST:,} (10**15)", last)
        points = np.unique(np.rint(np.logspace(0.0, np.log10(last + 1.0), n)).astype(np.int64) - 1)
        points = np.union1d(points, [0, last])
        return cls("explicit", epochs=tuple(int(e) for e in points), label=f"log_spaced(last={last}, n={n})")

    @classmethod
    def explicit(cls, epochs: Iterable[int]) -> Schedule:
        """Exactly these epochs (duplicates dropped, sorted)."""
        if isinstance(epochs, (str, bytes)) or not isinstance(epochs, Iterable):
            raise param_error("Schedule.explicit", "epochs", "a non-empty list of ints >= 0", epochs)
        values = list(epochs)
        for e in values:
            check_int_param(e, "epochs", "Schedule.explicit", minimum=0)
        if not values:
            raise param_error("Schedule.explicit", "epochs", "a non-empty list of ints >= 0", values)
        return cls("explicit", epochs=tuple(sorted({int(e) for e in values})))

    def __or__(self, other: Schedule) -> Schedule:
        if not isinstance(other, Schedule):
            return NotImplemented
        return Schedule("union", parts=(self, other))

    def __contains__(self, epoch: object) -> bool:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
            return False
        epoch = int(epoch)
        if self.kind == "every":
            return epoch >= self.start and (self.stop is None or epoch <= self.stop) and (
                (epoch - self.start) % self.k == 0
            )
        if self.kind == "explicit":
            return epoch in self._set
        return any(epoch in p for p in self.parts)

    @property
    def _set(self) -> frozenset[int]:
        cached = self.__dict__.get("_cached_set")
        if cached is None:
            cached = frozenset(self.epochs)
            object.__setattr__(self, "_cached_set", cached)
        return cached

    def epochs_until(self, last: int) -> list[int]:
        """The scheduled epochs in [0, last], ascending."""
        if self.kind == "every":
            stop = last if self.stop is None else min(last, self.stop)
            return list(range(self.start, stop + 1, self.k))
        if self.kind == "explicit":
            return [e for e in self.epochs if e <= last]
        return sorted(set().union(*(p.epochs_until(last) for p in self.parts)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (stored in the store's metadata as ``"schedule"``)."""
        if self.kind == "every":
            return {"kind": "every", "k": self.k, "start": self.start, "stop": self.stop}
        if self.kind == "explicit":
            out: dict[str, Any] = {"kind": "explicit", "epochs": list(self.epochs)}
            if self.label:
                out["label"] = self.label
            return out
        return {"kind": "union", "parts": [p.to_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Schedule:
        kind = spec.get("kind")
        if kind == "every":
            return cls.every(spec.get("k", 1), start=spec.get("start", 0), stop=spec.get("stop"))
        if kind == "explicit":
            out = cls.explicit(spec["epochs"])
            return cls("explicit", epochs=out.epochs, label=spec.get("label"))
        if kind == "union":
            parts = [cls.from_dict(p) for p in spec["parts"]]
            result = parts[0]
            for p in parts[1:]:
                result = result | p
            return result
        raise ValueError(f"unknown schedule kind {kind!r} in {dict(spec)!r}.")

    @classmethod
    def coerce(cls, schedule: Any) -> Schedule:
        """None -> every epoch; int k -> every k; list of ints -> explicit; dict -> `from_dict`."""
        if schedule is None:
            return cls.every(1)
        if isinstance(schedule, Schedule):
            return schedule
        if isinstance(schedule, Mapping):
            return cls.from_dict(schedule)
        if isinstance(schedule, (int, np.integer)) and not isinstance(schedule, bool):
            return cls.every(int(schedule))
        if isinstance(schedule, (Sequence, np.ndarray, range)) and not isinstance(schedule, str):
            return cls.explicit(int(e) if isinstance(e, np.integer) else e for e in schedule)
        raise param_error(
            "Recorder", "schedule", "a Schedule, an int k (every k epochs), a list of epochs or None", schedule
        )


every = Schedule.every
log_spaced = Schedule.log_spaced
explicit = Schedule.explicit

"""A single-writer lock file: created with O_CREAT|O_EXCL, holding the owner's pid and host as JSON.

A lock left by a process that died (same host, pid no longer alive) is stale and may be taken over; a lock
held by a live process, or by any process on another host (whose liveness cannot be checked), is not.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

__all__ = ["StoreLockedError", "WriterLock"]


class StoreLockedError(RuntimeError):
    """Raised when a second writer opens a store that another writer holds."""


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class WriterLock:
    """Exclusive writer lock at ``path`` (a file); `acquire` raises `StoreLockedError` when held."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # Being written right now by its creator (empty or half-written): treat as held, not stale.
            return {}

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        info = {"pid": os.getpid(), "host": socket.gethostname(), "created": time.time()}
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def acquire(self, *, what: str = "store") -> None:
        if self._held:
            return
        for _ in range(3):
            if self._try_create():
                self._held = True
                return
            owner = self._owner()
            if owner is None:  # released between our attempts: try again
                continue
            host = owner.get("host")
            pid = owner.get("pid")
            stale = host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid)
            if not stale:
                held_by = f"pid {pid} on host {host!r}" if owner else "a process creating it right now"
                raise StoreLockedError(
                    f"{what} is already open for writing by {held_by} (lock file {str(self.path)!r}). "
                    "Only one writer may write to a store at a time; open it with mode='r' to read, or "
                    "close the other writer. If that process is gone and was on another host, delete "
                    "the lock file by hand."
                )
            # Stale: move it aside atomically so that only one of several contenders takes it over.
            aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex}")
            try:
                os.replace(self.path, aside)
            except FileNotFoundError:
                continue
            aside.unlink(missing_ok=True)
        raise StoreLockedError(f"could not acquire the writer lock {str(self.path)!r} (contended).")

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        owner = self._owner()
        if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)

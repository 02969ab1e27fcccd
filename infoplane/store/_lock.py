"""The single-writer lock of a store: the operating system's advisory lock (``flock``) via `filelock`.

The kernel holds the lock for the open file and releases it when the holder closes it or dies (killed,
crashed, power cut), so there is no stale lock to detect or take over and no check-then-act race between
contenders. The lock file's content (the holder's pid and host, JSON) is informational only, used in the
error message: an empty, half-written, foreign or leftover lock file never blocks and never breaks parsing.
The lock file stays in place after release, so every contender locks the same inode.

A forked child inherits the open file but is not the holder: it never releases the parent's lock.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

__all__ = ["StoreLockedError", "WriterLock"]


class StoreLockedError(RuntimeError):
    """Raised when a second writer opens a store that another writer holds."""


class WriterLock:
    """Exclusive writer lock at ``path`` (a file); `acquire` raises `StoreLockedError` at once when held."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = None
        self._owner_pid: int | None = None

    @property
    def held(self) -> bool:
        """True in the process that acquired the lock, until it releases it."""
        return self._lock is not None and self._owner_pid == os.getpid()

    @property
    def owner_pid(self) -> int | None:
        """The pid of the process that acquired the lock (also seen by a forked child), or None."""
        return self._owner_pid if self._lock is not None else None

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text())
            return f"pid {int(info['pid'])} on host {str(info['host'])!r}"
        except (OSError, ValueError, TypeError, KeyError):
            return "another process"

    def acquire(self, *, what: str = "store") -> None:
        """Take the lock without waiting; raise `StoreLockedError` naming the holder if it is taken."""
        if self.held:
            return
        if self.path.is_symlink() or self.path.is_dir():
            kind = "a symbolic link" if self.path.is_symlink() else "a directory"
            raise ValueError(
                f"the lock file {str(self.path)!r} of {what} is {kind}, not a file; infoplane never follows or "
                "replaces it. Remove it (it holds no data) and open the store again."
            )
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise StoreLockedError(
                f"{what} is already open for writing by {self._holder()} (lock file {str(self.path)!r}). "
                "Only one writer may write to a store at a time; open it with mode='r' to read, or close the "
                "other writer (the lock is released by the operating system when that process ends)."
            ) from None
        self._lock, self._owner_pid = lock, os.getpid()
        info = {"pid": os.getpid(), "host": socket.gethostname(), "created": time.time()}
        try:  # informational; the lock itself is the kernel's
            with open(self.path, "r+") as fh:
                fh.truncate(0)
                fh.write(json.dumps(info))
        except OSError:  # pragma: no cover - e.g. a lock file made read-only by hand
            pass

    def release(self) -> None:
        """Release the lock (a no-op when not held, and in a forked child of the holder)."""
        lock, self._lock = self._lock, None
        if lock is None or self._owner_pid != os.getpid():
            return
        try:
            with open(self.path, "r+") as fh:
                fh.truncate(0)
        except OSError:  # pragma: no cover
            pass
        lock.release(force=True)

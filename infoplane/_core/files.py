"""Crash-safe file writes: a temporary file, fsync, `os.replace`, fsync of the directory.

A reader (or a process that restarts after a kill) sees the old file or the new one, never a torn mix.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["fsync_path", "atomic_write", "TMP_SUFFIX"]

#: Temporary files are named ``.<name>.<pid>.<token>.tmp`` next to their target.
TMP_SUFFIX = ".tmp"


def fsync_path(path: str | os.PathLike, *, directory: bool = False) -> None:
    """fsync a file, or a directory (so that a rename or a new entry in it survives a power cut)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` by ``data`` atomically; with ``durable`` the bytes are on disk before it returns."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(path.parent, directory=True)

"""Durable file writes shared by every layer that keeps state on disk.

Owns the two primitives the identity files, the catalog's snapshot, the Raft groups'
files and the node and mesh info files are written with: ``atomic_write`` (a fresh
temporary sibling created with its final mode, fsynced, renamed over the target, the
directory fsynced: readers see the old contents or the new, never a torn file, and a
crash after return keeps the new) and ``fsync_dir``. Errors are ``OSError``; callers
that speak another error type wrap them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def temp_path(path: Path) -> Path:
    """A fresh, unique temporary sibling of ``path`` (same directory, so renames are atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def write_temp(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to a new temporary sibling of ``path`` created with ``mode`` and
    fsync it; return its path (removed again if the write fails)."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (renames, creations, deletions) durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably; a new file gets ``mode``."""
    tmp = write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)

"""Private file helpers for the identity layer: atomic, permission-safe writes, and the
exclusive file locks that serialize read-modify-write of the CA directory's lists.

Secret files are created with their final mode from the start (``os.open(..., mode)``), so
they are never readable by others, not even for an instant. Every write goes to a temporary
file in the same directory that is fsynced and then moved into place, so readers see either
the old contents or the new ones, never a torn file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from hyperion import fsutil
from hyperion.identity.errors import IdentityError


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically; the file is created with ``mode``."""
    try:
        fsutil.atomic_write(path, data, mode=mode)
    except OSError as e:
        raise IdentityError(f"cannot write {path}: {e.strerror or e}") from e


def create_exclusive(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Create ``path`` with ``data`` atomically, failing with FileExistsError if it exists.

    The content is written to a temporary file first and then hard-linked into place, so a
    crash never leaves a half-written file and two concurrent creators cannot both win.
    """
    try:
        tmp = fsutil.write_temp(path, data, mode)
    except OSError as e:
        raise IdentityError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:
        raise IdentityError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):
        fsutil.fsync_dir(path.parent)


def ensure_dir(directory: Path, *, mode: int = 0o700) -> None:
    """Create ``directory`` (and parents) if missing; new directories get ``mode``."""
    try:
        directory.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as e:
        raise IdentityError(f"cannot create directory {directory}: {e.strerror or e}") from e


def read_bytes(path: Path, *, what: str, missing: str | None = None) -> bytes:
    """Read ``path``; turn OS errors into an IdentityError naming ``what`` the file is."""
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise IdentityError(missing or f"no {what} at {path}") from e
    except OSError as e:
        raise IdentityError(f"cannot read {what} {path}: {e.strerror or e}") from e


@contextlib.contextmanager
def locked(path: Path, error: type[IdentityError] = IdentityError) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600 if absent) for the block;
    ``error`` if it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as e:
        raise error(f"cannot open lock file {path}: {e.strerror or e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock

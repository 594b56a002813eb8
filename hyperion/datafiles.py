"""Where reference data lives: ``$HYPERION_DATA``, else ``../shared/data`` beside the project.

Small derived tables that may ship (see NOTICE) live in ``hyperion/data`` and are used
when the shared directory is absent, so a fresh install still runs.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DATA = Path(__file__).parent / "data"


class DataError(Exception):
    """A reference data file is missing or malformed."""


def data_dir() -> Path | None:
    """The shared data directory, or None when none can be found."""
    env = os.environ.get("HYPERION_DATA")
    if env:
        return Path(env)
    candidates = [
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data",
        Path.cwd() / ".." / "shared" / "data",
    ]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def find(name: str, *, packaged: str | None = None) -> Path:
    """Path of a shared data file, falling back to a packaged derived copy."""
    d = data_dir()
    if d is not None and (d / name).is_file():
        return d / name
    if packaged is not None and (PACKAGE_DATA / packaged).is_file():
        return PACKAGE_DATA / packaged
    where = d if d is not None else "../shared/data (set HYPERION_DATA)"
    raise DataError(f"data file {name} not found in {where}")

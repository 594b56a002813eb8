"""Small helpers every simulator experiment uses to report its run."""

from __future__ import annotations

import resource

import numpy as np


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, or None when there are no values."""
    if not values:
        return None
    return float(np.percentile(np.array(values), q))


def rounded(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)

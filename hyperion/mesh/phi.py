"""Phi-accrual failure detection (Hayashibara et al., 2004), as used by Cassandra and Akka.

Instead of a yes/no timeout, the detector keeps a window of observed delays and turns
"we have waited ``elapsed`` seconds" into a suspicion level

    phi(elapsed) = -log10(P(delay > elapsed))

under a normal model of the delays. phi = 8 means "if the peer were fine, a delay this
long would happen once in 10^8 tries". The inverse, ``timeout(threshold)``, gives the
wait after which phi crosses the threshold; SWIM uses it for adaptive probe timeouts and
for how long a suspicion may stand before the member is declared dead.

Pure arithmetic: no clock, no I/O.
"""

from __future__ import annotations

import functools
import math
from array import array


def _phi_of_z(z: float) -> float:
    # Tail of the standard normal via erfc; clamp so phi stays finite far out.
    tail = 0.5 * math.erfc(z / math.sqrt(2.0))
    return -math.log10(max(tail, 1e-300))


@functools.lru_cache(maxsize=64)  # pure; a simulated mesh asks once per node
def z_for_phi(threshold: float) -> float:
    """The z-score at which phi equals ``threshold`` (bisection; phi is monotone in z)."""
    lo, hi = -10.0, 40.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if _phi_of_z(mid) < threshold:
            lo = mid
        else:
            hi = mid
    return hi


class PhiAccrual:
    """Sliding-window phi-accrual detector over delay samples, seeded with a prior.

    The prior (``mean_s``, ``std_s``) stands in for ``prior_weight`` samples so a
    detector with no history behaves sensibly and one sample cannot swing it. Samples
    live in a ring of C doubles allocated on the first sample (8 bytes each: the
    simulator runs tens of thousands of detectors).
    """

    __slots__ = (
        "_ring",
        "_window",
        "_n",
        "_next",
        "_sum",
        "_sumsq",
        "_prior_n",
        "_prior_mean",
        "_prior_var",
        "_prior_sum",
        "_prior_sumsq",
        "min_std_s",
    )

    def __init__(
        self,
        mean_s: float,
        std_s: float,
        *,
        window: int = 128,
        prior_weight: int = 8,
        min_std_s: float = 0.005,
    ) -> None:
        if mean_s <= 0 or std_s <= 0 or window <= 0:
            raise ValueError("phi prior and window must be positive")
        self._ring: array[float] | None = None
        self._window = window
        self._n = 0
        self._next = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._prior_n = prior_weight
        self._prior_mean = mean_s
        self._prior_var = std_s * std_s
        # The prior's share of the sums, fixed: E[x^2] of pseudo-samples is var + mean^2.
        self._prior_sum = prior_weight * mean_s
        self._prior_sumsq = prior_weight * (self._prior_var + mean_s**2)
        self.min_std_s = min_std_s

    def add(self, delay_s: float) -> None:
        if not math.isfinite(delay_s) or delay_s < 0:
            return
        ring = self._ring
        if ring is None:
            ring = self._ring = array("d", bytes(8 * self._window))
        i = self._next
        if self._n == self._window:
            old = ring[i]
            self._sum -= old
            self._sumsq -= old * old
        else:
            self._n += 1
        ring[i] = delay_s
        self._next = (i + 1) % self._window
        self._sum += delay_s
        self._sumsq += delay_s * delay_s

    @property
    def count(self) -> int:
        return self._n

    def mean_std(self) -> tuple[float, float]:
        """Posterior-ish mean and standard deviation: prior pseudo-samples plus the window."""
        total = self._prior_n + self._n
        mean = (self._prior_sum + self._sum) / total
        var = (self._prior_sumsq + self._sumsq) / total - mean * mean
        std = math.sqrt(var) if var > 0.0 else 0.0
        return mean, std if std >= self.min_std_s else self.min_std_s

    def phi(self, elapsed_s: float) -> float:
        mean, std = self.mean_std()
        return _phi_of_z((elapsed_s - mean) / std)

    def timeout(self, z: float) -> float:
        """Elapsed time at which phi reaches the threshold whose z-score is ``z``."""
        mean, std = self.mean_std()
        return mean + z * std

"""Disjoint scenario seed ranges: training, validation (checkpoint choice), test (reports).

The benchmark reports only test seeds; training draws only training seeds; the best
checkpoint is chosen on validation seeds. ``hyperion bench fleet --seed S`` uses the
test block ``S``: seeds ``TEST_BASE + S * BLOCK`` onwards.
"""

from __future__ import annotations

BLOCK = 10_000
TRAIN = range(0, 1_000_000)
VALIDATION = range(1_000_000, 2_000_000)
TEST_BASE = 2_000_000


def test_seeds(seed: int, n: int) -> range:
    """The ``n`` held-out scenario seeds of benchmark seed ``seed``."""
    if not 0 <= seed < 100 or not 0 < n <= BLOCK:
        raise ValueError("benchmark seed must be 0-99 and scenarios 1-10000")
    start = TEST_BASE + seed * BLOCK
    return range(start, start + n)


def validation_seeds(n: int) -> range:
    return range(VALIDATION.start, VALIDATION.start + n)

"""The reward of a placement (DESIGN §7): ``R = w1 / cost_per_hour + w2 / p99_latency_ms``.

The weights are set by the workload's goal so that both terms are 0.5 at a reference
point of ``COST_REF_USD_PER_H`` and ``LATENCY_REF_MS`` (``default``); the goal moves
weight to the term it names (0.8 / 0.2). With these units, halving the cost of a
``default`` workload at the reference point adds 0.5, as does halving its P99 latency.
Any hard-constraint violation replaces the reward by ``VIOLATION_REWARD`` per violation,
far below any reward a feasible placement can earn. Pure arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

COST_REF_USD_PER_H = 1.0  # what a well-placed fleet benchmark scenario pays per hour
LATENCY_REF_MS = 150.0  # a P99 within reach of a geo-distributed user base
VIOLATION_REWARD = -1000.0  # per violation; below the best feasible reward (200, at the floors)
COST_FLOOR_USD_PER_H = 0.01  # keeps R finite for a free (edge-only) placement
LATENCY_FLOOR_MS = 1.0

_SPLIT: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"cost": (0.8, 0.2), "latency": (0.2, 0.8), "default": (0.5, 0.5)}
)
REWARD_WEIGHTS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {g: (a * COST_REF_USD_PER_H, b * LATENCY_REF_MS) for g, (a, b) in _SPLIT.items()}
)


def reward(
    cost_per_hour: float, p99_latency_ms: float, goal: str = "default", violations: int = 0
) -> float:
    """``w1 / cost_per_hour + w2 / p99_latency_ms`` with the goal's weights (w1 in USD/h,
    w2 in ms); ``VIOLATION_REWARD * violations`` if any hard constraint was violated."""
    if violations < 0:
        raise ValueError("violations must be non-negative")
    if violations:
        return VIOLATION_REWARD * violations
    if goal not in REWARD_WEIGHTS:
        raise ValueError(f"goal {goal!r} is not one of {tuple(REWARD_WEIGHTS)}")
    if math.isnan(cost_per_hour) or math.isnan(p99_latency_ms):
        raise ValueError("cost and latency must be numbers")
    w1, w2 = REWARD_WEIGHTS[goal]
    return w1 / max(cost_per_hour, COST_FLOOR_USD_PER_H) + w2 / max(
        p99_latency_ms, LATENCY_FLOOR_MS
    )

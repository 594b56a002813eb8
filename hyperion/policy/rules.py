"""The ``rules`` policy: Filter, then weighted Score (the Kubernetes scheduler framework).

Always available; the baseline and the fallback of ``rl``. Deterministic: equal totals
break on ``tie_break(tender_id, node_id)``, a hash, so every node that scores the same
bids picks the same winner. Pure: no I/O, no clocks, no randomness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from hyperion.policy.model import Candidate, Decision, NoFit, Request
from hyperion.policy.plugins import (
    BATCH_SCORERS,
    GOAL_WEIGHTS,
    MAX_SCORE,
    MIN_SPAN,
    SCORERS,
    explain,
    feasible,
    normalize,
)


def tie_break(tender_id: str, node_id: str) -> int:
    """A deterministic, uniformly spread rank for equal scores (lower wins)."""
    digest = hashlib.sha256(f"{tender_id}\x00{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def scores(
    req: Request,
    candidates: Sequence[Candidate],
    weights: Mapping[str, float] | None = None,
) -> list[float]:
    """Weighted sum of the normalized plug-in scores of each candidate (all assumed
    feasible), in [0, 100 * sum(weights)]."""
    w = GOAL_WEIGHTS[req.goal] if weights is None else weights
    total = [0.0] * len(candidates)
    for name, weight in w.items():
        if weight == 0:
            continue
        batch = BATCH_SCORERS.get(name)
        if batch is not None:  # SCORERS[name] over all of them, per-request work once
            raw = batch(req, candidates)
        else:
            fn = SCORERS[name]
            raw = [fn(req, c) for c in candidates]
        if raw is None:  # all the same, so normalize scores each MAX_SCORE
            top = weight * MAX_SCORE
            total = [x + top for x in total]
        else:
            total = [
                x + weight * s for x, s in zip(total, normalize(raw, MIN_SPAN[name]), strict=True)
            ]
    return total


def best(
    candidates: Sequence[Candidate], indices: Sequence[int], values: Sequence[float], tender: str
) -> int:
    """The index (into ``indices``) with the highest value; ties by hash."""
    n = len(indices)
    if n == 0 or len(values) != n or any(v != v for v in values):  # NaN: the general rule
        return min(
            range(n),
            key=lambda k: (-values[k], tie_break(tender, candidates[indices[k]].node_id)),
        )
    # Only candidates sharing the top value need their tie-break hash.
    top = max(values)
    tied = [k for k, v in enumerate(values) if v == top]
    if len(tied) == 1:
        return tied[0]
    return min(tied, key=lambda k: tie_break(tender, candidates[indices[k]].node_id))


class RulesPolicy:
    """Filter then weighted Score; ``weights`` overrides the goal's weights."""

    name = "rules"

    def __init__(self, weights: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self._weights = weights

    def choose(
        self, request: Request, candidates: Sequence[Candidate], tender_id: str
    ) -> Decision | NoFit:
        ok = feasible(request, candidates)
        if not ok:
            return explain(request, candidates)
        pool = [candidates[i] for i in ok]
        w = None if self._weights is None else self._weights[request.goal]
        values = scores(request, pool, w)
        k = best(candidates, ok, values, tender_id)
        i = ok[k]
        return Decision(candidates[i].node_id, i, values[k], self.name)
